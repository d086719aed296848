/**
 * `ringmq bench amqp`: the AMQP 0-9-1 front end to end, with a real client
 * (amqplib) in separate processes over loopback, against `ringmq serve`
 * started by the bench (`--port 0`, a fresh data directory, `--fsync always`)
 * and, with `--compare rabbitmq`, against a private RabbitMQ started by
 * scripts/rabbitmq.mjs in the same run; or, with `--url`, against a broker
 * that is already running (reported as broker "external").
 *
 * Cases (names are a public contract, issue 5):
 * - transient (64 B): 1 publisher, no confirms, transient messages to a
 *   non-durable queue; 1 consumer, auto-ack. msgs/s consumed.
 * - persistent-confirm (1 KiB): persistent messages to a durable queue,
 *   publisher confirms with at most 256 unconfirmed; 1 consumer, manual ack
 *   (one basic.ack per message), prefetch 256. msgs/s consumed; p50/p99 are
 *   publish -> confirm latencies.
 * - fanout-4 (256 B): 1 publisher -> fanout exchange -> 4 non-durable
 *   queues, 4 consumers (one process each), auto-ack. msgs/s = deliveries
 *   (all 4 consumers); publishes_per_s beside it.
 * - rpc (64 B): one request in flight: the client sends to a request queue
 *   with reply-to (its exclusive server-named queue) and a correlation id,
 *   a server process echoes the body back. msgs/s = round trips; p50/p99 µs.
 *
 * Steady state: each case warms up, then marks the consumers' counters every
 * 500 ms over the measured window (each client reports its own count and
 * clock, so IPC delay does not enter the rates). Publishers keep at most
 * MAX_BACKLOG messages ahead of the slowest queue's consumer (the parent
 * relays consumer counts), so queues stay short and the figure is the
 * pipeline's rate, not the publisher's burst into a growing queue. After the
 * window every published message must arrive, in order, with its size:
 * otherwise the case fails instead of printing a figure.
 *
 * Rounds: 3 (1 with --quick), the brokers alternating which goes first;
 * msgs/s is the median of the rounds, ±% (rme_pct) the 95% margin over all
 * 500 ms intervals of all rounds, p50/p99 over all rounds' samples. On a
 * shared 2-core machine, both brokers share the cores with 2-5 client
 * processes: treat single runs as noisy.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChannelModel } from 'amqplib';
import type { FromClient, Job, ToClient } from './amqp-protocol.js';
import type { BenchOptions, BenchResult, Suite } from './_util.js';
import { failIfNot, median, percentile, rmePct, setupError } from './_util.js';

export const CASE_NAMES = ['transient', 'persistent-confirm', 'fanout-4', 'rpc'] as const;
export type CaseName = (typeof CASE_NAMES)[number];
export type BrokerName = 'ringmq' | 'rabbitmq' | 'external';

export const PAYLOADS: Record<CaseName, number> = { transient: 64, 'persistent-confirm': 1024, 'fanout-4': 256, rpc: 64 };
/** Publisher confirms window and consumer prefetch of persistent-confirm (issue 5), the same for every broker. */
export const CONFIRM_WINDOW = 256;
export const PREFETCH = 256;
/**
 * Most messages a publisher may be ahead of the slowest queue's consumer.
 * Consumer counts reach the publisher every PROGRESS_MS (5 ms) plus two IPC
 * hops, so this is ~40 ms of buffer at 250k msgs/s (enough not to starve a
 * fast broker), and a publisher that outruns its consumers reaches the bound
 * within the warm-up (measured: RabbitMQ fanout-4 here, 16.7k publishes/s vs
 * 3.5k deliveries/s per queue, so the bound is reached in under a second).
 */
export const MAX_BACKLOG = 10_000;
/** Default shard count of the ringmq server under test (bench flag --shards). */
export const DEFAULT_SHARDS = 1;

export const MISSING_AMQPLIB =
  'amqplib is not installed (a dev dependency of ringmq): run `npm install` (or `npm install --no-save amqplib`) in the ringmq checkout';

export interface Timing {
  warmupMs: number;
  measureMs: number;
  markEveryMs: number;
  rounds: number;
}

export function timingFor(quick: boolean): Timing {
  return quick ? { warmupMs: 1000, measureMs: 1500, markEveryMs: 500, rounds: 1 } : { warmupMs: 2000, measureMs: 4000, markEveryMs: 500, rounds: 3 };
}

