/**
 * `ringmq bench engine`: the embedded Broker end to end, in process, with 1
 * and 2 shard workers, against a single-thread in-memory queue (array +
 * callbacks) measured in the same run as the no-threads bound.
 *
 * - single-thread-bound: push 64 B into an array, shift, call a handler that
 *   "acks" (a counter). No threads, no copies: what one thread does alone.
 * - transient (64 B): publish (fire-and-forget) -> deliver -> ack, transient
 *   queue(s), one per shard, one consumer each with prefetch 4000. msgs/s from
 *   the first publish to the last ack.
 * - persistent-confirm (1 KiB): persistent messages to durable queues under
 *   fsync=always, 256 publishes in flight per queue, each awaiting its confirm,
 *   a consumer acking. msgs/s confirmed and consumed.
 * - fanout-4 (64 B): one publish to a fanout exchange reaches 4 transient
 *   queues; msgs/s = deliveries (4 per publish).
 * - rpc (64 B): request/response round trips, one in flight; p50/p99 µs.
 * - backlog-drain (64 B): a backlog of persistent messages (1,000,000;
 *   200,000 with --quick) in a durable queue, then one consumer drains it.
 * - memory-at-rest (64 B): the shards' heap + array-buffer growth and the
 *   process RSS growth per queued persistent message at rest (bodies on
 *   disk: memoryBudget 0), after a GC in each shard.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import os from 'node:os';
import { join } from 'node:path';
import { Broker } from '../src/broker.js';
import { shardOf } from '../src/engine/placement.js';
import type { BenchOptions, BenchResult, Suite } from './_util.js';
import { failIfNot, median, percentile } from './_util.js';


/** Queue names that land one on each shard (the broker places a queue by FNV-1a of its name). */
function namesPerShard(prefix: string, shards: number): string[] {
  const out: string[] = [];
  for (let s = 0; s < shards; s++) {
    for (let i = 0; ; i++) {
      const n = `${prefix}-${s}-${i}`;
      if (shardOf(n, shards) === s) { out.push(n); break; }
    }
  }
  return out;
}

/**
 * Consumer prefetch in the throughput cases. The publisher yields to the
 * event loop every 4096 messages; with prefetch 1000 the consumer ran dry
 * between yields and the pipeline stalled (measured on this machine, 1M
 * transient 64 B, 1 shard: prefetch 1000 -> 406k msgs/s, 4000 -> 588k, the
 * publish and consume phases then fully overlapped).
 */
const PREFETCH = 4000;

/** Publishes in flight per queue (each awaiting its confirm) in persistent-confirm. */
const WINDOW = Number(process.env['RINGMQ_BENCH_WINDOW'] ?? 256);

/** A full GC of this thread, twice (array buffers are swept after the collection that frees them). */
function mainGc(): void {
  let g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) {
    setFlagsFromString('--expose-gc');
    g = runInNewContext('gc') as () => void;
  }
  g();
  g();
}

const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Awaits `done`, failing (with the broker's stats) if `progress()` stops
 * moving for 10 s: a stalled pipeline is a bug to report, not a hang.
 */
async function watch(b: Broker, done: Promise<void>, progress: () => number, what: string): Promise<void> {
  let last = -1;
  let since = Date.now();
  let finished = false;
  void done.then(() => { finished = true; });
  while (!finished) {
    await new Promise((r) => setTimeout(r, 100));
    const p = progress();
    if (p !== last) { last = p; since = Date.now(); continue; }
    if (!finished && Date.now() - since > 10_000) {
      const st = await b.stats();
      const q = Object.fromEntries(Object.entries(st.queues).map(([k, v]) => [k, { ready: v.ready, unacked: v.unacked, routed: v.counters.routed, delivered: v.counters.delivered, acked: v.counters.acked }]));
      throw new Error(`${what}: no progress for 10 s at ${p}; queues ${JSON.stringify(q)}; shards ${JSON.stringify(st.shards.map((x) => x.ringSpilled))}`);
    }
  }
}

function singleThreadBound(n: number, payload: number): number {
  const body = Buffer.alloc(payload, 1);
  const q: Buffer[] = [];
  let acked = 0;
  const handler = (m: Buffer): void => { if (m.length === payload) acked++; };
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    for (let j = 0; j < 1000; j++) q.push(body);
    while (q.length > 0) handler(q.shift()!);
  }
  const s = (performance.now() - t0) / 1000;
  failIfNot(acked === n, `single-thread bound acked ${acked} of ${n}`);
  return n / s;
}

