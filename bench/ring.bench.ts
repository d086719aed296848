/**
 * `ringmq bench ring`: one-way stream, main thread -> one worker, the consumer
 * checking every message (sequence number in its first and last 4 bytes).
 * Side by side, per payload size, interleaved over rounds:
 *   ring                  — RingProducer -> RingConsumer (records read in place)
 *   postmessage           — MessagePort.postMessage, one message per post
 *   postmessage-batch256  — postMessage of 256 messages packed in one buffer
 *   copy-bound            — single thread, Uint8Array#set of the same bytes into
 *                           a SharedArrayBuffer: the bound for any copying ring
 * Each ring row carries its ratio to the three others, measured in the same round.
 */
import { Worker } from 'node:worker_threads';
import { PerformanceObserver } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import { createRing, RingProducer } from '../src/ring/ring.js';
import { sleepSync } from '../src/ring/doorbell.js';
import { failIfNot, median, rmePct, type BenchOptions, type BenchResult, type Suite } from './_util.js';
import { kConsumedField, kMainSleepingField, kProgressFields, type Control, type RingStats } from './ring-protocol.js';

const PAYLOADS = [16, 64, 1024, 65536];
const CASES = ['postmessage', 'postmessage-batch256', 'ring', 'copy-bound'] as const;
type Case = (typeof CASES)[number];

/** Messages per timed iteration: enough for ~10-40 ms each on this machine. */
function messagesPer(c: Case, payload: number): number {
  if (c === 'postmessage') return payload >= 65536 ? 1000 : 10_000;
  if (payload >= 65536) return 2048;
  if (payload >= 1024) return 50_000;
  return 200_000;
}

/** The producer publishes every ~16 KiB of records, as the I/O thread would after a socket read. */
const publishEvery = (payload: number) => Math.max(1, Math.min(256, Math.floor(16384 / payload)));

export const RING_CAPACITY = 1 << 20;
/**
 * Polls of the ring before the consumer parks (a few µs in all). Measured with
 * --quick runs here: at 64 KiB it roughly doubled throughput over 64 polls
 * (~140k -> ~250k msgs/s) by saving a sleep/wake per record; at 64 B no
 * difference beyond the noise.
 */
const CONSUMER_SPIN = 1024;

function stamp(msg: Uint8Array, view: DataView, seq: number): void {
  view.setUint32(0, seq, true);
  view.setUint32(msg.length - 4, seq, true);
}

interface Sample {
  msgsPerS: number;
  rme: number;
}

class Harness {
  readonly worker: Worker;
  readonly progress = new Int32Array(new SharedArrayBuffer(kProgressFields * 4));
  #waiters: ((m: unknown) => void)[] = [];
  /** GC events of this thread delivered so far (see ring-worker.ts for how a session is counted). */
  gcSeen = 0;

