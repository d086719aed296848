/**
 * Shared benchmark plumbing: the result shape (design.md: `ringmq bench
 * --json` fields), the run header, the table, and small statistics helpers.
 * Every suite file `bench/<name>.bench.ts` exports `suite: Suite`.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** One measured case. Field names are the public JSON contract; keep them stable. */
export interface BenchResult {
  suite: string;
  case: string;
  payload?: number;
  shards?: number;
  msgs_per_s?: number;
  mb_per_s?: number;
  p50_us?: number;
  p99_us?: number;
  bytes_per_msg?: number;
  ratio?: number;
  vs?: string;
  /** Relative margin of error of msgs_per_s, percent (95% confidence over the samples). */
  rme_pct?: number;
  /** Suite-specific figures (e.g. avg_batch for the ring). */
  [extra: string]: string | number | boolean | undefined;
}

export interface BenchOptions {
  json: boolean;
  /** Shorter runs (CI smoke tests); figures are noisier. */
  quick: boolean;
  /** Progress and notes for humans; silent with --json. */
  note(line: string): void;
  /** `--compare rabbitmq` (amqp suite): run the same cases against a private RabbitMQ too. */
  compare?: 'rabbitmq';
  /** `--url amqp://...` (amqp suite): bench this running broker instead of starting `ringmq serve`. */
  url?: string;
  /** `--shards N` (amqp suite): shards of the `ringmq serve` under test. */
  shards?: number;
}

export interface Suite {
  name: string;
  description: string;
  /** Threads the suite runs at once (a warning is printed when cores are fewer). */
  threads: number;
  run(opts: BenchOptions): Promise<BenchResult[]>;
  /**
   * Why the suite cannot run here (e.g. a missing dev dependency), or
   * undefined. A suite that is unavailable is skipped with this note when
   * all suites run, and fails with it when named.
   */
  unavailable?(): Promise<string | undefined>;
}

/**
 * An error in setting a suite up (a missing dependency, a broker that does
 * not start): `ringmq bench` prints its message alone, without a stack.
 */
export function setupError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_BENCH_SETUP' });
}

/** A benchmark that computed a wrong answer must not print a figure. */
export function failIfNot(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark self-check failed: ${what}`);
}

export function machineHeader(extra: Record<string, string> = {}): Record<string, string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    if (dirty) commit += '+dirty';
  } catch {
    // not a git checkout (installed package)
  }
  const cpus = os.cpus();
  return {
    node: process.version,
    cpu: `${cpus[0]?.model ?? 'unknown'} x ${os.availableParallelism()}`,
    date: new Date().toISOString(),
    commit,
    ...extra,
  };
}

const num = (v: number | undefined, digits = 0): string =>
  v === undefined || !Number.isFinite(v) ? '' : v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e4 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(digits);

export function formatTable(results: BenchResult[]): string {
  const extras = [...new Set(results.flatMap((r) => Object.keys(r)))].filter((k) => !STANDARD.has(k));
  const cols: [string, (r: BenchResult) => string][] = [
    ['case', (r) => r.case],
    ['broker', (r) => (typeof r.broker === 'string' ? r.broker : '')],
    ['payload', (r) => (r.payload === undefined ? '' : formatBytes(r.payload))],
    ['shards', (r) => (r.shards === undefined ? '' : String(r.shards))],
    ['msgs/s', (r) => num(r.msgs_per_s)],
    ['±%', (r) => (r.rme_pct === undefined ? '' : r.rme_pct.toFixed(1))],
    ['MB/s', (r) => num(r.mb_per_s, 1)],
    ['p50 µs', (r) => num(r.p50_us, 1)],
    ['p99 µs', (r) => num(r.p99_us, 1)],
    ['B/msg', (r) => num(r.bytes_per_msg, 1)],
    ['ratio', (r) => (r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`)],
    ['vs', (r) => r.vs ?? ''],
    ...extras.map((k): [string, (r: BenchResult) => string] => [k, (r) => (typeof r[k] === 'number' ? num(r[k] as number, 2) : String(r[k] ?? ''))]),
  ];
  const used = cols.filter(([, f]) => results.some((r) => f(r) !== ''));
  const rows = [used.map(([h]) => h), ...results.map((r) => used.map(([, f]) => f(r)))];
  const widths = used.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row, ri) => row.map((c, i) => (i === 0 || ri === 0 || used[i]![0] === 'broker' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    .join('\n');
}

const STANDARD = new Set(['suite', 'case', 'broker', 'payload', 'shards', 'msgs_per_s', 'mb_per_s', 'p50_us', 'p99_us', 'bytes_per_msg', 'ratio', 'vs', 'rme_pct']);

export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Relative margin of error (95%, normal approximation) of the mean of xs, in percent. */
export function rmePct(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return ((1.96 * Math.sqrt(variance / xs.length)) / mean) * 100;
}
