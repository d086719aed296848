// Work queue: a durable queue, persistent messages confirmed after fsync, two competing workers with prefetch and acks.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'ringmq';

const dir = mkdtempSync(join(tmpdir(), 'ringmq-example-'));
const broker = await Broker.open({ dir, fsync: 'always' });
await broker.declareQueue('tasks', { durable: true });

for (let i = 0; i < 20; i++) await broker.send('tasks', JSON.stringify({ task: i })); // resolves once on disk

const doneBy = { a: 0, b: 0 };
const finished = new Promise((resolve) => {
  const worker = (name) => async (msg) => {
    const { task } = msg.json();
    await new Promise((r) => setTimeout(r, task % 3)); // "work"
    doneBy[name]++;
    msg.ack(); // a worker that dies before this line gets the task redelivered elsewhere
    if (doneBy.a + doneBy.b === 20) resolve();
  };
  broker.consume('tasks', worker('a'), { prefetch: 2 });
  broker.consume('tasks', worker('b'), { prefetch: 2 });
});
await finished;
console.log(`work queue: 20 tasks done (${doneBy.a} by a, ${doneBy.b} by b)`);
await broker.close();
rmSync(dir, { recursive: true, force: true });
