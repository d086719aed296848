// Request-response: request() sends with a private reply queue and a correlation id; reply() answers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'ringmq';

const dir = mkdtempSync(join(tmpdir(), 'ringmq-example-'));
const broker = await Broker.open({ dir });
await broker.declareQueue('rpc.square', { durable: false });
await broker.reply('rpc.square', (msg) => String(Number(msg.text()) ** 2));

const answers = await Promise.all([3, 4, 5].map((n) => broker.request('rpc.square', String(n), { timeout: 2000 })));
console.log(`request-response: ${answers.map((m) => m.text()).join(' ')}`);
try {
  await broker.request('nobody.listens', 'x', { timeout: 100 });
} catch (e) {
  console.log(`request-response: unanswered request -> ${e.code}`);
}
await broker.close();
rmSync(dir, { recursive: true, force: true });