  constructor() {
    this.worker = new Worker(new URL('./ring-worker.js', import.meta.url));
    this.worker.on('message', (m: unknown) => this.#waiters.shift()?.(m));
    this.worker.on('error', (err) => {
      throw err;
    });
    new PerformanceObserver((list) => (this.gcSeen += list.getEntries().length)).observe({ entryTypes: ['gc'] });
  }

  next<T>(): Promise<T> {
    return new Promise((resolve) => this.#waiters.push(resolve as (m: unknown) => void));
  }

  post(m: Control | Uint8Array): void {
    this.worker.postMessage(m);
  }
}

export interface RingRun {
  stats: RingStats;
  records: number;
}

/**
 * Writes `n` stamped messages through the ring, publishing every `every`,
 * waiting (Atomics.wait) when full, then waits until the consumer has taken
 * them all. Returns the next sequence number. Allocates nothing.
 */
function produceRing(h: Harness, p: RingProducer, msg: Uint8Array, view: DataView, seq: number, n: number, every: number): number {
  const target = (seq + n) >>> 0;
  for (let i = 0; i < n; i++) {
    stamp(msg, view, seq);
    seq = (seq + 1) >>> 0;
    if (!p.tryWrite(1, msg)) {
      p.waitForSpaceSync(msg.length);
      p.tryWrite(1, msg);
    }
    if (i % every === every - 1) p.publish();
  }
  p.publish();
  for (;;) {
    const seen = Atomics.load(h.progress, kConsumedField);
    if (seen >>> 0 === target) break;
    sleepSync(h.progress, kMainSleepingField, kConsumedField, seen, Infinity);
  }
  return seq;
}

/**
 * An untimed pass of `records` messages through the ring, outside tinybench
 * (whose own bookkeeping allocates), counting GC events on both threads.
 */
async function gcPass(h: Harness, payload: number, records: number): Promise<{ producer: number; consumer: number }> {
  const msg = new Uint8Array(payload);
  const view = new DataView(msg.buffer);
  const sab = createRing(RING_CAPACITY);
  const p = new RingProducer(sab);
  // A warm-up session optimises both loops; the counted session follows on the same ring.
  let seq = 0;
  let consumer = 0;
  let producer = 0;
  const settle = () => new Promise((r) => setTimeout(r, 50));
  for (const n of [Math.min(records, 20_000), records]) {
    Atomics.store(h.progress, kConsumedField, seq | 0);
    const done = h.next<RingStats>();
    h.post({ kind: 'ring', sab, progress: h.progress.buffer as SharedArrayBuffer, spin: CONSUMER_SPIN, from: seq, countGc: true });
    await settle(); // let GC entries from before the session arrive first
    const before = h.gcSeen;
    seq = produceRing(h, p, msg, view, seq, n, publishEvery(payload));
    await settle();
    producer = h.gcSeen - before;
    p.closeSync();
    const stats = await done;
    failIfNot(stats.errors === 0 && stats.records === n, `gc pass ${payload} B: ${stats.errors} bad records, ${stats.records} of ${n}`);
    consumer = stats.gcs;
  }
  return { producer, consumer };
}

/** Adds the four cases for one payload to a tinybench run; `out` receives msgs/s per case and the ring's stats. */
function addCases(bench: Bench, h: Harness, payload: number, out: Map<Case, number>, ringRuns: RingRun[]): void {
  const msg = new Uint8Array(payload);
  const view = new DataView(msg.buffer);

  // ring
  {
    const n = messagesPer('ring', payload);
    const every = publishEvery(payload);
    let p: RingProducer;
    let seq = 0;
    let done: Promise<RingStats>;
    bench.add(
      'ring',
      () => {
        seq = produceRing(h, p, msg, view, seq, n, every);
      },
      {
        beforeAll() {
          const sab = createRing(RING_CAPACITY);
          p = new RingProducer(sab);
          seq = 0;
          Atomics.store(h.progress, kConsumedField, 0);
          done = h.next<RingStats>();
          h.post({ kind: 'ring', sab, progress: h.progress.buffer as SharedArrayBuffer, spin: CONSUMER_SPIN, from: 0, countGc: false });
        },
        async afterAll() {
          p.closeSync();
          const stats = await done;
          failIfNot(stats.errors === 0 && stats.records === seq, `ring ${payload} B: ${stats.errors} bad records, ${stats.records} of ${seq} received`);
          ringRuns.push({ stats, records: seq });
        },
      },
    );
  }

  for (const kind of ['port', 'batch'] as const) {
    const c: Case = kind === 'port' ? 'postmessage' : 'postmessage-batch256';
    const n = messagesPer(c, payload);
    const batch = kind === 'batch' ? new Uint8Array(256 * (4 + payload)) : undefined;
    const batchView = batch ? new DataView(batch.buffer) : undefined;
    bench.add(
      c,
      async () => {
        const done = h.next<{ records: number; errors: number }>();
        h.post({ kind, n });
        if (kind === 'port') {
          for (let seq = 0; seq < n; seq++) {
            stamp(msg, view, seq);
            h.post(msg);
          }
        } else {
          let at = 0;
          for (let seq = 0; seq < n; seq++) {
            stamp(msg, view, seq);
            batchView!.setUint32(at, payload, true);
            batch!.set(msg, at + 4);
            at += 4 + payload;
            if (at === batch!.length || seq === n - 1) {
              h.post(at === batch!.length ? batch! : batch!.subarray(0, at).slice());
              at = 0;
            }
          }
        }
        const r = await done;
        failIfNot(r.errors === 0 && r.records === n, `${c} ${payload} B: ${r.errors} bad messages, ${r.records} of ${n}`);
      },
      { async: true },
    );
  }

  // copy-bound: the producer's copies alone, on one thread, into shared memory.
  {
    const n = messagesPer('copy-bound', payload);
    const dst = new Uint8Array(new SharedArrayBuffer(RING_CAPACITY));
    const stride = (payload + 8 + 7) & ~7;
    let check = 0;
    bench.add('copy-bound', () => {
      let at = 0;
      for (let seq = 0; seq < n; seq++) {
        stamp(msg, view, seq);
        if (at + stride > dst.length) at = 0;
        dst.set(msg, at + 8);
        at += stride;
      }
      check = dst[8]!;
    });
    void check;
  }
  void out;
}

async function runSuite(opts: BenchOptions): Promise<BenchResult[]> {
  const rounds = opts.quick ? 1 : 3;
  const h = new Harness();
  const results: BenchResult[] = [];
  try {
    for (const payload of opts.quick ? [64, 65536] : PAYLOADS) {
      const perCase = new Map<Case, Sample[]>(CASES.map((c) => [c, []]));
      const ringRuns: RingRun[] = [];
      for (let r = 0; r < rounds; r++) {
        opts.note(`ring: ${payload} B, round ${r + 1} of ${rounds}`);
        const bench = new Bench({ time: opts.quick ? 150 : 500, warmupTime: opts.quick ? 50 : 150, iterations: 5 });
        addCases(bench, h, payload, new Map(), ringRuns);
        await bench.run();
        for (const task of bench.tasks) {
          const res = task.result;
          if (res.state !== 'completed') throw new Error(`ring bench ${task.name} ${payload} B: ${res.state} ${'error' in res ? String(res.error) : ''}`);
          const n = messagesPer(task.name as Case, payload);
          perCase.get(task.name as Case)!.push({ msgsPerS: n / (res.latency.mean / 1000), rme: res.latency.rme });
        }
      }
      const rate = (c: Case) => median(perCase.get(c)!.map((s) => s.msgsPerS));
      const rme = (c: Case) => {
        const s = perCase.get(c)!;
        return s.length > 1 ? rmePct(s.map((x) => x.msgsPerS)) : s[0]!.rme;
      };
      const ring = rate('ring');
      const records = ringRuns.reduce((a, r) => a + r.stats.records, 0);
      const batches = ringRuns.reduce((a, r) => a + r.stats.batches, 0);
      const batched = ringRuns.reduce((a, r) => a + r.stats.batchedRecords, 0);
      const gcRecords = payload >= 65536 ? 50_000 : 1_000_000;
      opts.note(`ring: ${payload} B, counting GC events over ${gcRecords} records`);
      const gc = await gcPass(h, payload, gcRecords);
      for (const c of CASES) {
        const m = rate(c);
        const row: BenchResult = { suite: 'ring', case: c, payload, msgs_per_s: Math.round(m), mb_per_s: +((m * payload) / 1e6).toFixed(1), rme_pct: +rme(c).toFixed(1) };
        if (c === 'ring') {
          row.ratio = +(ring / rate('postmessage')).toFixed(2);
          row.vs = 'postmessage';
          row.x_batch256 = +(ring / rate('postmessage-batch256')).toFixed(2);
          row.x_copy_bound = +(ring / rate('copy-bound')).toFixed(2);
          row.avg_batch = +(records / batches).toFixed(1);
          row.batched_pct = +((100 * batched) / records).toFixed(1);
          row.gc_per_M_producer = +((gc.producer * 1e6) / gcRecords).toFixed(2);
          row.gc_per_M_consumer = +((gc.consumer * 1e6) / gcRecords).toFixed(2);
        }
        results.push(row);
      }
    }
  } finally {
    await h.worker.terminate();
  }
  return results;
}

export const suite: Suite = {
  name: 'ring',
  description: 'SPSC SharedArrayBuffer ring vs postMessage vs the copy bound, main -> one worker',
  threads: 2,
  run: runSuite,
};
