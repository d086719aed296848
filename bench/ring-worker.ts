/**
 * Consumer thread of `ringmq bench ring`. Three ways to receive the same
 * stream of messages from the main thread; every message is checked: its
 * first and last 4 bytes carry its sequence number (little-endian u32).
 *
 *   ring   — takes records in place from a RingConsumer until the close record;
 *            publishes its progress in a shared counter (doorbell: the main
 *            thread is notified only when it sleeps on it).
 *   port   — one message per postMessage.
 *   batch  — postMessage of a packed batch: [u32 length][body] repeated.
 */
import { parentPort } from 'node:worker_threads';
import { PerformanceObserver } from 'node:perf_hooks';
import { RingConsumer } from '../src/ring/ring.js';
import { wake } from '../src/ring/doorbell.js';
import { kConsumedField, kMainSleepingField, type Control, type RingStats } from './ring-protocol.js';

/**
 * GC events of this thread, as delivered to the observer. The callback cannot
 * run while the ring loop blocks the event loop, so a counted session lets
 * pending entries arrive before it starts and after it ends, and counts the
 * difference.
 */
let gcSeen = 0;
new PerformanceObserver((list) => (gcSeen += list.getEntries().length)).observe({ entryTypes: ['gc'] });
const settle = () => new Promise((r) => setTimeout(r, 50));

const u32le = (b: Uint8Array, i: number): number => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

function consumeRing(msg: Extract<Control, { kind: 'ring' }>): RingStats {
  const c = new RingConsumer(msg.sab);
  const progress = new Int32Array(msg.progress);
  const view = new DataView(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength);
  let seq = msg.from;
  let errors = 0;
  let batches = 0;
  let batchedRecords = 0;
  for (;;) {
    let n = 0;
    while (c.next()) {
      const at = c.offset;
      const len = c.length;
      if (view.getUint32(at, true) !== seq || view.getUint32(at + len - 4, true) !== seq) errors++;
      seq = (seq + 1) >>> 0;
      n++;
    }
    if (n > 0) {
      c.release();
      batches++;
      if (n > 1) batchedRecords += n;
      Atomics.store(progress, kConsumedField, seq | 0);
      wake(progress, kMainSleepingField, kConsumedField);
    } else if (c.closed) {
      c.release(); // the close record's bytes, so a later session on this ring starts after it
      break;
    } else {
      c.waitSync(Infinity, msg.spin);
    }
  }
  return { kind: 'ring-done', records: (seq - msg.from) >>> 0, errors, batches, batchedRecords, gcs: -1 };
}

let mode: 'port' | 'batch' = 'port';
let expected = 0;
let seq = 0;
let errors = 0;

parentPort!.on('message', (m: Control | Uint8Array) => {
  if (m instanceof Uint8Array) {
    if (mode === 'port') {
      if (u32le(m, 0) !== seq || u32le(m, m.length - 4) !== seq) errors++;
      seq++;
    } else {
      for (let at = 0; at < m.length; ) {
        const len = u32le(m, at);
        at += 4;
        if (u32le(m, at) !== seq || u32le(m, at + len - 4) !== seq) errors++;
        seq++;
        at += len;
      }
    }
    if (seq === expected) parentPort!.postMessage({ kind: 'done', records: seq, errors });
    return;
  }
  if (m.kind === 'ring' && !m.countGc) {
    parentPort!.postMessage(consumeRing(m));
  } else if (m.kind === 'ring') {
    void (async () => {
      await settle();
      const before = gcSeen;
      const stats = consumeRing(m);
      await settle();
      stats.gcs = gcSeen - before;
      parentPort!.postMessage(stats);
    })();
  } else {
    mode = m.kind;
    expected = m.n;
    seq = 0;
    errors = 0;
  }
});
