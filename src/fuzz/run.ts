/**
 * `ringmq fuzz`: runs seeded workloads (run-one.ts) in parallel on a piscina
 * pool — one broker per run, each on its own data directory — until
 * `--seconds` pass or `--runs` are done, shows a progress line on a TTY, and
 * prints a summary: workloads, operations, crashes injected, recoveries, and
 * per guarantee how many checks passed; every violation with its seed, the
 * command that replays it and a history excerpt. The exit code is non-zero on
 * any violation or failed run.
 */
import { availableParallelism } from 'node:os';
import { Piscina } from 'piscina';
import { GUARANTEE_NAMES, GUARANTEES, type Guarantee } from './checker.js';
import { P_CRASHES, P_FIELDS, P_OPS, P_RUNS, P_VIOLATIONS } from './driver.js';
import { runSeed } from './prng.js';
import type { RunOneOptions, RunResult } from './run-one.js';
import type { Fault, KnownBug } from './workload.js';

export interface FuzzOptions {
  seconds?: number;
  runs?: number;
  seed?: number;
  replay?: number;
  target: 'embedded' | 'amqp';
  url?: string;
  fsync?: 'always' | 'interval' | 'never';
  faults?: Fault[];
  steps?: number;
  jobs?: number;
  json?: boolean;
  plantedBug?: string;
  avoid?: KnownBug[];
  /** Stop at the first violation (self-check). */
  stopOnViolation?: boolean;
  out?: NodeJS.WritableStream;
}

export interface FuzzSummary {
  target: string;
  baseSeed: number | null;
  workloads: number;
  operations: number;
  kills: number;
  tornKills: number;
  restarts: number;
  recoveries: number;
  checks: Record<Guarantee, number>;
  violations: Record<Guarantee, number>;
  failures: number;
  seconds: number;
  results: RunResult[];
}

export async function fuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const out = o.out ?? process.stdout;
  // Runs against one external broker (--url) would share queue names: one at a time.
  const jobs = o.url !== undefined ? 1 : Math.max(1, o.jobs ?? Math.min(4, availableParallelism()));
  const baseSeed = o.replay !== undefined ? null : (o.seed ?? Date.now() % 1_000_000_000);
  const maxRuns = o.replay !== undefined ? 1 : (o.runs ?? (o.seconds !== undefined ? Infinity : 1));
  const deadline = o.replay === undefined && o.seconds !== undefined ? Date.now() + o.seconds * 1000 : Infinity;
  const progressSab = new SharedArrayBuffer(P_FIELDS * 4);
  const progress = new Int32Array(progressSab);
  const tty = (out as NodeJS.WriteStream).isTTY === true && !o.json;
  const t0 = Date.now();
  const results: RunResult[] = [];
  const pool = new Piscina({
    filename: new URL('./task.js', import.meta.url).href, minThreads: jobs, maxThreads: jobs, idleTimeout: 1000, concurrentTasksPerWorker: 1,
  });
  let stop = false;
  let line = '';
  const show = (): void => {
    const s = (Date.now() - t0) / 1000;
    const ops = Atomics.load(progress, P_OPS);
    const next = `ringmq fuzz: ${Atomics.load(progress, P_RUNS)} runs done, ${ops.toLocaleString('en-US')} ops (${Math.round(ops / Math.max(s, 0.001)).toLocaleString('en-US')}/s), `
      + `${Atomics.load(progress, P_CRASHES)} crashes injected, ${Atomics.load(progress, P_VIOLATIONS)} violations, ${s.toFixed(0)} s`;
    if (next !== line) {
      line = next;
      out.write(`\r${next}\x1b[K`);
    }
  };
  const ticker = tty ? setInterval(show, 500) : null;
  if (!o.json && !tty) out.write(`ringmq fuzz: target ${o.target}${baseSeed !== null ? `, seed ${baseSeed}` : `, replay ${o.replay}`}, ${jobs} parallel run(s)${o.seconds !== undefined && o.replay === undefined ? `, ${o.seconds} s` : ''}\n`);
  try {
    const running = new Set<Promise<void>>();
    let i = 0;
    const launch = (seed: number): void => {
      const task: RunOneOptions & { progressSab: SharedArrayBuffer } = { seed, target: o.target, progressSab };
      if (o.url !== undefined) task.url = o.url;
      if (o.fsync !== undefined) task.fsync = o.fsync;
      if (o.faults !== undefined) task.faults = o.faults;
      if (o.steps !== undefined) task.steps = o.steps;
      if (o.plantedBug !== undefined) task.plantedBug = o.plantedBug;
      if (o.avoid !== undefined) task.avoid = o.avoid;
      const p = (pool.run(task) as Promise<RunResult>).then((r) => {
        results.push(r);
        Atomics.add(progress, P_RUNS, 1);
        if (tty && (r.violations.length > 0 || r.failure !== null)) out.write('\n');
        if (o.json) out.write(`${JSON.stringify({ type: 'run', ...r })}\n`);
        else if (r.violations.length > 0 || r.failure !== null) reportRun(out, r);
        if (o.stopOnViolation && (r.violations.length > 0 || r.failure !== null)) stop = true;
      }, (e: unknown) => {
        results.push(failedRun(seed, e));
        Atomics.add(progress, P_RUNS, 1);
        out.write(`${tty ? '\n' : ''}ringmq fuzz: run ${seed} crashed the fuzzer: ${(e as Error).stack ?? String(e)}\n`);
      }).finally(() => running.delete(p));
      running.add(p);
    };
    while (!stop && i < maxRuns && Date.now() < deadline) {
      if (running.size < jobs) {
        launch(o.replay ?? runSeed(baseSeed!, i));
        i++;
      } else {
        await Promise.race([...running, ...(deadline !== Infinity ? [sleepUntil(deadline)] : [])]);
      }
    }
    await Promise.all(running);
  } finally {
    if (ticker) clearInterval(ticker);
    if (tty) { show(); out.write('\n'); }
    await pool.destroy();
  }
  const summary = summarize(o, baseSeed, results, (Date.now() - t0) / 1000);
  if (o.json) out.write(`${JSON.stringify({ type: 'summary', ...summary, results: undefined })}\n`);
  else out.write(formatSummary(summary));
  return summary;
}

