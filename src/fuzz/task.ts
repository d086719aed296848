/** The piscina task of `ringmq fuzz`: one run (run-one.ts) per task, in a worker thread. */
import { runOne, type RunOneOptions, type RunResult } from './run-one.js';

export default async function task(o: RunOneOptions & { progressSab?: SharedArrayBuffer }): Promise<RunResult> {
  const { progressSab, ...rest } = o;
  return runOne(progressSab ? { ...rest, progress: new Int32Array(progressSab) } : rest);
}