/**
 * The address `ringmq serve` (or scripts/rabbitmq.mjs) announces on stdout:
 * `listening on amqp://HOST:PORT` anywhere in the line, HOST possibly
 * `user:pass@`-prefixed or a bracketed IPv6 address.
 */
const LISTENING_RE = /listening on amqp:\/\/(?:[^@\s/]*@)?(\[[^\]\s]+\]|[^:/\s]+):(\d+)/;

export function parseListening(line: string): { host: string; port: number } | undefined {
  const m = LISTENING_RE.exec(line);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

/** The URL the bench's clients use for an announced address (guest is allowed from loopback). */
export function amqpUrl(host: string, port: number): string {
  return `amqp://guest:guest@${host}:${port}`;
}

/**
 * Adds `ratio` (subject msgs/s over the other broker's, same case) and
 * `vs` to the subject's rows; for rpc also `p99_ratio` (subject p99 over the
 * other's: lower is better). Rows of other brokers are left as they are.
 */
export function addRatios(rows: BenchResult[], subject: BrokerName, vs: BrokerName): BenchResult[] {
  return rows.map((r) => {
    if (r.broker !== subject) return r;
    const other = rows.find((o) => o.broker === vs && o.case === r.case);
    if (!other || !other.msgs_per_s || r.msgs_per_s === undefined) return r;
    const out: BenchResult = { ...r, ratio: r.msgs_per_s / other.msgs_per_s, vs };
    if (r.p99_us !== undefined && other.p99_us) out.p99_ratio = r.p99_us / other.p99_us;
    return out;
  });
}

/** What one case measured in one round. */
export interface Measurement {
  msgsPerS: number;
  /** msgs/s of each marked interval. */
  intervals: number[];
  publishesPerS?: number;
  latenciesUs?: Float64Array;
}

/** One result row from the rounds of one case on one broker. */
export function resultRow(c: CaseName, broker: BrokerName, shards: number | undefined, rounds: Measurement[]): BenchResult {
  const payload = PAYLOADS[c];
  const rate = median(rounds.map((m) => m.msgsPerS));
  const row: BenchResult = { suite: 'amqp', case: c, broker, payload };
  if (shards !== undefined) row.shards = shards;
  row.msgs_per_s = rate;
  row.mb_per_s = (rate * payload) / 1e6;
  const intervals = rounds.flatMap((m) => m.intervals);
  const rme = rmePct(intervals);
  if (Number.isFinite(rme)) row.rme_pct = rme;
  const lat = rounds.flatMap((m) => (m.latenciesUs ? [...m.latenciesUs] : [])).sort((a, b) => a - b);
  if (lat.length) {
    row.p50_us = percentile(lat, 50);
    row.p99_us = percentile(lat, 99);
  }
  const pubs = rounds.map((m) => m.publishesPerS).filter((x): x is number => x !== undefined);
  if (c === 'fanout-4' && pubs.length) row.publishes_per_s = median(pubs);
  return row;
}

/** Rates from the marks of several clients: the window's rate and each interval's, summed over clients. */
export function ratesFromMarks(marks: { count: number; t: number }[][]): { rate: number; intervals: number[] } {
  let rate = 0;
  const k = Math.min(...marks.map((m) => m.length));
  const intervals = new Array<number>(Math.max(0, k - 1)).fill(0);
  for (const m of marks) {
    const first = m[0]!;
    const last = m[k - 1]!;
    rate += ((last.count - first.count) * 1000) / (last.t - first.t);
    for (let i = 1; i < k; i++) intervals[i - 1]! += ((m[i]!.count - m[i - 1]!.count) * 1000) / (m[i]!.t - m[i - 1]!.t);
  }
  return { rate, intervals };
}

// ---------------------------------------------------------------------------
// Processes

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function loadAmqplib(): Promise<typeof import('amqplib')> {
  try {
    return await import('amqplib');
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') throw setupError(MISSING_AMQPLIB);
    throw err;
  }
}

/** The last lines a process wrote, for error messages. */
class Tail {
  lines: string[] = [];
  #partial = '';
  constructor(private readonly max = 40) {}
  push(chunk: string): string[] {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop()!;
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
    return parts;
  }
  text(): string {
    return [...this.lines, this.#partial].filter(Boolean).join('\n');
  }
}

/** A broker the clients talk to, and how to stop it. */
interface Target {
  broker: BrokerName;
  url: string;
  shards?: number;
  /** Problems seen while stopping (e.g. no exit on SIGTERM), for the notes. */
  stop(): Promise<string[]>;
}

function waitExit(p: ChildProcess, ms: number): Promise<boolean> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Spawns a server process and resolves with its announced address once a
 * stdout line matches LISTENING_RE. Rejects if it exits first or is silent
 * for `timeoutMs`, with what it printed. `ownSession`: the server runs in a
 * session of its own (setsid), as a broker run as a service does and as
 * scripts/rabbitmq.mjs starts RabbitMQ; with the kernel's autogroup
 * scheduling (a group per session) the broker then competes with the client
 * processes as a group, not thread by thread, for both brokers alike.
 */
function spawnListening(what: string, cmd: string, args: string[], timeoutMs: number, ownSession = false): Promise<{ proc: ChildProcess; host: string; port: number; tail: Tail }> {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: ownSession });
  const tail = new Tail();
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(setupError(`${what} did not print "listening on amqp://HOST:PORT" within ${timeoutMs / 1000}s; output:\n${tail.text()}`));
    }, timeoutMs);
    // Keep reading both pipes for the whole run: a full pipe would block the server.
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => tail.push(d));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      for (const line of tail.push(d)) {
        const a = parseListening(line);
        if (a && !done) {
          done = true;
          clearTimeout(timer);
          resolve({ proc, ...a, tail });
        }
      }
    });
    proc.on('error', (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(setupError(`${what}: ${err.message}`));
    });
    proc.on('exit', (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(Object.assign(setupError(`${what} exited (${code ?? signal}) before listening; output:\n${tail.text()}`), { exitCode: code }));
    });
  });
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export function serveArgs(dir: string, port: number, shards: number): string[] {
  return ['serve', '--host', '127.0.0.1', '--port', String(port), '--data', dir, '--fsync', 'always', '--shards', String(shards)];
}

