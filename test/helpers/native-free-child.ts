/**
 * Child process of test/unit/native-free.test.ts, run with the no-native hook
 * preloaded. `engine` exercises what the engine loads and runs today: the
 * public API, a ring between two threads, a piscina pool, the log, and the
 * embedded Broker (shard workers, a restart). The `control-*`
 * modes make a native load happen on purpose, to show the hook sees it.
 */
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import * as api from '../../src/index.js';
import { createRing, RingProducer } from '../../src/ring/ring.js';
import { SegmentedLog } from '../../src/log/index.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillRecord, typeOf, type VerifyResult } from './ring-pattern.js';

const mode = process.argv[2];

async function ringAcrossThreads(): Promise<void> {
  const worker = new Worker(new URL('./ring-verify-worker.js', import.meta.url));
  const sab = createRing(4096);
  const p = new RingProducer(sab);
  const sizes = Array.from({ length: 2000 }, (_, i) => i % 300);
  const verdict = new Promise<VerifyResult>((resolve) => worker.once('message', resolve));
  worker.postMessage({ sab, seed: 11, sizes, mode: 'async', pauseEvery: 0, pauseMs: 0 });
  const scratch = new Uint8Array(300);
  for (let i = 0; i < sizes.length; i++) {
    fillRecord(scratch, 0, 11, i, sizes[i]!);
    while (!p.tryWrite(typeOf(11, i), scratch, 0, sizes[i]!)) await p.waitForSpace(sizes[i]!);
    p.publish();
  }
  await p.close();
  const r = await verdict;
  await worker.terminate();
  if (!r.ok) throw new Error(`ring failed: ${JSON.stringify(r)}`);
}

async function piscinaPool(niceIncrement: number): Promise<void> {
  const pool = new Piscina({ filename: new URL('./echo-task.js', import.meta.url).href, minThreads: 2, maxThreads: 2, niceIncrement });
  const results = await Promise.all([1, 2, 3, 4].map((x) => pool.run(x) as Promise<number>));
  await pool.destroy();
  if (results.join(',') !== '2,4,6,8') throw new Error(`piscina results ${results}`);
}

/** The log: appends under fsync=always (group commit, fdatasync), several segments, reopen with sealed segments verified on piscina. */
async function logRoundTrip(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ringmq-native-free-'));
  try {
    const opts = { fsync: 'always' as const, segmentBytes: 64 * 1024, recovery: { parallelVerifyMinBytes: 0 } };
    const log = await SegmentedLog.open(dir, opts);
    const body = new Uint8Array(1000).fill(7);
    let last = 0;
    for (let i = 1; i <= 300; i++) last = log.appendEnqueue(1, i, new Uint8Array(0), body);
    await log.durable(last);
    await log.close();
    const again = await SegmentedLog.open(dir, opts);
    const q = again.queue(1);
    const n = q ? q.size : -1;
    const parallel = again.recovery.parallel;
    await again.close();
    if (n !== 300) throw new Error(`log reopened with ${n} of 300 messages`);
    if (!parallel) throw new Error('recovery did not verify sealed segments on the piscina pool');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The embedded Broker: shard workers, rings, logs, topology, a restart (recovery on the pool). */
async function brokerRoundTrip(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ringmq-native-free-broker-'));
  try {
    let b = await api.Broker.open({ dir, shards: 2 });
    await b.declareExchange('x', 'topic');
    await b.declareQueue('q');
    await b.bindQueue('q', 'x', 'a.#');
    for (let i = 0; i < 200; i++) await b.publish('x', 'a.b', `m${i}`);
    await b.close();
    b = await api.Broker.open({ dir, shards: 2 });
    let n = 0;
    await new Promise<void>((resolve) => { void b.consume('q', (m) => { m.ack(); if (++n === 200) resolve(); }); });
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (mode === 'engine') {
  if (typeof api.RingProducer !== 'function' || typeof api.Broker !== 'function') throw new Error('public API missing');
  await ringAcrossThreads();
  await piscinaPool(0);
  await logRoundTrip();
  await brokerRoundTrip();
  console.log('ENGINE-OK');
} else if (mode === 'control-dlopen') {
  // A native load in a worker thread: the hook must see it there too.
  const w = new Worker(new URL('./dlopen-worker.js', import.meta.url));
  await new Promise((r) => w.once('exit', r));
  try {
    process.dlopen({ exports: {} }, '/nonexistent/addon.node');
  } catch {
    // expected
  }
  console.log('CONTROL-DONE');
} else if (mode === 'control-nice') {
  // piscina with a nice increment asks for its optional native dependency.
  await piscinaPool(1);
  console.log('CONTROL-DONE');
} else {
  throw new Error(`unknown mode ${mode}`);
}
