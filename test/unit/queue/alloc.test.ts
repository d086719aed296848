/**
 * The queue allocates nothing per message in steady state: GC events counted
 * (PerformanceObserver, entry type 'gc') over 1,000,000 enqueue -> dispatch
 * -> ack cycles after a warm-up. Its own file: other tests' garbage would
 * make a collection happen during the window.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Queue } from '../../../src/queue/queue.js';

test('zero GC per message in steady state (enqueue -> dispatch -> ack)', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc (npm test does)');
  const q = new Queue({}, { deliver: () => {}, remove: () => {}, returned: () => {}, consumerTimedOut: () => {} });
  q.addConsumer(1, 0);
  let id = 1;
  const cycle = (n: number): void => {
    for (let i = 0; i < n; i += 100) {
      const first = id;
      for (let j = 0; j < 100; j++) q.enqueue(id++, 64, 0, null);
      q.dispatch(0);
      for (let k = first; k < id; k++) q.ack(k);
    }
  };
  cycle(200_000); // warm-up: JIT, arena size, unackedBy entry
  gc();
  let events = 0;
  const obs = new PerformanceObserver((l) => { events += l.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  cycle(1_000_000);
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  assert.ok(events <= 1, `${events} GC events over 1M messages`);
});

test.run();