async function startRingmq(shards: number, note: (l: string) => void): Promise<Target> {
  const dir = mkdtempSync(join(os.tmpdir(), 'ringmq-bench-amqp-'));
  const bin = join(repoRoot, 'bin/ringmq.js');
  let s: Awaited<ReturnType<typeof spawnListening>>;
  try {
    // --port 0: the kernel picks a free port, the server prints it.
    s = await spawnListening('ringmq serve', process.execPath, [bin, ...serveArgs(dir, 0, shards)], 30_000, true);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  note(`ringmq serve (${shards} shard${shards === 1 ? '' : 's'}, fsync always) on ${s.host}:${s.port}, data in ${dir}`);
  return {
    broker: 'ringmq',
    url: amqpUrl(s.host, s.port),
    shards,
    async stop() {
      const problems: string[] = [];
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) {
        problems.push(`ringmq serve had exited (${s.proc.exitCode ?? s.proc.signalCode}) before the bench stopped it; output:\n${s.tail.text()}`);
      } else {
        s.proc.kill('SIGTERM');
        if (!(await waitExit(s.proc, 10_000))) {
          problems.push('ringmq serve did not exit within 10 s of SIGTERM (killed)');
          s.proc.kill('SIGKILL');
          await waitExit(s.proc, 5000);
        } else if (s.proc.exitCode !== 0) {
          problems.push(`ringmq serve exited with ${s.proc.exitCode ?? s.proc.signalCode} on SIGTERM; output:\n${s.tail.text()}`);
        }
      }
      rmSync(dir, { recursive: true, force: true });
      return problems;
    },
  };
}

export const RABBITMQ_SCRIPT = fileURLToPath(new URL('../../scripts/rabbitmq.mjs', import.meta.url));

async function startRabbitmq(note: (l: string) => void): Promise<Target> {
  let s: Awaited<ReturnType<typeof spawnListening>>;
  try {
    s = await spawnListening('scripts/rabbitmq.mjs run', process.execPath, [RABBITMQ_SCRIPT, 'run'], 120_000);
  } catch (err) {
    // Exit code 3: not installed; the script's message says how to install it.
    if ((err as { exitCode?: number }).exitCode === 3) throw setupError(`--compare rabbitmq: ${(err as Error).message.split('\n').slice(1).join('\n')}`);
    throw err;
  }
  note(`rabbitmq (private, loopback-only, scripts/rabbitmq.mjs) on ${s.host}:${s.port}`);
  return {
    broker: 'rabbitmq',
    url: amqpUrl(s.host, s.port),
    async stop() {
      s.proc.kill('SIGTERM');
      if (!(await waitExit(s.proc, 45_000))) {
        s.proc.kill('SIGKILL');
        return [`scripts/rabbitmq.mjs did not stop within 45 s; its temp dir may be left in ${os.tmpdir()}/ringmq-rabbitmq-*`];
      }
      return [];
    },
  };
}

