/**
 * Conformance: errors as the spec and RabbitMQ do them. Channel-level codes
 * (403, 404, 405, 406) close the channel only; connection-level ones (501,
 * 503, 504, 505, 530, 540) close the connection; every other channel and
 * connection keeps being served (G11). Auth: PLAIN and AMQPLAIN, refused
 * logins (403), unknown vhost (530), a users file.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as amqp from 'amqplib';
import { PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { method, MethodId } from '../../../src/amqp/codec/methods.js';
import { channel, closed, codeOf, connect, startServer, tempDataDir, type ServerHandle } from '../../helpers/amqp-server.js';
import { RawClient } from '../../helpers/raw-amqp.js';

let server: ServerHandle;
let conn: amqp.ChannelModel;
/** A healthy connection doing round trips through every test: it must never notice anything. */
let witness: amqp.ChannelModel;
let witnessCh: amqp.ConfirmChannel;
let witnessN = 0;

async function witnessRoundTrip(): Promise<void> {
  const n = ++witnessN;
  witnessCh.sendToQueue('witness', Buffer.from(String(n)));
  await witnessCh.waitForConfirms();
  const m = await witnessCh.get('witness', { noAck: true });
  assert.ok(m, 'the witness connection still gets its message');
  assert.is(m.content.toString(), String(n));
}

test.before(async () => {
  server = await startServer();
  conn = await connect(server);
  witness = await connect(server);
  witnessCh = await witness.createConfirmChannel();
  await witnessCh.assertQueue('witness', { durable: false });
});

test.after(async () => {
  await witnessRoundTrip();
  await witness?.close().catch(() => {});
  await conn?.close().catch(() => {});
  await server?.dispose();
});

test('404 NOT_FOUND (unknown queue, unknown exchange) closes only that channel', async () => {
  const bad = await channel(conn);
  const good = await channel(conn);
  const done = closed(bad);
  assert.is(await codeOf(bad.checkQueue('no-such-queue')), 404);
  const err = await done;
  assert.match(String(err), /NOT_FOUND - no queue 'no-such-queue'/);
  const bad2 = await channel(conn);
  const done2 = closed(bad2);
  bad2.publish('no-such-exchange', 'k', Buffer.from('x'));
  assert.match(String(await done2), /404 .*NOT_FOUND - no exchange 'no-such-exchange'/);
  const { queue } = await good.assertQueue('', { exclusive: true });
  assert.ok(queue, 'the other channel on the same connection still works');
  await good.close();
  await witnessRoundTrip();
});

test('406 PRECONDITION_FAILED: exchange redeclared with another type; delete if-empty of a non-empty queue', async () => {
  const ch = await channel(conn);
  await ch.assertExchange('typed', 'direct', { durable: false });
  assert.is(await codeOf(ch.assertExchange('typed', 'fanout', { durable: false })), 406);
  const ch2 = await channel(conn);
  await ch2.assertQueue('nonempty', { durable: false });
  ch2.sendToQueue('nonempty', Buffer.from('x'));
  assert.is(await codeOf(ch2.deleteQueue('nonempty', { ifEmpty: true })), 406);
  const ch3 = await channel(conn);
  await ch3.deleteQueue('nonempty');
  await ch3.deleteExchange('typed');
  await ch3.close();
});

test('405 RESOURCE_LOCKED: an exclusive queue of another connection; 403 for an exclusive consumer, amq.* names, internal exchanges', async () => {
  const owner = await connect(server);
  const oc = await channel(owner);
  await oc.assertQueue('excl', { exclusive: true });
  const ch = await channel(conn);
  assert.is(await codeOf(ch.assertQueue('excl', { exclusive: true })), 405);
  const ch2 = await channel(conn);
  assert.is(await codeOf(ch2.consume('excl', () => {})), 405);
  const ch3 = await channel(conn);
  assert.is(await codeOf(ch3.checkQueue('excl')), 405);
  // An exclusive consumer: a second consumer is refused with 403 (RabbitMQ: "in exclusive use").
  await oc.assertQueue('shared', { durable: false });
  await oc.consume('shared', () => {}, { exclusive: true });
  const ch4 = await channel(conn);
  assert.is(await codeOf(ch4.consume('shared', () => {})), 403);
  const ch5 = await channel(conn);
  assert.is(await codeOf(ch5.assertQueue('amq.mine', { durable: false })), 403);
  const ch6 = await channel(conn);
  await ch6.assertExchange('inner', 'fanout', { durable: false, internal: true });
  const done = closed(ch6);
  ch6.publish('inner', '', Buffer.from('x'));
  assert.match(String(await done), /403/);
  await owner.close();
  const ch7 = await channel(conn);
  await ch7.deleteQueue('shared');
  await ch7.deleteExchange('inner');
  await ch7.close();
  await witnessRoundTrip();
});