function sleepUntil(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())).unref());
}

function failedRun(seed: number, e: unknown): RunResult {
  const zero = Object.fromEntries(GUARANTEES.map((g) => [g, 0])) as Record<Guarantee, number>;
  return {
    seed, replay: `ringmq fuzz --replay ${seed}`, ops: 0, events: 0, kills: 0, tornKills: 0, restarts: 0, recoveries: 0, checks: zero,
    violationCounts: { ...zero }, violations: [], failure: `fuzzer error: ${(e as Error).message ?? String(e)}`, complete: false, historyFile: null, ms: 0,
  };
}

function reportRun(out: NodeJS.WritableStream, r: RunResult): void {
  for (const v of r.violations) out.write(`${v.text}\n`);
  const more = GUARANTEES.reduce((a, g) => a + r.violationCounts[g], 0) - r.violations.length;
  if (more > 0) out.write(`  (${more} more violation(s) in this run not shown)\n`);
  if (r.failure !== null) out.write(`RUN FAILED (seed ${r.seed}): ${r.failure}\n  replay: ${r.replay}\n`);
  if (r.historyFile !== null) out.write(`  full history: ${r.historyFile}\n`);
}

export function summarize(o: Pick<FuzzOptions, 'target'>, baseSeed: number | null, results: RunResult[], seconds: number): FuzzSummary {
  const checks = Object.fromEntries(GUARANTEES.map((g) => [g, 0])) as Record<Guarantee, number>;
  const violations = { ...checks };
  let operations = 0, kills = 0, tornKills = 0, restarts = 0, recoveries = 0, failures = 0;
  for (const r of results) {
    operations += r.ops;
    kills += r.kills;
    tornKills += r.tornKills;
    restarts += r.restarts;
    recoveries += r.recoveries;
    if (r.failure !== null) failures++;
    for (const g of GUARANTEES) {
      checks[g] += r.checks[g] - r.violationCounts[g];
      violations[g] += r.violationCounts[g];
    }
  }
  return { target: o.target, baseSeed, workloads: results.length, operations, kills, tornKills, restarts, recoveries, checks, violations, failures, seconds, results };
}

export function formatSummary(s: FuzzSummary): string {
  const n = (x: number): string => x.toLocaleString('en-US');
  const total = GUARANTEES.reduce((a, g) => a + s.violations[g], 0);
  const lines = [
    `ringmq fuzz summary (target ${s.target}${s.baseSeed !== null ? `, seed ${s.baseSeed}` : ''}, ${s.seconds.toFixed(1)} s)`,
    `  workloads   ${n(s.workloads)}${s.failures ? ` (${s.failures} failed to complete)` : ''}`,
    `  operations  ${n(s.operations)} (${n(Math.round(s.operations / Math.max(s.seconds, 0.001)))}/s)`,
    `  crashes     ${n(s.kills + s.restarts)} injected: ${n(s.kills - s.tornKills)} SIGKILL, ${n(s.tornKills)} SIGKILL + torn tail, ${n(s.restarts)} clean restart`,
    `  recoveries  ${n(s.recoveries)}`,
    '  checks passed per guarantee:',
  ];
  for (const g of GUARANTEES) {
    lines.push(`    ${g.padEnd(4)} ${GUARANTEE_NAMES[g].padEnd(24)} ${n(s.checks[g]).padStart(10)}${s.violations[g] ? `   VIOLATED ${n(s.violations[g])}x` : ''}`);
  }
  lines.push(total === 0 && s.failures === 0 ? '  no violations' : `  ${n(total)} violation(s), ${n(s.failures)} failed run(s): see above`);
  return lines.join('\n') + '\n';
}