/** One forked amqp-client.js process. */
class Client {
  readonly proc: ChildProcess;
  /** Last count pushed by a consumer. */
  progress = 0;
  #inbox: FromClient[] = [];
  #waiter: (() => void) | undefined;
  #failure: Error | undefined;

  constructor(
    readonly name: string,
    job: Job,
    onProgress: () => void,
  ) {
    // The child's stdout goes to our stderr: stdout is the --json stream.
    this.proc = fork(fileURLToPath(new URL('./amqp-client.js', import.meta.url)), [], { stdio: ['ignore', 2, 2, 'ipc'], serialization: 'advanced' });
    this.proc.on('message', (m: FromClient) => {
      if (m.type === 'progress') {
        this.progress = m.count;
        onProgress();
        return;
      }
      if (m.type === 'error') this.#failure ??= new Error(`${name}: ${m.message}`);
      else this.#inbox.push(m);
      this.#waiter?.();
    });
    this.proc.on('exit', (code, signal) => {
      if (code !== 0) this.#failure ??= new Error(`${name} exited (${code ?? signal})`);
      this.#waiter?.();
    });
    this.send({ type: 'job', job });
  }

  send(m: ToClient): void {
    if (this.proc.connected) this.proc.send(m);
  }

  /** The next message of `type` from this client (others before it are dropped). */
  async next<T extends FromClient['type']>(type: T, timeoutMs = 30_000): Promise<Extract<FromClient, { type: T }>> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.#failure) throw this.#failure;
      const i = this.#inbox.findIndex((m) => m.type === type);
      if (i >= 0) return this.#inbox.splice(i, 1)[0] as Extract<FromClient, { type: T }>;
      if (this.proc.exitCode !== null) throw new Error(`${this.name} exited before sending "${type}"`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`${this.name}: no "${type}" within ${timeoutMs / 1000}s`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#waiter = undefined;
    }
  }

  async close(): Promise<void> {
    this.send({ type: 'close' });
    if (!(await waitExit(this.proc, 10_000))) {
      this.proc.kill('SIGKILL');
      await waitExit(this.proc, 5000);
    }
  }
}

async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.close()));
}

/** Marks every client at the start of the window and every markEveryMs until its end. */
async function markWindow(clients: Client[], t: Timing): Promise<{ count: number; t: number }[][]> {
  const marks: { count: number; t: number }[][] = clients.map(() => []);
  const n = Math.max(1, Math.round(t.measureMs / t.markEveryMs));
  const t0 = Date.now();
  for (let k = 0; k <= n; k++) {
    const due = t0 + k * t.markEveryMs;
    if (due > Date.now()) await sleep(due - Date.now());
    for (const c of clients) c.send({ type: 'mark' });
    const got = await Promise.all(clients.map((c) => c.next('mark', 10_000)));
    got.forEach((m, i) => marks[i]!.push({ count: m.count, t: m.t }));
  }
  return marks;
}

let uniq = 0;
const names = (c: CaseName): string => `ringmq-bench-${c}-${process.pid}-${++uniq}`;

