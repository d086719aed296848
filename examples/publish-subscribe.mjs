// Publish-subscribe: a topic exchange; each subscriber gets its own queue and every matching message.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from 'ringmq';

const dir = mkdtempSync(join(tmpdir(), 'ringmq-example-'));
const broker = await Broker.open({ dir });
await broker.declareExchange('orders', 'topic');

const eu = [];
const all = [];
await broker.subscribe('orders', 'order.eu.*', (msg) => { eu.push(msg.routingKey); });
await broker.subscribe('orders', 'order.#', (msg) => { all.push(msg.routingKey); });

await broker.publish('orders', 'order.eu.created', 'o1');
await broker.publish('orders', 'order.us.created', 'o2');
await broker.publish('orders', 'order.eu.shipped', 'o3');
await broker.quiesce();
console.log(`publish-subscribe: eu got ${eu.length} (${eu.join(', ')}), all got ${all.length}`);
await broker.close();
rmSync(dir, { recursive: true, force: true });
