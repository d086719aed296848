/**
 * Conformance: amqplib against `ringmq serve` (a child process on a free
 * loopback port, temporary data directory). The messaging patterns and the
 * protocol features a RabbitMQ user relies on, checked the way such a user
 * sees them: through the client's API.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type * as amqp from 'amqplib';
import { channel, closed, codeOf, collect, connect, sleep, startServer, waitUntil, type ServerHandle } from '../../helpers/amqp-server.js';

let server: ServerHandle;
let conn: amqp.ChannelModel;

test.before(async () => {
  server = await startServer();
  conn = await connect(server);
});

test.after(async () => {
  await conn?.close().catch(() => {});
  await server?.dispose();
});

test('fire-and-forget: publish without confirms, a no-ack consumer gets every message in order', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (let i = 0; i < 500; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  const got = await collect(ch, queue, 500, { noAck: true });
  assert.equal(got.map((m) => Number(m.content.toString())), [...Array(500).keys()]);
  assert.equal([got[0]!.fields.exchange, got[0]!.fields.routingKey, got[499]!.fields.deliveryTag], ['', queue, 500]);
  assert.ok(got.every((m) => !m.fields.redelivered));
  await ch.close();
});

test('work queue: two competing consumers with prefetch share the work; each message once (G3)', async () => {
  const pub = await channel(conn, true);
  await pub.assertQueue('work', { durable: true });
  const c2 = await connect(server);
  const w1 = await channel(conn);
  const w2 = await channel(c2);
  await w1.prefetch(5);
  await w2.prefetch(5);
  const seen = new Map<number, string>();
  let dup = 0;
  let acked = 0;
  const worker = (ch: amqp.Channel, name: string, delay: number) => ch.consume('work', (m) => {
    if (m === null) return;
    const n = Number(m.content.toString());
    if (seen.has(n)) dup++;
    seen.set(n, name);
    setTimeout(() => { ch.ack(m); acked++; }, delay);
  });
  await worker(w1, 'w1', 1);
  await worker(w2, 'w2', 3);
  for (let i = 0; i < 300; i++) pub.sendToQueue('work', Buffer.from(String(i)), { persistent: true });
  await pub.waitForConfirms();
  await waitUntil(() => seen.size === 300, '300 messages worked');
  assert.is(dup, 0, 'no message twice');
  const by1 = [...seen.values()].filter((v) => v === 'w1').length;
  assert.ok(by1 > 0 && by1 < 300, `both workers got work (w1: ${by1})`);
  await waitUntil(async () => (await pub.checkQueue('work')).messageCount === 0, 'queue drained');
  // Every ack sent before the workers' connections close (an ack on a closed connection throws).
  await waitUntil(() => acked >= 300, '300 acks sent');
  await c2.close();
  await w1.close();
  await pub.deleteQueue('work');
  await pub.close();
});

test('ack, nack with requeue (redelivered, in its place), reject without requeue drops it', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (const s of ['a', 'b', 'c']) ch.sendToQueue(queue, Buffer.from(s));
  const first = await ch.get(queue);
  assert.ok(first && first.content.toString() === 'a' && !first.fields.redelivered);
  assert.equal([first.fields.exchange, first.fields.routingKey, first.fields.messageCount, first.fields.deliveryTag], ['', queue, 2, 1]);
  ch.nack(first, false, true);
  const again = await ch.get(queue);
  assert.ok(again, 'requeued message is back');
  assert.is(again.content.toString(), 'a', 'back in its place, ahead of b');
  assert.is(again.fields.redelivered, true, 'marked redelivered');
  ch.ack(again);
  const b = await ch.get(queue);
  ch.reject(b as amqp.GetMessage, false);
  const c = await ch.get(queue);
  assert.is((c as amqp.GetMessage).content.toString(), 'c');
  ch.ack(c as amqp.GetMessage);
  assert.is(await ch.get(queue), false, 'nothing left: b was dropped');
  await ch.close();
});

test('ack multiple and nack multiple settle every earlier delivery of the channel', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (let i = 0; i < 10; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  const got = await collect(ch, queue, 10, { consumerTag: 'multi' });
  await ch.cancel('multi'); // the 10 stay unacked with us
  ch.ack(got[5]!, true); // 0..5
  ch.nack(got[9]!, true, true); // 6..9 back
  await sleep(50);
  const info = await ch.checkQueue(queue);
  assert.is(info.messageCount, 4);
  await ch.close();
});

test('a channel closed with unacked messages: they are redelivered, flagged, to another consumer (G2)', async () => {
  const setup = await channel(conn);
  await setup.assertQueue('handover', { durable: false });
  for (let i = 0; i < 20; i++) setup.sendToQueue('handover', Buffer.from(String(i)));
  const c1 = await channel(conn);
  await c1.prefetch(8);
  const first = await collect(c1, 'handover', 8);
  await c1.close(); // 8 unacked go back
  const c2 = await channel(conn);
  const all = await collect(c2, 'handover', 20, { ack: true });
  const redelivered = all.filter((m) => m.fields.redelivered).map((m) => Number(m.content.toString())).sort((a, b) => a - b);
  assert.equal(redelivered, first.map((m) => Number(m.content.toString())).sort((a, b) => a - b));
  assert.equal(all.map((m) => Number(m.content.toString())).sort((a, b) => a - b), [...Array(20).keys()]);
  await c2.close();
  await setup.deleteQueue('handover');
  await setup.close();
});

test('a connection lost with unacked messages: they are redelivered; its exclusive queues are deleted', async () => {
  const setup = await channel(conn);
  await setup.assertQueue('lost', { durable: false });
  for (let i = 0; i < 5; i++) setup.sendToQueue('lost', Buffer.from(String(i)));
  const other = await connect(server, { heartbeat: 0 }); // no heartbeat timers left behind by the killed socket
  const oc = await channel(other);
  await oc.assertQueue('mine-only', { exclusive: true });
  await collect(oc, 'lost', 5);
  (other as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy(); // socket loss, no close
  const c2 = await channel(conn);
  const again = await collect(c2, 'lost', 5, { ack: true });
  assert.ok(again.every((m) => m.fields.redelivered));
  await waitUntil(async () => (await codeOf((await channel(conn)).checkQueue('mine-only'))) === 404, 'exclusive queue deleted');
  await c2.close();
  await setup.deleteQueue('lost');
  await setup.close();
});

test('unknown delivery tag: 406 PRECONDITION_FAILED closes that channel only', async () => {
  const ch = await channel(conn);
  const ok = await channel(conn);
  const done = closed(ch);
  ch.ack({ fields: { deliveryTag: 999 } } as amqp.Message);
  const err = await done;
  assert.match(String(err), /406/);
  assert.match(String(err), /unknown delivery tag 999/);
  const { queue } = await ok.assertQueue('', { exclusive: true });
  assert.ok(queue.length > 0, 'the other channel still works');
  await ok.close();
});

test('ackAll / nackAll (delivery tag 0 with multiple), basic.recover requeues every unacked, unbind stops routing', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (let i = 0; i < 6; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  const got = await collect(ch, queue, 6, { consumerTag: 'all' });
  await ch.cancel('all');
  ch.nackAll(true);
  await waitUntil(async () => (await ch.checkQueue(queue)).messageCount === 6, 'all 6 back');
  const again = await collect(ch, queue, 6, { consumerTag: 'all2' });
  assert.ok(again.every((m) => m.fields.redelivered));
  await ch.cancel('all2');
  await ch.recover();
  await waitUntil(async () => (await ch.checkQueue(queue)).messageCount === 6, 'recovered');
  const third = await collect(ch, queue, 6, { consumerTag: 'all3' });
  await ch.cancel('all3');
  ch.ackAll();
  await sleep(50);
  assert.is((await ch.checkQueue(queue)).messageCount, 0);
  assert.is(got.length + third.length, 12);
  await ch.assertExchange('x.unbind', 'direct', { durable: false });
  await ch.bindQueue(queue, 'x.unbind', 'k');
  ch.publish('x.unbind', 'k', Buffer.from('in'));
  await ch.unbindQueue(queue, 'x.unbind', 'k');
  ch.publish('x.unbind', 'k', Buffer.from('out'));
  await sleep(50);
  const m = await ch.get(queue, { noAck: true });
  assert.is(m && m.content.toString(), 'in');
  assert.is(await ch.get(queue, { noAck: true }), false);
  await ch.deleteExchange('x.unbind');
  await ch.close();
});

test('exchanges: fanout, direct, topic and headers route to every matching queue once (G8)', async () => {
  const ch = await channel(conn);
  await ch.assertExchange('x.fan', 'fanout', { durable: false });
  await ch.assertExchange('x.dir', 'direct', { durable: false });
  await ch.assertExchange('x.top', 'topic', { durable: false });
  await ch.assertExchange('x.hdr', 'headers', { durable: false });
  const q = async (): Promise<string> => (await ch.assertQueue('', { exclusive: true })).queue;
  const [f1, f2, d1, t1, t2, h1, h2] = [await q(), await q(), await q(), await q(), await q(), await q(), await q()];
  await ch.bindQueue(f1, 'x.fan', '');
  await ch.bindQueue(f2, 'x.fan', '');
  await ch.bindQueue(d1, 'x.dir', 'red');
  await ch.bindQueue(d1, 'x.dir', 'blue');
  await ch.bindQueue(t1, 'x.top', 'stock.*.nyse');
  await ch.bindQueue(t2, 'x.top', 'stock.#');
  await ch.bindQueue(t2, 'x.top', '#.nyse');
  await ch.bindQueue(h1, 'x.hdr', '', { 'x-match': 'all', kind: 'a', n: 1 });
  await ch.bindQueue(h2, 'x.hdr', '', { 'x-match': 'any', kind: 'b', n: 1 });
  ch.publish('x.fan', 'whatever', Buffer.from('fan'));
  ch.publish('x.dir', 'red', Buffer.from('red'));
  ch.publish('x.dir', 'green', Buffer.from('green'));
  ch.publish('x.dir', 'blue', Buffer.from('blue'));
  ch.publish('x.top', 'stock.ibm.nyse', Buffer.from('ibm'));
  ch.publish('x.top', 'stock.sap.xetra', Buffer.from('sap'));
  ch.publish('x.hdr', '', Buffer.from('h-all'), { headers: { kind: 'a', n: 1 } });
  ch.publish('x.hdr', '', Buffer.from('h-any'), { headers: { kind: 'c', n: 1 } });
  ch.publish('x.hdr', '', Buffer.from('h-none'), { headers: { kind: 'c', n: 2 } });
  await sleep(100);
  const drain = async (queue: string): Promise<string[]> => {
    const out: string[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) return out;
      out.push(m.content.toString());
    }
  };
  assert.equal(await drain(f1), ['fan']);
  assert.equal(await drain(f2), ['fan']);
  assert.equal(await drain(d1), ['red', 'blue']);
  assert.equal(await drain(t1), ['ibm']);
  assert.equal(await drain(t2), ['ibm', 'sap'], 'matched by two bindings, delivered once');
  assert.equal(await drain(h1), ['h-all']);
  assert.equal(await drain(h2), ['h-all', 'h-any']);
  for (const x of ['x.fan', 'x.dir', 'x.top', 'x.hdr']) await ch.deleteExchange(x);
  await ch.close();
});

test('RPC with a reply queue and correlation id (G9)', async () => {
  const server2 = await channel(conn);
  await server2.assertQueue('rpc', { durable: false });
  await server2.consume('rpc', (m) => {
    if (m === null) return;
    server2.sendToQueue(m.properties.replyTo, Buffer.from(String(Number(m.content.toString()) * 2)), { correlationId: m.properties.correlationId });
    server2.ack(m);
  });
  const client = await channel(conn);
  const { queue: replyQ } = await client.assertQueue('', { exclusive: true });
  const pending = new Map<string, (v: string) => void>();
  await client.consume(replyQ, (m) => {
    if (m === null) return;
    pending.get(m.properties.correlationId)?.(m.content.toString());
    pending.delete(m.properties.correlationId);
  }, { noAck: true });
  const call = (n: number): Promise<string> => new Promise((resolve) => {
    const id = `c${n}`;
    pending.set(id, resolve);
    client.sendToQueue('rpc', Buffer.from(String(n)), { replyTo: replyQ, correlationId: id });
  });
  const answers = await Promise.all([1, 2, 3, 21].map(call));
  assert.equal(answers, ['2', '4', '6', '42']);
  await client.close();
  await server2.deleteQueue('rpc');
  await server2.close();
});

test('RPC with direct reply-to (amq.rabbitmq.reply-to): no reply queue, the reply comes straight back', async () => {
  const responder = await channel(conn);
  await responder.assertQueue('rpc-direct', { durable: false });
  let replyTo = '';
  await responder.consume('rpc-direct', (m) => {
    if (m === null) return;
    replyTo = m.properties.replyTo;
    responder.sendToQueue(m.properties.replyTo, Buffer.from(`re:${m.content.toString()}`), { correlationId: m.properties.correlationId });
    responder.ack(m);
  });
  const other = await connect(server);
  const client = await channel(other);
  const replies: amqp.ConsumeMessage[] = [];
  await client.consume('amq.rabbitmq.reply-to', (m) => { if (m) replies.push(m); }, { noAck: true });
  client.sendToQueue('rpc-direct', Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'k1' });
  await waitUntil(() => replies.length === 1, 'the direct reply');
  assert.is(replies[0]!.content.toString(), 're:ping');
  assert.is(replies[0]!.properties.correlationId, 'k1');
  assert.match(replyTo, /^amq\.rabbitmq\.reply-to\.[A-Za-z0-9_-]+$/, 'the responder sees a private address');
  // Publishing with reply-to = amq.rabbitmq.reply-to without consuming it first is refused (406), as RabbitMQ.
  const bad = await channel(other);
  const done = closed(bad);
  bad.sendToQueue('rpc-direct', Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
  assert.match(String(await done), /406/);
  await other.close();
  await responder.deleteQueue('rpc-direct');
  await responder.close();
});

test('mandatory + unroutable: basic.return with 312 NO_ROUTE (before the confirm); alternate exchange catches it', async () => {
  const ch = await channel(conn, true);
  const returned: amqp.Message[] = [];
  ch.on('return', (m: amqp.Message) => returned.push(m));
  await new Promise<void>((resolve, reject) => ch.publish('', 'no-such-queue', Buffer.from('lost'), { mandatory: true, messageId: 'm1' }, (err: unknown) => (err ? reject(err) : resolve())));
  assert.is(returned.length, 1, 'returned before its confirm');
  const fields = returned[0]!.fields as unknown as { replyCode: number; replyText: string };
  assert.is(fields.replyCode, 312);
  assert.is(fields.replyText, 'NO_ROUTE');
  assert.is(returned[0]!.properties.messageId, 'm1');
  assert.is(returned[0]!.content.toString(), 'lost');
  await ch.assertExchange('ae', 'fanout', { durable: false });
  await ch.assertExchange('main', 'direct', { durable: false, alternateExchange: 'ae' });
  const { queue } = await ch.assertQueue('', { exclusive: true });
  await ch.bindQueue(queue, 'ae', '');
  ch.publish('main', 'nobody', Buffer.from('caught'), { mandatory: true });
  await ch.waitForConfirms();
  const m = await ch.get(queue, { noAck: true });
  assert.is(m && m.content.toString(), 'caught');
  assert.is(returned.length, 1, 'routed through the AE: not returned');
  await ch.deleteExchange('main');
  await ch.deleteExchange('ae');
  await ch.close();
});

test('publisher confirms: every publish is acked by sequence number; a reject-publish overflow nacks', async () => {
  const ch = await channel(conn, true);
  await ch.assertQueue('confirms', { durable: true });
  const acks: { deliveryTag: number; multiple: boolean }[] = [];
  ch.on('ack', (f: { deliveryTag: number; multiple: boolean }) => acks.push(f));
  const results = await Promise.all([...Array(200).keys()].map((i) => new Promise<boolean>((resolve) => {
    ch.sendToQueue('confirms', Buffer.from(String(i)), { persistent: true }, (err: unknown) => resolve(err === null || err === undefined));
  })));
  assert.ok(results.every(Boolean), 'all acked');
  assert.ok(acks.length > 0 && acks.length <= 200);
  assert.is(Math.max(...acks.map((a) => a.deliveryTag)), 200);
  assert.is((await ch.checkQueue('confirms')).messageCount, 200);
  await ch.deleteQueue('confirms');
  await ch.assertQueue('bounded', { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
  const r = await Promise.all(['a', 'b'].map((s) => new Promise<string>((resolve) => ch.sendToQueue('bounded', Buffer.from(s), {}, (err: unknown) => resolve(err ? 'nack' : 'ack')))));
  assert.equal(r, ['ack', 'nack']);
  await ch.deleteQueue('bounded');
  await ch.close();
});

test('transactions: publishes and acks take effect at commit; rollback discards them', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const tx = await channel(conn);
  await txSelect(tx);
  tx.sendToQueue(queue, Buffer.from('t1'));
  tx.sendToQueue(queue, Buffer.from('t2'));
  await sleep(50);
  assert.is((await ch.checkQueue(queue)).messageCount, 0, 'nothing before commit');
  await txCommit(tx);
  assert.is((await ch.checkQueue(queue)).messageCount, 2, 'both after commit');
  tx.sendToQueue(queue, Buffer.from('t3'));
  await txRollback(tx);
  assert.is((await ch.checkQueue(queue)).messageCount, 2, 'rolled back');
  const m = await tx.get(queue);
  assert.ok(m);
  tx.ack(m);
  await txRollback(tx);
  assert.is((await ch.checkQueue(queue)).messageCount, 1, 'ack rolled back: still unacked');
  tx.ack(m);
  await txCommit(tx);
  await tx.close();
  assert.is((await ch.checkQueue(queue)).messageCount, 1, 'the acked one is gone, the other stays');
  await ch.close();
});

test('basic.qos prefetch limits unacked deliveries per consumer', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (let i = 0; i < 30; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  await ch.prefetch(3);
  const got: amqp.ConsumeMessage[] = [];
  await ch.consume(queue, (m) => { if (m) got.push(m); });
  await sleep(150);
  assert.is(got.length, 3);
  ch.ack(got[2]!, true);
  await waitUntil(() => got.length === 6, '3 more');
  await sleep(50);
  assert.is(got.length, 6);
  await ch.close();
});

test('cancel: the consumer stops; its unacked stay with the client and can still be acked', async () => {
  const ch = await channel(conn);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  for (let i = 0; i < 5; i++) ch.sendToQueue(queue, Buffer.from(String(i)));
  const got: amqp.ConsumeMessage[] = [];
  await ch.prefetch(2);
  const { consumerTag } = await ch.consume(queue, (m) => { if (m) got.push(m); });
  await waitUntil(() => got.length === 2, '2 deliveries');
  await ch.cancel(consumerTag);
  for (const m of got) ch.ack(m);
  await sleep(50);
  const info = await ch.checkQueue(queue);
  assert.is(info.messageCount, 3);
  assert.is(info.consumerCount, 0);
  assert.is(ch.errors.length, 0);
  await ch.close();
});

test('consumer cancel notification when the queue is deleted', async () => {
  const ch = await channel(conn);
  await ch.assertQueue('doomed', { durable: false });
  let cancelled = false;
  await ch.consume('doomed', (m) => { if (m === null) cancelled = true; });
  const other = await channel(conn);
  await other.deleteQueue('doomed');
  await waitUntil(() => cancelled, 'basic.cancel from the server');
  await other.close();
  await ch.close();
});

test('an 8 MiB body round-trips byte for byte (split in frames both ways)', async () => {
  const ch = await channel(conn, true);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const body = Buffer.alloc(8 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
  ch.sendToQueue(queue, body);
  await ch.waitForConfirms();
  const [m] = await collect(ch, queue, 1, { noAck: true, ms: 20000 });
  assert.is(m!.content.length, body.length);
  assert.ok(m!.content.equals(body));
  await ch.close();
});

test('every property and every header value type round-trips exactly', async () => {
  const ch = await channel(conn, true);
  const { queue } = await ch.assertQueue('', { exclusive: true });
  const headers = {
    str: 'text', int: 42, neg: -7, big: 2 ** 40, float: 1.5, bool: true, bool0: false, nul: null,
    arr: [1, 'two', false, [3]], table: { nested: { deep: 'yes' }, n: 3 },
    bytes: Buffer.from([0, 1, 2, 255]),
    ts: { '!': 'timestamp', value: 1700000000 },
    dec: { '!': 'decimal', value: { places: 2, digits: 12345 } },
    i8: { '!': 'int8', value: -5 }, u8: { '!': 'uint8', value: 200 }, i16: { '!': 'int16', value: -300 },
    u16: { '!': 'uint16', value: 60000 }, i32: { '!': 'int32', value: -70000 }, u32: { '!': 'uint32', value: 3000000000 },
    i64: { '!': 'int64', value: 2 ** 50 }, f32: { '!': 'float', value: 0.25 }, f64: { '!': 'double', value: 3 },
  };
  const props: amqp.Options.Publish = {
    contentType: 'application/json', contentEncoding: 'gzip', headers, deliveryMode: 1, priority: 5,
    correlationId: 'corr', replyTo: 'reply', expiration: '60000', messageId: 'mid', timestamp: 1700000001,
    type: 'kind', userId: 'guest', appId: 'app',
  };
  ch.sendToQueue(queue, Buffer.from('{}'), props);
  await ch.waitForConfirms();
  const m = await ch.get(queue, { noAck: true });
  assert.ok(m);
  const p = m.properties;
  assert.is(p.contentType, 'application/json');
  assert.is(p.contentEncoding, 'gzip');
  assert.is(p.deliveryMode, 1);
  assert.is(p.priority, 5);
  assert.is(p.correlationId, 'corr');
  assert.is(p.replyTo, 'reply');
  assert.is(p.expiration, '60000');
  assert.is(p.messageId, 'mid');
  assert.is(p.timestamp, 1700000001);
  assert.is(p.type, 'kind');
  assert.is(p.userId, 'guest');
  assert.is(p.appId, 'app');
  const h = p.headers as Record<string, unknown>;
  assert.is(h.str, 'text');
  assert.is(h.int, 42);
  assert.is(h.neg, -7);
  assert.is(h.big, 2 ** 40);
  assert.is(h.float, 1.5);
  assert.is(h.bool, true);
  assert.is(h.bool0, false);
  assert.is(h.nul, null);
  assert.equal(h.arr, [1, 'two', false, [3]]);
  assert.equal(h.table, { nested: { deep: 'yes' }, n: 3 });
  assert.ok(Buffer.isBuffer(h.bytes) && (h.bytes as Buffer).equals(Buffer.from([0, 1, 2, 255])));
  assert.equal(h.ts, { '!': 'timestamp', value: 1700000000 });
  assert.equal(h.dec, { '!': 'decimal', value: { places: 2, digits: 12345 } });
  assert.is(h.i8, -5);
  assert.is(h.u8, 200);
  assert.is(h.i16, -300);
  assert.is(h.u16, 60000);
  assert.is(h.i32, -70000);
  assert.is(h.u32, 3000000000);
  assert.is(h.i64, 2 ** 50);
  assert.is(h.f32, 0.25);
  assert.is(h.f64, 3);
  await ch.close();
});

test('a channel serves methods in order: a publish pipelined right after queue.declare lands in the queue', async () => {
  const ch = await channel(conn, true);
  const p = ch.assertQueue('pipelined', { durable: false });
  ch.sendToQueue('pipelined', Buffer.from('x'));
  await p;
  await ch.waitForConfirms();
  assert.is((await ch.checkQueue('pipelined')).messageCount, 1);
  await ch.deleteQueue('pipelined');
  await ch.close();
});

// amqplib has no tx API on the promise channel: send the methods through its generic rpc.
type RpcChannel = { rpc(method: number, fields: Record<string, unknown>, expect: number): Promise<unknown> };
const TX_SELECT = 0x005a000a, TX_SELECT_OK = 0x005a000b, TX_COMMIT = 0x005a0014, TX_COMMIT_OK = 0x005a0015, TX_ROLLBACK = 0x005a001e, TX_ROLLBACK_OK = 0x005a001f;
async function txSelect(ch: amqp.Channel): Promise<void> { await (ch as unknown as RpcChannel).rpc(TX_SELECT, {}, TX_SELECT_OK); }
async function txCommit(ch: amqp.Channel): Promise<void> { await (ch as unknown as RpcChannel).rpc(TX_COMMIT, {}, TX_COMMIT_OK); }
async function txRollback(ch: amqp.Channel): Promise<void> { await (ch as unknown as RpcChannel).rpc(TX_ROLLBACK, {}, TX_ROLLBACK_OK); }

test.run();