test('503 COMMAND_INVALID: an unknown exchange type closes the connection, others keep working', async () => {
  const c = await connect(server);
  const ch = await channel(c);
  const connClosed = new Promise<Error | undefined>((resolve) => c.once('close', resolve));
  await ch.assertExchange('delayed', 'x-delayed-message').then(() => assert.unreachable('declared'), () => {});
  assert.match(String(await connClosed), /503 \(COMMAND-INVALID\) with message "COMMAND_INVALID - unknown exchange type 'x-delayed-message'"/);
  await witnessRoundTrip();
});

test('403 ACCESS_REFUSED for a bad password, 530 NOT_ALLOWED for an unknown vhost; AMQPLAIN works', async () => {
  const bad = await amqp.connect(`amqp://guest:wrong@127.0.0.1:${server.port}`).then(() => 'connected', (e: Error) => e.message);
  assert.match(bad, /ACCESS_REFUSED|403/);
  const nouser = await amqp.connect(`amqp://nobody:guest@127.0.0.1:${server.port}`).then(() => 'connected', (e: Error) => e.message);
  assert.match(nouser, /ACCESS_REFUSED|403/);
  // amqplib reports a close during the handshake without its code ("Expected ConnectionOpenOk; got <ConnectionClose>"): read it raw.
  const vhost = await amqp.connect(`amqp://guest:guest@127.0.0.1:${server.port}/elsewhere`).then(() => 'connected', (e: Error) => e.message);
  assert.match(vhost, /ConnectionClose/);
  const r2 = await RawClient.open(server.port);
  r2.write(PROTOCOL_HEADER);
  await r2.waitMethod(0, MethodId.ConnectionStart);
  r2.sendMethod(0, method('ConnectionStartOk', { clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }));
  await r2.waitMethod(0, MethodId.ConnectionTune);
  r2.sendMethod(0, method('ConnectionTuneOk', { channelMax: 0, frameMax: 131072, heartbeat: 0 }));
  r2.sendMethod(0, method('ConnectionOpen', { virtualHost: 'elsewhere' }));
  const c530 = await r2.closeFrom(0);
  assert.is(c530.replyCode, 530);
  assert.is(c530.replyText, "NOT_ALLOWED - access to vhost 'elsewhere' refused for user 'guest'");
  r2.destroy();
  const amqplain = await amqp.connect({ protocol: 'amqp', hostname: '127.0.0.1', port: server.port }, { credentials: amqp.credentials.amqplain('guest', 'guest') });
  const ch = await amqplain.createChannel();
  await ch.assertQueue('', { exclusive: true });
  await amqplain.close();
  await witnessRoundTrip();
});

test('501 FRAME_ERROR (bad frame-end) and 505 UNEXPECTED_FRAME (body without header) close only their connection', async () => {
  const a = await RawClient.handshake(server.port);
  await a.openChannel(1);
  const frame = Buffer.from(new Uint8Array([1, 0, 1, 0, 0, 0, 4, 0, 20, 0, 40, 0x00])); // frame-end 0x00, not 0xce
  a.write(frame);
  const close = await a.closeFrom(0);
  assert.is(close.replyCode, 501);
  assert.match(close.replyText, /^FRAME_ERROR - frame-end/);
  await a.ended;
  const b = await RawClient.handshake(server.port);
  await b.openChannel(1);
  b.write(Buffer.from([3, 0, 1, 0, 0, 0, 2, 0x61, 0x62, 0xce])); // a body frame, no publish/header before it
  const close2 = await b.closeFrom(0);
  assert.is(close2.replyCode, 505);
  b.sendMethod(0, method('ConnectionCloseOk', {}));
  await b.ended;
  await witnessRoundTrip();
});

