// Dead-letter queue: rejected, expired and over-limit messages go to a DLX with an x-death record saying why.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'ringmq';

const dir = mkdtempSync(join(tmpdir(), 'ringmq-example-'));
const broker = await Broker.open({ dir });
await broker.declareExchange('dlx', 'fanout');
await broker.declareQueue('dead-letters');
await broker.bindQueue('dead-letters', 'dlx');
await broker.declareQueue('payments', { deadLetterExchange: 'dlx', deliveryLimit: 1, messageTtl: 60_000 });

await broker.send('payments', 'bad payload');
await broker.send('payments', 'flaky', { headers: { attempt: 1 } });
await broker.send('payments', 'too late', { expiration: 10 });
await new Promise((r) => setTimeout(r, 30));

const bad = await broker.get('payments');
bad.reject(false); // -> dead letter, reason "rejected"
for (let i = 0; i < 2; i++) (await broker.get('payments')).nack({ requeue: true }); // 2 returns > limit 1 -> "delivery_limit"
await broker.quiesce(); // "too late" expires -> "expired"

for (;;) {
  const m = await broker.get('dead-letters', { noAck: true });
  if (m === null) break;
  const [death] = m.headers['x-death'];
  console.log(`dead-letter: "${m.text()}" from ${death.queue}, reason ${death.reason}`);
}
await broker.close();
rmSync(dir, { recursive: true, force: true });
