/**
 * Queue costs per message, measured:
 * - zero garbage collections during 1M enqueue → dispatch → ack cycles after
 *   warm-up (PerformanceObserver, entry type 'gc'), in several shapes: one at a
 *   time, batches with ackUpTo, a TTL queue with ticks, returns through the
 *   heap (nack requeue), and a control that allocates per message and must be
 *   caught;
 * - bytes per queued message in the queue's columns over 1,000,000 enqueued
 *   messages (`arrayBuffers` delta; the payload slot is a JS array element
 *   and shows in `heapUsed`, printed apart).
 * Runs under --expose-gc (npm test sets it).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { Queue, type QueueArgs, type QueueEvents } from '../../../src/queue/queue.js';

const gcEntries: PerformanceEntry[] = [];
const observer = new PerformanceObserver((list) => gcEntries.push(...list.getEntries()));
observer.observe({ entryTypes: ['gc'] });

const gc = (globalThis as { gc?: () => void }).gc;
const settle = () => new Promise((r) => setTimeout(r, 20));

async function gcsDuring(fn: () => void): Promise<number> {
  gc?.();
  await settle();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  await settle();
  return gcEntries.filter((e) => e.startTime >= t0 && e.startTime <= t1).length;
}

/** Event sink that allocates nothing: sums what it is told. */
class Sink implements QueueEvents {
  sum = 0;
  deliver(_c: number, id: number, n: number): void { this.sum += id + n; }
  remove(id: number, _r: string, n: number): void { this.sum += id + n; }
  returned(id: number, n: number): void { this.sum += id + n; }
  consumerTimedOut(c: number): void { this.sum += c; }
}

const PAYLOAD = { body: 'shared' };
const N = 1_000_000;

interface Rig { q: Queue; sink: Sink; id: number; now: number }
function rig(args: QueueArgs, prefetch: number, sink = new Sink()): Rig {
  const q = new Queue(args, sink);
  q.addConsumer(1, prefetch);
  q.addConsumer(2, prefetch);
  return { q, sink, id: 1, now: 0 };
}

/** One message at a time: enqueue, dispatch, ack. */
function oneByOne(r: Rig, n: number): void {
  const q = r.q;
  for (let k = 0; k < n; k++) {
    const id = r.id++;
    q.enqueue(id, 100, r.now, PAYLOAD);
    q.dispatch(r.now);
    q.ack(id);
  }
}

/** Batches of 64: enqueue all, dispatch, ackUpTo per consumer; the clock advances and ticks (TTL queues). */
function batched(r: Rig, n: number): void {
  const q = r.q;
  for (let k = 0; k < n; k += 64) {
    for (let b = 0; b < 64; b++) q.enqueue(r.id++, 100, r.now, PAYLOAD);
    q.dispatch(r.now);
    // Each consumer's last delivery is one of the last two ids (round robin).
    for (const c of [1, 2]) if (q.ackUpTo(c, r.id - 1) === 0) q.ackUpTo(c, r.id - 2);
    r.now++;
    q.tick(r.now);
  }
}

/** Every other delivery is nacked with requeue once, so returns go through the heap. */
function withReturns(r: Rig, n: number): void {
  const q = r.q;
  for (let k = 0; k < n; k += 2) {
    const a = r.id++, b = r.id++;
    q.enqueue(a, 100, r.now, PAYLOAD);
    q.enqueue(b, 100, r.now, PAYLOAD);
    q.dispatch(r.now);
    q.nack(a, true, r.now);
    q.ack(b);
    q.dispatch(r.now);
    q.ack(a);
  }
}

const shapes: [string, QueueArgs, number, (r: Rig, n: number) => void][] = [
  ['one by one, no limits', {}, 0, oneByOne],
  ['one by one, prefetch 1, maxLength', { maxLength: 1000 }, 1, oneByOne],
  ['batches of 64 with ackUpTo, messageTtl + ticks', { messageTtl: 60_000, consumerTimeout: 30_000 }, 0, batched],
  ['nack requeue then ack (returns through the heap), delivery limit', { deliveryLimit: 5 }, 0, withReturns],
];

for (const [name, args, prefetch, fn] of shapes) {
  test(`no garbage collection during ${N} enqueue → dispatch → ack cycles: ${name}`, async () => {
    assert.ok(gc, 'run with --expose-gc (npm test does)');
    const r = rig(args, prefetch);
    fn(r, 100_000); // warm-up: optimize, grow columns to their steady size
    const gcs = await gcsDuring(() => fn(r, N));
    console.log(`  ${name}: ${gcs} GC events per ${N} messages`);
    assert.is(r.q.ready + r.q.unacked, 0);
    assert.is(r.q.counters.acked, r.q.counters.routed);
    assert.ok(r.sink.sum > 0);
    assert.is(gcs, 0, `${gcs} GC events during ${N} messages`);
  });
}

test('the GC counter itself works: an event handler allocating per message is caught', async () => {
  const kept: unknown[] = [];
  class Allocating extends Sink {
    override deliver(c: number, id: number): void {
      const o = { c, id };
      if (id % 100_000 === 0) kept.push(o);
    }
  }
  const r = rig({}, 0, new Allocating());
  oneByOne(r, 10_000);
  const gcs = await gcsDuring(() => oneByOne(r, N));
  assert.ok(gcs > 0, 'an object per message should have caused scavenges');
});

async function bytesPerMessage(args: QueueArgs, n: number): Promise<{ columns: number; heap: number; q: Queue }> {
  gc!();
  await settle();
  gc!();
  const m0 = process.memoryUsage();
  const q = new Queue(args, new Sink());
  for (let id = 1; id <= n; id++) q.enqueue(id, 100, 0, undefined);
  gc!();
  await settle();
  gc!();
  const m1 = process.memoryUsage();
  return { columns: (m1.arrayBuffers - m0.arrayBuffers) / n, heap: (m1.heapUsed - m0.heapUsed) / n, q };
}

test(`bytes per queued message over ${N} enqueued messages`, async () => {
  assert.ok(gc, 'run with --expose-gc (npm test does)');
  // Capacity is a power of two: 1,000,000 messages occupy 2^20 = 1,048,576 slots (+4.9%).
  const plain = await bytesPerMessage({}, N);
  const ttl = await bytesPerMessage({ messageTtl: 60_000 }, N);
  console.log(`  columns (arrayBuffers delta): ${plain.columns.toFixed(2)} B/msg without expiry, ${ttl.columns.toFixed(2)} B/msg with messageTtl`);
  console.log(`  payload slot and the rest (heapUsed delta): ${plain.heap.toFixed(2)} B/msg without expiry, ${ttl.heap.toFixed(2)} B/msg with messageTtl`);
  assert.is(plain.q.ready + ttl.q.ready, 2 * N);
  // 16 B per slot (id f64, size u32, meta i32) and 24 B with an expiry column (f64).
  assert.ok(plain.columns <= 16 * 1.05 + 0.5, `${plain.columns} B/msg without expiry`);
  assert.ok(ttl.columns <= 24 * 1.05 + 0.5, `${ttl.columns} B/msg with ttl`);
  // The payload slot is one array element (8 B, or 4 B with pointer compression) and nothing per message besides.
  assert.ok(plain.heap <= 8 * 1.05 + 1, `${plain.heap} B/msg on the JS heap`);
});

test.after(() => observer.disconnect());
test.run();