test('504 CHANNEL_ERROR (method on an unopened channel), 530 (channel above channel-max), 540 (immediate)', async () => {
  const a = await RawClient.handshake(server.port);
  a.sendMethod(7, method('QueueDeclare', { queue: 'x', passive: false, durable: false, exclusive: false, autoDelete: false, nowait: false, arguments: {} }));
  const c1 = await a.closeFrom(0);
  assert.is(c1.replyCode, 504);
  assert.is(c1.classId, 50);
  assert.is(c1.methodId, 10);
  const b = await RawClient.handshake(server.port, { channelMax: 10 });
  b.sendMethod(11, method('ChannelOpen', {}));
  assert.is((await b.closeFrom(0)).replyCode, 530);
  const c = await RawClient.handshake(server.port);
  await c.openChannel(1);
  c.sendContent(1, method('BasicPublish', { exchange: '', routingKey: 'q', mandatory: false, immediate: true }), {}, Buffer.from('x'));
  const c3 = await c.closeFrom(0);
  assert.is(c3.replyCode, 540);
  assert.match(c3.replyText, /immediate=true/);
  for (const x of [a, b, c]) x.destroy();
  await witnessRoundTrip();
});

test('a message over the max message size: 406 closes the channel; the connection keeps serving', async () => {
  const a = await RawClient.handshake(server.port);
  await a.openChannel(1);
  await a.openChannel(2);
  // A header that declares 1 TiB: refused from the header alone, nothing allocated for it.
  a.sendMethod(1, method('BasicPublish', { exchange: '', routingKey: 'witness', mandatory: false, immediate: false }));
  const hdr = Buffer.from([2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xce]);
  a.write(hdr);
  const cc = await a.closeFrom(1);
  assert.is(cc.replyCode, 406);
  assert.match(cc.replyText, /larger than configured max size/);
  a.sendMethod(2, method('QueueDeclare', { queue: '', passive: false, durable: false, exclusive: true, autoDelete: false, nowait: false, arguments: {} }));
  await a.waitMethod(2, MethodId.QueueDeclareOk);
  a.destroy();
});

test('a bad protocol header gets ours back and the socket closed (§4.2.2)', async () => {
  const a = await RawClient.open(server.port);
  a.write(Buffer.from('HTTP/1.1 GET /\r\n\r\n'));
  await a.ended;
  assert.ok(Buffer.concat(a.raw).equals(PROTOCOL_HEADER));
});

test('a users file: its users log in, guest is gone; --user flags', async () => {
  const dir = tempDataDir();
  const file = join(dir, 'users.json');
  writeFileSync(file, JSON.stringify({ users: [{ name: 'alice', password: 's3cret' }, { name: 'bob', password: 'pw', vhosts: [] }] }));
  const s2 = await startServer({ args: ['--users', file, '--user', 'carol:c:p'] });
  try {
    const ok = await amqp.connect(`amqp://alice:s3cret@127.0.0.1:${s2.port}`);
    await ok.close();
    const carol = await amqp.connect(`amqp://carol:${encodeURIComponent('c:p')}@127.0.0.1:${s2.port}`);
    await carol.close();
    assert.match(await amqp.connect(`amqp://guest:guest@127.0.0.1:${s2.port}`).then(() => 'connected', (e: Error) => e.message), /ACCESS_REFUSED/);
    assert.match(await amqp.connect(`amqp://bob:pw@127.0.0.1:${s2.port}`).then(() => 'connected', (e: Error) => e.message), /ConnectionClose/);
    assert.match(s2.stderr(), /530 NOT_ALLOWED - access to vhost '\/' refused for user 'bob'/);
    assert.match(s2.stderr(), /login refused: user 'guest': invalid credentials/);
  } finally {
    await s2.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('heartbeats: a client that negotiates them and stays silent is dropped; one that beats is kept', async () => {
  const silent = await RawClient.handshake(server.port, { heartbeat: 1 });
  const t0 = Date.now();
  await silent.ended;
  const took = Date.now() - t0;
  assert.ok(took >= 1500 && took < 4500, `dropped after ~2 intervals (${took} ms)`);
  assert.ok(silent.frames.some((f) => f.t === 'heartbeat'), 'the server sent heartbeats');
  const c = await connect(server, { heartbeat: 1 }); // amqplib beats
  await new Promise((r) => setTimeout(r, 2500));
  const ch = await c.createChannel();
  await ch.assertQueue('', { exclusive: true });
  await c.close();
});

test.run();
