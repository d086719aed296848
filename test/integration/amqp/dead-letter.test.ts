/**
 * Conformance: dead-lettering and queue arguments by their RabbitMQ names,
 * through amqplib. Each dead letter must carry an x-death entry with the
 * reason, the origin queue, a count and a time (G7, RabbitMQ's format).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type * as amqp from 'amqplib';
import { channel, closed, connect, sleep, startServer, waitUntil, type ServerHandle } from '../../helpers/amqp-server.js';

let server: ServerHandle;
let conn: amqp.ChannelModel;

test.before(async () => {
  server = await startServer();
  conn = await connect(server);
  const ch = await channel(conn);
  await ch.assertExchange('dlx', 'direct', { durable: false });
  await ch.close();
});

test.after(async () => {
  await conn?.close().catch(() => {});
  await server?.dispose();
});

interface XDeath { reason: string; queue: string; count: number; exchange: string; 'routing-keys': string[]; time: { '!': string; value: number }; 'original-expiration'?: string }

/** A source queue dead-lettering to `dlx` with routing key = its own name, and the DLQ bound to it. */
async function pair(ch: amqp.Channel, name: string, args: Record<string, unknown>): Promise<string> {
  await ch.assertQueue(name, { durable: false, arguments: { 'x-dead-letter-exchange': 'dlx', 'x-dead-letter-routing-key': `dead.${name}`, ...args } });
  const { queue: dlq } = await ch.assertQueue(`${name}.dlq`, { durable: false });
  await ch.bindQueue(dlq, 'dlx', `dead.${name}`);
  return dlq;
}

async function oneDeadLetter(ch: amqp.Channel, dlq: string): Promise<amqp.GetMessage> {
  let m: amqp.GetMessage | false = false;
  await waitUntil(async () => (m = await ch.get(dlq, { noAck: true })) !== false, `a dead letter in ${dlq}`);
  return m as unknown as amqp.GetMessage;
}

function xDeath(m: amqp.Message): XDeath[] {
  return (m.properties.headers as Record<string, unknown>)['x-death'] as XDeath[];
}

test('reject without requeue dead-letters with reason rejected; body, properties and x-death as RabbitMQ', async () => {
  const ch = await channel(conn);
  const dlq = await pair(ch, 'dl-reject', {});
  ch.sendToQueue('dl-reject', Buffer.from('bad'), { messageId: 'm-1', headers: { mine: 'kept' }, contentType: 'text/plain' });
  let got: amqp.GetMessage | false = false;
  await waitUntil(async () => (got = await ch.get('dl-reject')) !== false, 'the message');
  ch.reject(got as unknown as amqp.GetMessage, false);
  const d = await oneDeadLetter(ch, dlq);
  assert.is(d.content.toString(), 'bad');
  assert.is(d.properties.messageId, 'm-1');
  assert.is(d.properties.contentType, 'text/plain');
  assert.is(d.fields.routingKey, 'dead.dl-reject', 'x-dead-letter-routing-key applies');
  const h = d.properties.headers as Record<string, unknown>;
  assert.is(h.mine, 'kept');
  const [x] = xDeath(d);
  assert.is(x!.reason, 'rejected');
  assert.is(x!.queue, 'dl-reject');
  assert.is(Number(x!.count), 1);
  assert.is(x!.exchange, '');
  assert.equal(x!['routing-keys'], ['dl-reject']);
  assert.is(x!.time['!'], 'timestamp');
  assert.ok(Math.abs(x!.time.value - Date.now() / 1000) < 60);
  assert.is(h['x-first-death-reason'], 'rejected');
  assert.is(h['x-first-death-queue'], 'dl-reject');
  await ch.close();
});

test('x-message-ttl and per-message expiration dead-letter with reason expired (original-expiration kept)', async () => {
  const ch = await channel(conn);
  const dlq = await pair(ch, 'dl-ttl', { 'x-message-ttl': 50 });
  ch.sendToQueue('dl-ttl', Buffer.from('old'));
  const d = await oneDeadLetter(ch, dlq);
  assert.is(d.content.toString(), 'old');
  assert.is(xDeath(d)[0]!.reason, 'expired');
  const dlq2 = await pair(ch, 'dl-exp', {});
  ch.sendToQueue('dl-exp', Buffer.from('short'), { expiration: '40' });
  const e = await oneDeadLetter(ch, dlq2);
  const [x] = xDeath(e);
  assert.is(x!.reason, 'expired');
  assert.is(x!['original-expiration'], '40');
  assert.is(e.properties.expiration, undefined, 'a dead letter loses its expiration');
  await ch.close();
});

