/**
 * Consumer side of the cross-thread ring tests: takes records from the ring in
 * a job, checks each against the pattern (test/helpers/ring-pattern.ts), and
 * posts the verdict when the producer's close record arrives.
 */
import { parentPort } from 'node:worker_threads';
import { RingConsumer } from '../../src/ring/ring.js';
import { checkRecord, typeOf, type VerifyJob, type VerifyResult } from './ring-pattern.js';

const pauseCell = new Int32Array(new SharedArrayBuffer(4));

function verify(c: RingConsumer, job: VerifyJob, state: { i: number }): VerifyResult | undefined {
  while (c.next()) {
    const i = state.i;
    if (i >= job.sizes.length) return { ok: false, index: i, reason: `extra record (type ${c.type}, length ${c.length})` };
    if (c.type !== typeOf(job.seed, i)) return { ok: false, index: i, reason: `type ${c.type}, expected ${typeOf(job.seed, i)}` };
    if (c.length !== job.sizes[i]) return { ok: false, index: i, reason: `length ${c.length}, expected ${job.sizes[i]}` };
    const bad = checkRecord(c.bytes, c.offset, job.seed, i, c.length);
    if (bad >= 0) return { ok: false, index: i, reason: `byte ${bad} differs` };
    state.i++;
    if (job.pauseEvery > 0 && state.i % job.pauseEvery === 0) {
      c.release();
      Atomics.wait(pauseCell, 0, 0, job.pauseMs);
    }
  }
  return undefined;
}

async function run(job: VerifyJob): Promise<VerifyResult> {
  const c = new RingConsumer(job.sab);
  const probe = job.probe ? new Int32Array(job.probe) : undefined;
  const state = { i: 0 };
  let sleeps = 0;
  for (;;) {
    const bad = verify(c, job, state);
    if (bad) return bad;
    if (c.closed) break;
    sleeps++;
    if (probe) {
      Atomics.store(probe, 1, state.i);
      Atomics.store(probe, 0, 1);
    }
    if (job.mode === 'sync') c.waitSync();
    else await c.wait();
    if (probe) Atomics.store(probe, 0, 0);
  }
  c.release();
  if (state.i !== job.sizes.length) return { ok: false, index: state.i, reason: `closed after ${state.i} of ${job.sizes.length} records` };
  return { ok: true, count: state.i, batches: c.batches, sleeps };
}

parentPort!.on('message', (job: VerifyJob) => {
  run(job).then(
    (r) => parentPort!.postMessage(r),
    (err: Error) => parentPort!.postMessage({ ok: false, index: -1, reason: String(err?.stack ?? err) }),
  );
});