/**
 * Timed passes of fire-and-forget publishes through one broker: `pass(count)`
 * sends `count` messages with `send` (waiting for ring space when a publish
 * had to), waits until the consumers' `delivered()` calls reach `perPublish`
 * per message, and returns deliveries per second.
 */
function passes(b: Broker, what: string, perPublish: number, send: (i: number) => { written: boolean }): { delivered(): void; pass(count: number): Promise<number> } {
  let got = 0;
  let target = 0;
  let done = (): void => {};
  return {
    delivered(): void {
      if (++got === target) done();
    },
    async pass(count: number): Promise<number> {
      got = 0;
      target = perPublish * count;
      const finished = new Promise<void>((r) => { done = r; });
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        if (!send(i).written) await b.drained();
        if ((i & 4095) === 4095) await yieldNow();
      }
      await watch(b, finished, () => got, what);
      const s = (performance.now() - t0) / 1000;
      failIfNot(got === target, `${what}: ${got} of ${target} delivered`);
      return target / s;
    },
  };
}

async function transient(root: string, shards: number, n: number, payload: number): Promise<number> {
  const dir = mkdtempSync(join(root, 'transient-'));
  const b = await Broker.open({ dir, shards, fsync: 'never' });
  try {
    const queues = namesPerShard('t', shards);
    for (const q of queues) await b.declareQueue(q, { durable: false });
    const body = Buffer.alloc(payload, 7);
    const p = passes(b, 'transient', 1, (i) => b.send(queues[i % queues.length]!, body, { persistent: false }));
    for (const q of queues) await b.consume(q, (m) => { m.ack(); p.delivered(); }, { prefetch: PREFETCH });
    // Warm-up pass through the same broker: the shard workers are new threads with cold code.
    await p.pass(Math.max(20_000, Math.floor(n / 5)));
    return await p.pass(n);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function persistentConfirm(root: string, shards: number, ms: number, payload: number): Promise<{ rate: number; p50: number; p99: number }> {
  const dir = mkdtempSync(join(root, 'persistent-'));
  const b = await Broker.open({ dir, shards, fsync: 'always' });
  try {
    const queues = namesPerShard('p', shards);
    for (const q of queues) await b.declareQueue(q);
    let consumed = 0;
    for (const q of queues) await b.consume(q, (m) => { m.ack(); consumed++; }, { prefetch: PREFETCH });
    const body = Buffer.alloc(payload, 9);
    let confirmed = 0;
    let lat: number[] = [];
    let stop = false;
    const publisher = async (q: string): Promise<void> => {
      while (!stop) {
        const s = performance.now();
        await b.send(q, body);
        lat.push(performance.now() - s);
        confirmed++;
      }
    };
    const ps: Promise<void>[] = [];
    for (const q of queues) for (let i = 0; i < WINDOW; i++) ps.push(publisher(q));
    // Warm-up (the shard workers are new threads with cold code), then the measured window.
    await new Promise((r) => setTimeout(r, Math.min(500, ms / 4)));
    const before = confirmed;
    lat = [];
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    const measured = confirmed - before;
    const s = (performance.now() - t0) / 1000;
    stop = true;
    await Promise.all(ps);
    const until = Date.now() + 10_000;
    while (consumed < confirmed && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    failIfNot(consumed >= confirmed, `persistent: consumed ${consumed} of ${confirmed}`);
    lat.sort((a, b2) => a - b2);
    return { rate: measured / s, p50: percentile(lat, 50) * 1000, p99: percentile(lat, 99) * 1000 };
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fanout(root: string, shards: number, n: number, payload: number): Promise<number> {
  const dir = mkdtempSync(join(root, 'fanout-'));
  const b = await Broker.open({ dir, shards, fsync: 'never' });
  try {
    await b.declareExchange('fan', 'fanout', { durable: false });
    const body = Buffer.alloc(payload, 3);
    const p = passes(b, 'fanout-4', 4, () => b.publish('fan', '', body, { persistent: false }));
    for (let i = 0; i < 4; i++) {
      const q = `fan-${i}`;
      await b.declareQueue(q, { durable: false });
      await b.bindQueue(q, 'fan');
      await b.consume(q, (m) => { m.ack(); p.delivered(); }, { prefetch: PREFETCH });
    }
    // Warm-up pass through the same broker, as in transient.
    await p.pass(Math.max(5_000, Math.floor(n / 5)));
    return await p.pass(n);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rpc(root: string, shards: number, n: number, payload: number): Promise<{ p50: number; p99: number; rate: number }> {
  const dir = mkdtempSync(join(root, 'rpc-'));
  const b = await Broker.open({ dir, shards, fsync: 'never' });
  try {
    await b.declareQueue('rpc', { durable: false });
    await b.reply('rpc', (m) => m.body);
    const body = Buffer.alloc(payload, 5);
    // Warm-up: until the round trip's code is optimized (a few thousand calls), so p99 measures the broker, not the JIT.
    for (let i = 0; i < Math.min(2000, n); i++) await b.request('rpc', body);
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      const r = await b.request('rpc', body, { timeout: 5000 });
      lat.push(performance.now() - s);
      if (r.body.length !== payload) failIfNot(false, 'rpc reply size');
    }
    const secs = (performance.now() - t0) / 1000;
    lat.sort((a, b2) => a - b2);
    return { p50: percentile(lat, 50) * 1000, p99: percentile(lat, 99) * 1000, rate: n / secs };
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fill(b: Broker, queues: string[], n: number, body: Buffer): Promise<void> {
  let inflight: PromiseLike<void>[] = [];
  for (let i = 0; i < n; i++) {
    const c = b.send(queues[i % queues.length]!, body);
    inflight.push(c);
    if (inflight.length >= 4096) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
}

async function backlogDrain(root: string, shards: number, n: number, payload: number): Promise<number> {
  const dir = mkdtempSync(join(root, 'backlog-'));
  const b = await Broker.open({ dir, shards, fsync: 'never' });
  try {
    const queues = namesPerShard('b', shards);
    for (const q of queues) await b.declareQueue(q);
    await fill(b, queues, n, Buffer.alloc(payload, 4));
    let got = 0;
    let done!: () => void;
    const finished = new Promise<void>((r) => { done = r; });
    const t0 = performance.now();
    for (const q of queues) await b.consume(q, (m) => { m.ack(); if (++got === n) done(); }, { prefetch: PREFETCH });
    await watch(b, finished, () => got, 'backlog-drain');
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function memoryAtRest(root: string, shards: number, n: number, payload: number): Promise<{ heapPer: number; rssPer: number }> {
  const dir = mkdtempSync(join(root, 'memory-'));
  const b = await Broker.open({ dir, shards, fsync: 'never', memoryBudget: 0 });
  try {
    const queues = namesPerShard('m', shards);
    for (const q of queues) await b.declareQueue(q);
    const before = await b.memory(true);
    mainGc();
    const rss0 = process.memoryUsage().rss;
    await fill(b, queues, n, Buffer.alloc(payload, 2));
    await b.sync();
    const after = await b.memory(true);
    // The publishing loop's garbage on this thread is not "at rest": collect it before reading RSS.
    mainGc();
    await new Promise((r) => setTimeout(r, 200));
    const rss1 = process.memoryUsage().rss;
    const st = await b.stats();
    const ready = Object.values(st.queues).reduce((a, q) => a + q.ready, 0);
    failIfNot(ready === n, `memory-at-rest: ${ready} ready of ${n}`);
    return { heapPer: (after - before) / n, rssPer: (rss1 - rss0) / n };
  } finally {
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const suite: Suite = {
  name: 'engine',
  description: 'embedded Broker end to end (1 and 2 shards) vs a single-thread in-memory queue',
  threads: 3,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const root = mkdtempSync(join(os.tmpdir(), 'ringmq-bench-engine-'));
    const out: BenchResult[] = [];
    const q = opts.quick;
    const N = q ? 200_000 : 1_000_000;
    const reps = q ? 1 : 3;
    try {
      const boundRuns: number[] = [];
      for (let r = 0; r < reps; r++) boundRuns.push(singleThreadBound(N, 64));
      const bound = median(boundRuns);
      out.push({ suite: 'engine', case: 'single-thread-bound', payload: 64, shards: 0, msgs_per_s: bound, mb_per_s: (bound * 64) / 1e6 });
      // RINGMQ_BENCH_CASES=a,b runs only those cases (profiling one case); the baseline always runs.
      const only = process.env['RINGMQ_BENCH_CASES']?.split(',');
      const want = (c: string): boolean => only === undefined || only.includes(c);
      for (const shards of [1, 2]) {
        if (want('transient')) {
        opts.note(`shards ${shards}: transient`);
        const tr: number[] = [];
        for (let r = 0; r < reps; r++) tr.push(await transient(root, shards, N, 64));
        const t = median(tr);
        out.push({ suite: 'engine', case: 'transient', payload: 64, shards, msgs_per_s: t, mb_per_s: (t * 64) / 1e6, ratio: t / bound, vs: 'single-thread-bound' });
        }
        if (want('persistent-confirm')) {
        opts.note(`shards ${shards}: persistent-confirm`);
        const pc = await persistentConfirm(root, shards, q ? 1000 : 3000, 1024);
        out.push({ suite: 'engine', case: 'persistent-confirm', payload: 1024, shards, msgs_per_s: pc.rate, mb_per_s: (pc.rate * 1024) / 1e6, p50_us: pc.p50, p99_us: pc.p99, fsync: 'always', window: WINDOW });
        }
        if (want('fanout-4')) {
        opts.note(`shards ${shards}: fanout-4`);
        const f = await fanout(root, shards, N / 4, 64);
        out.push({ suite: 'engine', case: 'fanout-4', payload: 64, shards, msgs_per_s: f, mb_per_s: (f * 64) / 1e6, ratio: f / bound, vs: 'single-thread-bound' });
        }
        if (want('rpc')) {
        opts.note(`shards ${shards}: rpc`);
        const rp = await rpc(root, shards, q ? 2000 : 20_000, 64);
        out.push({ suite: 'engine', case: 'rpc', payload: 64, shards, msgs_per_s: rp.rate, p50_us: rp.p50, p99_us: rp.p99 });
        }
        if (want('backlog-drain')) {
        opts.note(`shards ${shards}: backlog-drain`);
        const bd = await backlogDrain(root, shards, N, 64);
        out.push({ suite: 'engine', case: 'backlog-drain', payload: 64, shards, msgs_per_s: bd, mb_per_s: (bd * 64) / 1e6, ratio: bd / bound, vs: 'single-thread-bound', backlog: N });
        }
        if (want('memory-at-rest')) {
        opts.note(`shards ${shards}: memory-at-rest`);
        const mem = await memoryAtRest(root, shards, N, 64);
        out.push({ suite: 'engine', case: 'memory-at-rest', payload: 64, shards, bytes_per_msg: mem.heapPer, rss_bytes_per_msg: mem.rssPer, messages: N });
        }
      }
      return out;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
};
