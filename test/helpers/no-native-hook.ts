/**
 * Preloaded with `node --import` by test/unit/native-free.test.ts, in the main
 * thread and (inherited execArgv) in every worker thread: makes
 * `process.dlopen`, the one door through which Node loads a native addon,
 * report the attempt on stderr and throw. The report is written synchronously
 * before the throw, so an attempt is seen even if the caller swallows the error
 * (piscina does: `require('@napi-rs/nice').catch(noop)`).
 */
import { writeSync } from 'node:fs';
import { isMainThread, threadId } from 'node:worker_threads';

export const NATIVE_LOAD_MARKER = 'NATIVE-LOAD-ATTEMPT';

process.dlopen = function blockedDlopen(_module: unknown, filename: string): void {
  writeSync(2, `${NATIVE_LOAD_MARKER} thread=${isMainThread ? 'main' : threadId} file=${filename}\n`);
  throw new Error(`native addon loading is disabled in this test: ${filename}`);
};
