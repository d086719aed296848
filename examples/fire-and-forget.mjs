// Fire-and-forget: publish without awaiting the confirm; a consumer receives.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'ringmq';

const dir = mkdtempSync(join(tmpdir(), 'ringmq-example-'));
const broker = await Broker.open({ dir });
await broker.declareQueue('events', { durable: false });

let seen = 0;
const done = new Promise((resolve) => {
  broker.consume('events', (msg) => {
    if (++seen === 1000) resolve();
  }, { noAck: true });
});
for (let i = 0; i < 1000; i++) broker.send('events', `event ${i}`, { persistent: false }); // not awaited
await done;
console.log(`fire-and-forget: ${seen} events received`);
await broker.close();
rmSync(dir, { recursive: true, force: true });