test('x-max-length drops the oldest ready message as a dead letter with reason maxlen', async () => {
  const ch = await channel(conn, true);
  const dlq = await pair(ch, 'dl-max', { 'x-max-length': 2 });
  for (const s of ['1', '2', '3']) ch.sendToQueue('dl-max', Buffer.from(s));
  await ch.waitForConfirms();
  const d = await oneDeadLetter(ch, dlq);
  assert.is(d.content.toString(), '1');
  assert.is(xDeath(d)[0]!.reason, 'maxlen');
  assert.is((await ch.checkQueue('dl-max')).messageCount, 2);
  await ch.close();
});

test('x-delivery-limit: a message returned more often than the limit is dead-lettered with reason delivery_limit', async () => {
  const ch = await channel(conn);
  const dlq = await pair(ch, 'dl-limit', { 'x-delivery-limit': 1 });
  ch.sendToQueue('dl-limit', Buffer.from('poison'));
  let returned = 0;
  await ch.consume('dl-limit', (m) => {
    if (m === null) return;
    returned++;
    ch.nack(m, false, true);
  });
  const d = await oneDeadLetter(ch, dlq);
  assert.is(d.content.toString(), 'poison');
  assert.is(xDeath(d)[0]!.reason, 'delivery_limit');
  assert.is(returned, 2, 'delivered, returned once (allowed), returned again (over the limit)');
  await ch.close();
});

test('x-expires deletes an unused queue; x-consumer-timeout is accepted', async () => {
  const ch = await channel(conn);
  await ch.assertQueue('short-lived', { durable: false, arguments: { 'x-expires': 100 } });
  await waitUntil(async () => {
    const probe = await channel(conn);
    const gone = await probe.checkQueue('short-lived').then(() => false, () => true);
    if (!gone) await probe.close();
    return gone;
  }, 'the unused queue to expire', 5000);
  await ch.assertQueue('ct', { durable: false, arguments: { 'x-consumer-timeout': 60000, 'x-queue-type': 'quorum' } });
  await ch.deleteQueue('ct');
  await ch.close();
});

test('invalid queue arguments: 406 PRECONDITION_FAILED closes the channel only', async () => {
  for (const args of [{ 'x-message-ttl': -1 }, { 'x-max-length': 'ten' }, { 'x-overflow': 'bogus' }, { 'x-dead-letter-routing-key': 'k' }, { 'x-queue-type': 'stream' }, { 'x-expires': 0 }]) {
    const ch = await channel(conn);
    const done = closed(ch);
    const r = await ch.assertQueue('bad-args', { durable: false, arguments: args }).then(() => 'declared', (e: { code?: number }) => e.code);
    assert.is(r, 406, `refused: ${JSON.stringify(args)}`);
    assert.match(String(await done), /PRECONDITION_FAILED - invalid arg/);
  }
  const ok = await channel(conn);
  await ok.assertQueue('after-bad-args', { durable: false });
  await ok.deleteQueue('after-bad-args');
  await ok.close();
});

test('redeclare with other arguments: 406 (inequivalent); the same arguments: ok', async () => {
  const ch = await channel(conn);
  await ch.assertQueue('eq', { durable: false, arguments: { 'x-message-ttl': 1000 } });
  await ch.assertQueue('eq', { durable: false, arguments: { 'x-message-ttl': 1000 } });
  const done = closed(ch);
  const r = await ch.assertQueue('eq', { durable: false, arguments: { 'x-message-ttl': 2000 } }).then(() => 'ok', (e: { code?: number }) => e.code);
  assert.is(r, 406);
  await done;
  const c2 = await channel(conn);
  await c2.deleteQueue('eq');
  await c2.close();
  await sleep(0);
});

test.run();
