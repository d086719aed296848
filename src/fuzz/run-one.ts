/**
 * One fuzz run: generate the workload from its seed, start a target on a
 * fresh data directory (under os.tmpdir(), removed afterwards), drive it,
 * check the history. Runs in a piscina worker (task.ts) or in-process.
 * The result is plain data (it crosses the thread boundary).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHistory, formatViolation, GUARANTEES, type Guarantee } from './checker.js';
import { Driver, P_VIOLATIONS } from './driver.js';
import { historyToJsonl } from './history.js';
import type { Target } from './target.js';
import { EmbeddedTarget } from './target-embedded.js';
import { ALL_FAULTS, generateWorkload, type Fault, type KnownBug } from './workload.js';

export interface RunOneOptions {
  seed: number;
  target: 'embedded' | 'amqp';
  url?: string;
  fsync?: 'always' | 'interval' | 'never';
  faults?: Fault[];
  steps?: number;
  plantedBug?: string;
  /** Known broker bugs the workload steers clear of (workload.ts KNOWN_BUGS). */
  avoid?: KnownBug[];
  /** Shared progress counters (driver.ts P_*). */
  progress?: Int32Array;
  /** Keep the history file even without a violation. */
  keepHistory?: boolean;
  /** Give up on a run after this long (a stall is reported as a failure). Default 180 s. */
  timeoutMs?: number;
}

export interface RunResult {
  seed: number;
  replay: string;
  ops: number;
  events: number;
  kills: number;
  tornKills: number;
  restarts: number;
  recoveries: number;
  checks: Record<Guarantee, number>;
  violationCounts: Record<Guarantee, number>;
  /** Formatted violations (guarantee, message, replay, excerpt). */
  violations: { g: Guarantee; text: string }[];
  /** The run could not complete (the broker died by itself, a stall, a failed restart). */
  failure: string | null;
  complete: boolean;
  historyFile: string | null;
  ms: number;
}

/** The command line that replays a run exactly (same workload, same fault schedule). */
export function replayCommand(o: Pick<RunOneOptions, 'seed' | 'target' | 'url' | 'fsync' | 'faults' | 'steps' | 'plantedBug' | 'avoid'>): string {
  const parts = ['ringmq', 'fuzz', '--replay', String(o.seed), '--target', o.target];
  if (o.url !== undefined) parts.push('--url', o.url);
  if (o.fsync !== undefined) parts.push('--fsync', o.fsync);
  if (o.faults !== undefined && o.faults.join(',') !== ALL_FAULTS.join(',')) parts.push('--faults', o.faults.length ? o.faults.join(',') : 'none');
  if (o.steps !== undefined) parts.push('--steps', String(o.steps));
  if (o.avoid !== undefined && o.avoid.length > 0) parts.push('--avoid', o.avoid.join(','));
  const cmd = parts.join(' ');
  return o.plantedBug !== undefined ? `RINGMQ_PLANT_BUG=${o.plantedBug} ${cmd}` : cmd;
}

async function makeTarget(o: RunOneOptions, dir: string, wl: ReturnType<typeof generateWorkload>): Promise<Target> {
  const topts = { dir, shards: wl.shards, fsync: wl.fsync, ringBytes: wl.ringBytes, segmentBytes: wl.segmentBytes, ...(o.plantedBug ? { plantedBug: o.plantedBug } : {}), ...(o.url ? { url: o.url } : {}) };
  if (o.target === 'amqp') {
    const { AmqpTarget } = await import('./target-amqp.js');
    return new AmqpTarget(topts);
  }
  return new EmbeddedTarget(topts);
}

export async function runOne(o: RunOneOptions): Promise<RunResult> {
  const t0 = Date.now();
  const replay = replayCommand(o);
  const dir = mkdtempSync(join(tmpdir(), `ringmq-fuzz-${o.seed}-`));
  let caps = { torn: true, restart: true, kill: true };
  if (o.target === 'amqp') caps = { torn: o.url === undefined, restart: o.url === undefined, kill: o.url === undefined };
  const wl = generateWorkload({ seed: o.seed, ...(o.faults ? { faults: o.faults } : {}), ...(o.fsync ? { fsync: o.fsync } : {}), ...(o.steps ? { steps: o.steps } : {}), ...(o.avoid ? { avoid: o.avoid } : {}), caps });
  // `ringmq serve` runs with its default ring (4 MiB); an external broker has none.
  if (o.target === 'amqp') wl.ringBytes = 4 * 1024 * 1024;
  const target = await makeTarget(o, dir, wl);
  const driver = new Driver(target, wl, replay, o.progress ? { progress: o.progress } : {}, o.plantedBug);
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        if (driver.failure === null) driver.failure = `run did not finish within ${(o.timeoutMs ?? 180_000) / 1000} s (stall)`;
        resolve();
      }, o.timeoutMs ?? 180_000);
    });
    await Promise.race([driver.run().catch((e: unknown) => {
      if (driver.failure === null) driver.failure = `driver error: ${(e as Error).stack ?? String(e)}`;
    }), timeout]);
  } finally {
    clearTimeout(timer);
    // RINGMQ_FUZZ_KEEP_DATA=1 keeps the data directory (to inspect the log after a violation).
    if (process.env.RINGMQ_FUZZ_KEEP_DATA) await target.kill().catch(() => {});
    else await target.dispose().catch(() => {});
  }
  const h = driver.rec.history();
  const res = checkHistory(h);
  const violations = res.violations.map((v) => ({ g: v.g, text: formatViolation(v, o.seed, replay) }));
  let historyFile: string | null = null;
  if (process.env.RINGMQ_FUZZ_KEEP_DATA) violations.forEach((v) => { v.text += `\n  data directory kept: ${dir}`; });
  if (violations.length > 0 || driver.failure !== null || o.keepHistory) {
    historyFile = join(tmpdir(), `ringmq-fuzz-${o.seed}.jsonl`);
    writeFileSync(historyFile, historyToJsonl(h));
  }
  const total = GUARANTEES.reduce((a, g) => a + res.violationCounts[g], 0);
  if (o.progress && total > 0) Atomics.add(o.progress, P_VIOLATIONS, total);
  let kills = 0, tornKills = 0, closes = 0;
  for (let i = 0; i < h.events.length; i++) {
    const ev = h.events[i]!;
    if (ev.k === 'kill') {
      kills++;
      for (let j = i + 1; j < h.events.length && h.events[j]!.k === 'torn'; j++) { tornKills++; break; }
    } else if (ev.k === 'close') closes++;
  }
  return {
    seed: o.seed, replay, ops: driver.ops, events: h.events.length, kills, tornKills, restarts: Math.max(0, closes - (res.complete ? 1 : 0)),
    recoveries: driver.recoveries, checks: res.checks, violationCounts: res.violationCounts, violations, failure: driver.failure,
    complete: res.complete, historyFile, ms: Date.now() - t0,
  };
}
