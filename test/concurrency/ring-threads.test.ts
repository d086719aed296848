/**
 * The ring between two real threads: this thread produces, a worker consumes
 * and checks every record against a deterministic pattern. fast-check varies
 * ring capacity, record sizes (0 B to the maximum), batch sizes, source
 * offsets and both waiting modes on both sides; consumer pauses force the
 * producer to block on a full ring and resume.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { createRing, maxBodyFor, RingProducer } from '../../src/ring/ring.js';
import { fillRecord, typeOf, type VerifyJob, type VerifyResult } from '../helpers/ring-pattern.js';
import { fcParams } from '../helpers/fc.js';

const worker = new Worker(new URL('../helpers/ring-verify-worker.js', import.meta.url));
const results: ((r: VerifyResult) => void)[] = [];
worker.on('message', (r: VerifyResult) => results.shift()!(r));
worker.on('error', (err) => {
  throw err;
});

function startJob(job: VerifyJob): Promise<VerifyResult> {
  return new Promise((resolve) => {
    results.push(resolve);
    worker.postMessage(job);
  });
}

const scratch = Buffer.alloc(1 << 20);

/** Writes the job's records: batches of the given sizes, one publish each; waits (sync or async) when full. */
async function produce(p: RingProducer, seed: number, sizes: number[], batches: number[], mode: 'sync' | 'async', gapMs = 0): Promise<void> {
  let i = 0;
  let b = 0;
  while (i < sizes.length) {
    const batch = batches[b++ % batches.length]!;
    for (let k = 0; k < batch && i < sizes.length; k++, i++) {
      const length = sizes[i]!;
      // Vary the source address modulo 8 so every lead and both copy paths (loop, Buffer#copy) run.
      const start = (i * 5) % 11;
      fillRecord(scratch, start, seed, i, length);
      while (!p.tryWrite(typeOf(seed, i), scratch, start, start + length)) {
        const ok = mode === 'sync' ? p.waitForSpaceSync(length, 10_000) : await p.waitForSpace(length, 10_000);
        assert.ok(ok, `producer stuck on a full ring at record ${i}`);
      }
    }
    p.publish();
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  assert.ok(mode === 'sync' ? p.closeSync(10_000) : await p.close(10_000));
}

const scenario = fc
  .integer({ min: 6, max: 14 })
  .chain((log2) => {
    const capacity = 2 ** log2;
    const max = maxBodyFor(capacity);
    const size = fc.oneof(fc.integer({ min: 0, max: Math.min(max, 64) }), fc.integer({ min: 0, max }), fc.constant(max), fc.constant(0));
    return fc.record({
      capacity: fc.constant(capacity),
      stagingSize: fc.constantFrom<number | undefined>(undefined, 0, 64, 1024),
      seed: fc.integer({ min: 0, max: 0xffff }),
      // size: 'max' — fast-check's default size would cap these arrays at about 10 elements.
      sizes: fc.array(size, { minLength: 1, maxLength: 1500, size: 'max' }),
      batches: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 8 }),
      producerMode: fc.constantFrom<'sync' | 'async'>('sync', 'async'),
      consumerMode: fc.constantFrom<'sync' | 'async'>('sync', 'async'),
      pauseEvery: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 500 })),
      pauseMs: fc.integer({ min: 0, max: 3 }),
    });
  });

test('property: the consumer thread receives exactly the records sent, in order, byte for byte, over many laps', async () => {
  let laps = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const sab = createRing(s.capacity);
      const p = new RingProducer(sab, { stagingSize: s.stagingSize });
      const verdict = startJob({ sab, seed: s.seed, sizes: s.sizes, mode: s.consumerMode, pauseEvery: s.pauseEvery, pauseMs: s.pauseMs });
      await produce(p, s.seed, s.sizes, s.batches, s.producerMode);
      const r = await verdict;
      if (!r.ok) throw new Error(`record ${r.index}: ${r.reason}`);
      assert.is(r.count, s.sizes.length);
      laps += s.sizes.reduce((a, n) => a + n + 16, 0) / s.capacity;
    }),
    fcParams({ numRuns: 150 }),
  );
  assert.ok(laps > 1000, `the runs went round their rings ${laps.toFixed(0)} times in all`);
});

for (const mode of ['sync', 'async'] as const) {
  test(`a producer blocked on a full ring resumes when the consumer drains (${mode})`, async () => {
    const sab = createRing(1024);
    const p = new RingProducer(sab);
    const sizes = Array.from({ length: 400 }, (_, i) => (i * 37) % 200);
    // The consumer stops for 40 ms after every 50 records; the ring holds ~10 of them.
    const verdict = startJob({ sab, seed: 7, sizes, mode, pauseEvery: 50, pauseMs: 40 });
    const t0 = performance.now();
    await produce(p, 7, sizes, [400], mode);
    const waited = performance.now() - t0;
    const r = await verdict;
    assert.ok(r.ok, JSON.stringify(r));
    assert.ok(waited >= 7 * 40 * 0.9, `the producer should have waited through 7 pauses, took ${waited.toFixed(0)} ms`);
  });

  test(`a consumer parked on an empty ring is woken by publish (${mode})`, async () => {
    const sab = createRing(4096);
    const p = new RingProducer(sab);
    const probe = new SharedArrayBuffer(8);
    const parked = new Int32Array(probe);
    const sizes = Array.from({ length: 10 }, (_, i) => i * 10);
    const verdict = startJob({ sab, seed: 3, sizes, mode, pauseEvery: 0, pauseMs: 0, probe });
    let sawParked = 0;
    for (let i = 0; i < sizes.length; i++) {
      // Let the consumer take record i - 1 and park, then publish record i.
      const until = performance.now() + 2000;
      while (!(Atomics.load(parked, 0) === 1 && Atomics.load(parked, 1) === i) && performance.now() < until) {
        await new Promise((r) => setTimeout(r, 1));
      }
      sawParked += Atomics.load(parked, 0) === 1 && Atomics.load(parked, 1) === i ? 1 : 0;
      fillRecord(scratch, 0, 3, i, sizes[i]!);
      assert.ok(p.tryWrite(typeOf(3, i), scratch, 0, sizes[i]!));
      p.publish();
    }
    assert.ok(p.closeSync(1000));
    const r = await verdict;
    assert.ok(r.ok, JSON.stringify(r));
    assert.is(sawParked, sizes.length, 'the consumer was parked before every publish');
    if (r.ok) assert.ok(r.sleeps >= sizes.length, `consumer slept ${r.sleeps} times`);
  });
}

test.after(async () => {
  await worker.terminate();
});
test.run();
