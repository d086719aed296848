/**
 * Zero allocation per record in steady state: a million records through the
 * ring on one thread (producer and consumer alternating) must not trigger a
 * single garbage collection. A per-record allocation of even one small object
 * (a subarray view is ~80 bytes) would fill the young generation several
 * times over and show up as scavenges.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { createRing, RingConsumer, RingProducer } from '../../../src/ring/ring.js';
import { kReadSeqField, kWriteSeqField } from '../../../src/ring/layout.js';

const gcEntries: PerformanceEntry[] = [];
const observer = new PerformanceObserver((list) => gcEntries.push(...list.getEntries()));
observer.observe({ entryTypes: ['gc'] });

const gc = (globalThis as { gc?: () => void }).gc;
const settle = () => new Promise((r) => setTimeout(r, 20));

/** Runs `records` records of `size` bytes through a ring; writes a sub-range of `src` when `ranged`. Returns a checksum. */
function pump(p: RingProducer, c: RingConsumer, src: Uint8Array, size: number, ranged: boolean, records: number): number {
  let sum = 0;
  let sent = 0;
  while (sent < records) {
    if (ranged) {
      while (sent < records && p.tryWrite(sent & 0xff, src, 3, 3 + size)) sent++;
    } else {
      while (sent < records && p.tryWrite(sent & 0xff, src)) sent++;
    }
    p.publish();
    while (c.next()) sum += c.type + c.bytes[c.offset + c.length - 1]!;
    c.release();
  }
  return sum;
}

async function gcsDuring(fn: () => void): Promise<number> {
  gc?.();
  await settle();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  await settle();
  return gcEntries.filter((e) => e.startTime >= t0 && e.startTime <= t1).length;
}

const cases: [string, number, boolean, number][] = [
  ['64 B whole-array writes (Uint8Array#set)', 64, false, 1_000_000],
  ['12 B sub-range writes (byte loop)', 12, true, 1_000_000],
  ['200 B sub-range writes (word loop)', 200, true, 1_000_000],
];

for (const [name, size, ranged, records] of cases) {
  test(`no garbage collection during 1M records: ${name}`, async () => {
    assert.ok(gc, 'run with --expose-gc (npm test does)');
    const sab = createRing(1 << 16);
    const p = new RingProducer(sab);
    const c = new RingConsumer(sab);
    const src = new Uint8Array(size + 8).fill(1);
    // Warm up so the loop is optimized before counting.
    pump(p, c, ranged ? src : src.subarray(0, size), size, ranged, 50_000);
    let sum = 0;
    const whole = src.subarray(0, size);
    const gcs = await gcsDuring(() => (sum = pump(p, c, ranged ? src : whole, size, ranged, records)));
    assert.ok(sum > 0);
    assert.is(gcs, 0, `${gcs} GC events during ${records} records`);
  });
}

test('no garbage collection across the 2^30 sequence wrap, with waits and space checks in the loop', async () => {
  const sab = createRing(1 << 16);
  // Start just below the wrap, as after 1 GiB through the ring: positions near 2^30 must not box.
  const ctl = new Int32Array(sab, 0, 32);
  ctl[kWriteSeqField] = 2 ** 30 - 40 * 1024 * 1024;
  ctl[kReadSeqField] = ctl[kWriteSeqField]!;
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const src = new Uint8Array(64).fill(2);
  const loop = (records: number) => {
    let sent = 0;
    let got = 0;
    while (sent < records) {
      while (sent < records && p.hasSpace(64) && p.tryWrite(1, src)) sent++;
      p.publish();
      if (!c.waitSync(0, 16)) throw new Error('published records not available');
      while (c.next()) got++;
      c.release();
    }
    return got;
  };
  loop(20_000);
  let got = 0;
  const gcs = await gcsDuring(() => (got = loop(1_000_000)));
  assert.is(got, 1_000_000);
  assert.ok(Atomics.load(ctl, kWriteSeqField) < 2 ** 29, 'the sequences wrapped during the counted loop');
  assert.is(gcs, 0, `${gcs} GC events during 1M records across the wrap`);
});

test('the GC counter itself works: a per-record allocation is caught', async () => {
  const sab = createRing(1 << 16);
  const p = new RingProducer(sab);
  const c = new RingConsumer(sab);
  const src = new Uint8Array(72).fill(1);
  const gcs = await gcsDuring(() => {
    let sent = 0;
    while (sent < 1_000_000) {
      // The allocating way: a fresh view per record.
      while (sent < 1_000_000 && p.tryWrite(1, src.subarray(3, 67))) sent++;
      p.publish();
      while (c.next());
      c.release();
    }
  });
  assert.ok(gcs > 0, 'a subarray per record should have caused scavenges');
});

test.after(() => observer.disconnect());
test.run();