async function adminDo(amqp: typeof import('amqplib'), url: string, f: (ch: import('amqplib').Channel) => Promise<unknown>): Promise<void> {
  const conn: ChannelModel = await amqp.connect(url);
  // A lost connection fails the pending operation; the event itself must not crash the bench.
  conn.on('error', () => {});
  try {
    const ch = await conn.createChannel();
    await f(ch);
    await ch.close();
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Longest extra warm-up waiting for the backlog to settle. */
const MAX_SETTLE_MS = 10_000;

/**
 * Waits until the publisher's lead over the slowest consumer (`backlog()`)
 * has settled: at the bound (the consumers are the bottleneck) or moving by
 * less than 5% of the bound over 250 ms (they keep up). Without this, a slow
 * consumer's queue would still be filling during the window and the
 * publisher's rate would be its burst, not the pipeline's.
 */
export async function settle(backlog: () => number, maxMs = MAX_SETTLE_MS, stepMs = 250): Promise<boolean> {
  const until = Date.now() + maxMs;
  let prev = backlog();
  for (;;) {
    await sleep(stepMs);
    const b = backlog();
    if (b >= 0.9 * MAX_BACKLOG || Math.abs(b - prev) < 0.05 * MAX_BACKLOG) return true;
    if (Date.now() >= until) return false;
    prev = b;
  }
}

/** transient, persistent-confirm, fanout-4: publisher -> queue(s) -> consumer(s). */
async function throughputCase(amqp: typeof import('amqplib'), url: string, c: Exclude<CaseName, 'rpc'>, t: Timing): Promise<Measurement> {
  const base = names(c);
  const payload = PAYLOADS[c];
  const persistent = c === 'persistent-confirm';
  const queues = c === 'fanout-4' ? [0, 1, 2, 3].map((i) => `${base}-q${i}`) : [base];
  const exchange = c === 'fanout-4' ? `${base}-x` : '';
  await adminDo(amqp, url, async (ch) => {
    if (exchange) await ch.assertExchange(exchange, 'fanout', { durable: false, autoDelete: false });
    for (const q of queues) {
      await ch.assertQueue(q, { durable: persistent, autoDelete: false, exclusive: false });
      if (exchange) await ch.bindQueue(q, exchange, '');
    }
  });
  const clients: Client[] = [];
  try {
    let publisher: Client | undefined;
    const consumers: Client[] = [];
    let lastRelayed = -1;
    const relay = (): void => {
      const min = Math.min(...consumers.map((x) => x.progress));
      if (publisher && min !== lastRelayed) {
        lastRelayed = min;
        publisher.send({ type: 'consumed', count: min });
      }
    };
    for (const q of queues) {
      const job: Job = { role: 'consume', url, queue: q, payload, noAck: !persistent, prefetch: PREFETCH };
      const cl = new Client(`consumer of ${q}`, job, relay);
      consumers.push(cl);
      clients.push(cl);
    }
    await Promise.all(consumers.map((x) => x.next('ready')));
    publisher = new Client('publisher', {
      role: 'publish',
      url,
      exchange,
      routingKey: exchange ? '' : base,
      payload,
      persistent,
      confirmWindow: persistent ? CONFIRM_WINDOW : 0,
      maxBacklog: MAX_BACKLOG,
    }, () => {});
    clients.push(publisher);
    await publisher.next('ready');
    publisher.send({ type: 'go' });
    await sleep(t.warmupMs);
    const settled = await settle(() => publisher!.progress - Math.min(...consumers.map((x) => x.progress)));
    if (!settled) process.stderr.write(`ringmq bench amqp: ${c}: backlog still moving after ${MAX_SETTLE_MS / 1000} s more warm-up; measuring anyway\n`);
    const marks = await markWindow([...consumers, publisher], t);
    const consumed = ratesFromMarks(marks.slice(0, consumers.length));
    const published = ratesFromMarks(marks.slice(consumers.length));

    publisher.send({ type: 'stop' });
    const pub = await publisher.next('stopped', 60_000);
    // Every published message must reach every queue.
    let last = -1;
    let since = Date.now();
    for (;;) {
      const min = Math.min(...consumers.map((x) => x.progress));
      if (min >= pub.count) break;
      if (min !== last) {
        last = min;
        since = Date.now();
      } else if (Date.now() - since > 15_000) {
        throw new Error(`${c}: delivery stalled: ${pub.count} published, consumers at ${consumers.map((x) => x.progress).join(', ')} for 15 s`);
      }
      await sleep(20);
    }
    for (const x of consumers) x.send({ type: 'stop' });
    const ends = await Promise.all(consumers.map((x) => x.next('stopped')));
    ends.forEach((e, i) => {
      failIfNot(e.count === pub.count, `${c}: queue ${queues[i]} delivered ${e.count} of ${pub.count} published`);
      failIfNot(e.errors === 0, `${c}: queue ${queues[i]} delivered ${e.errors} messages out of sequence or of the wrong size`);
    });
    const m: Measurement = { msgsPerS: consumed.rate, intervals: consumed.intervals, publishesPerS: published.rate };
    if (pub.latencies_us?.length) m.latenciesUs = pub.latencies_us;
    return m;
  } finally {
    await closeAll(clients);
    await adminDo(amqp, url, async (ch) => {
      for (const q of queues) await ch.deleteQueue(q);
      if (exchange) await ch.deleteExchange(exchange);
    }).catch(() => {});
  }
}

async function rpcCase(amqp: typeof import('amqplib'), url: string, t: Timing): Promise<Measurement> {
  const queue = names('rpc');
  const payload = PAYLOADS.rpc;
  await adminDo(amqp, url, (ch) => ch.assertQueue(queue, { durable: false, autoDelete: false }));
  const clients: Client[] = [];
  try {
    const server = new Client('rpc server', { role: 'rpc-server', url, queue }, () => {});
    clients.push(server);
    await server.next('ready');
    const client = new Client('rpc client', { role: 'rpc-client', url, queue, payload }, () => {});
    clients.push(client);
    await client.next('ready');
    client.send({ type: 'go' });
    await sleep(t.warmupMs);
    const marks = await markWindow([client], t);
    const r = ratesFromMarks(marks);
    client.send({ type: 'stop' });
    const end = await client.next('stopped', 30_000);
    failIfNot(end.errors === 0, `rpc: ${end.errors} replies with a wrong correlation id or size`);
    server.send({ type: 'stop' });
    await server.next('stopped');
    const m: Measurement = { msgsPerS: r.rate, intervals: r.intervals };
    if (end.latencies_us) m.latenciesUs = end.latencies_us;
    return m;
  } finally {
    await closeAll(clients);
    await adminDo(amqp, url, (ch) => ch.deleteQueue(queue)).catch(() => {});
  }
}

async function serverVersion(amqp: typeof import('amqplib'), url: string): Promise<string> {
  const conn = await amqp.connect(url);
  conn.on('error', () => {});
  try {
    const p = (conn.connection as unknown as { serverProperties?: Record<string, unknown> }).serverProperties ?? {};
    return `${String(p.product ?? '?')} ${String(p.version ?? '?')}`;
  } finally {
    await conn.close().catch(() => {});
  }
}

export const suite: Suite = {
  name: 'amqp',
  description: 'AMQP 0-9-1 over loopback with amqplib clients in child processes: ringmq serve (--compare rabbitmq: vs RabbitMQ)',
  threads: 4,
  async unavailable() {
    try {
      await loadAmqplib();
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  },
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const amqp = await loadAmqplib();
    const t = timingFor(opts.quick);
    const shards = opts.shards ?? DEFAULT_SHARDS;
    const targets: Target[] = [];
    let stopping: Promise<void> | undefined;
    const stopAll = (): Promise<void> =>
      (stopping ??= (async () => {
        const problems: string[] = [];
        for (const target of [...targets].reverse()) problems.push(...(await target.stop()));
        for (const p of problems) process.stderr.write(`ringmq bench amqp: ${p}\n`);
      })());
    // Ctrl-C or SIGTERM mid-run: stop the brokers (and remove their data)
    // before exiting; the client processes die with their IPC channel.
    const onSignal = (sig: NodeJS.Signals): void => {
      process.stderr.write(`ringmq bench amqp: ${sig}: stopping the brokers\n`);
      void stopAll().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      if (opts.url) targets.push({ broker: 'external', url: opts.url, async stop() { return []; } });
      else targets.push(await startRingmq(shards, opts.note));
      if (opts.compare === 'rabbitmq') targets.push(await startRabbitmq(opts.note));
      // Which brokers were measured belongs with the figures: on stderr, not a transient progress note.
      const versions: string[] = [];
      for (const target of targets) versions.push(`${target.broker}: ${await serverVersion(amqp, target.url)}`);
      if (!opts.json) process.stderr.write(`amqp brokers: ${versions.join(', ')}\n`);

      const results = new Map<string, Measurement[]>();
      // RINGMQ_BENCH_CASES=a,b runs only those cases (profiling one case), as in the engine suite.
      const only = process.env['RINGMQ_BENCH_CASES']?.split(',');
      const cases = CASE_NAMES.filter((c) => only === undefined || only.includes(c));
      for (let round = 0; round < t.rounds; round++) {
        for (const c of cases) {
          // Alternate which broker goes first, so drift in the machine's load
          // does not always favour the same one.
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const target of order) {
            opts.note(`amqp ${c}: ${target.broker}, round ${round + 1} of ${t.rounds}`);
            const m = c === 'rpc' ? await rpcCase(amqp, target.url, t) : await throughputCase(amqp, target.url, c, t);
            const key = `${target.broker}/${c}`;
            results.set(key, [...(results.get(key) ?? []), m]);
          }
        }
      }
      let rows: BenchResult[] = [];
      for (const c of cases) {
        for (const target of targets) rows.push(resultRow(c, target.broker, target.shards, results.get(`${target.broker}/${c}`)!));
      }
      if (targets.length === 2) rows = addRatios(rows, targets[0]!.broker, targets[1]!.broker);
      return rows;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await stopAll();
    }
  },
};
