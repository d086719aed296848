/**
 * Conformance at the frame level, with a raw client (our codec and frame
 * reader): exact round trip of every property and every field-table value
 * type (amqplib decodes numbers without their type letter, so it cannot
 * check this), frame-max in both directions, confirms numbering, consumer
 * tag reuse, server-named queues.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { Typed, type FieldTable } from '../../../src/amqp/codec/field-table.js';
import { method, MethodId, type Method } from '../../../src/amqp/codec/methods.js';
import type { BasicProperties, ContentHeader } from '../../../src/amqp/codec/properties.js';
import { startServer, type ServerHandle } from '../../helpers/amqp-server.js';
import { RawClient } from '../../helpers/raw-amqp.js';
import type { Recorded } from '../../helpers/frame-collector.js';

let server: ServerHandle;

test.before(async () => {
  server = await startServer();
});

test.after(async () => {
  await server?.dispose();
});

const declare = (queue: string, extra: Partial<{ exclusive: boolean; arguments: FieldTable }> = {}): Method =>
  method('QueueDeclare', { queue, passive: false, durable: false, exclusive: extra.exclusive ?? false, autoDelete: false, nowait: false, arguments: extra.arguments ?? {} });

function contentAfter(c: RawClient, i: number): { header: ContentHeader; body: Buffer; frames: number } {
  const h = c.frames[i + 1] as Extract<Recorded, { t: 'header' }>;
  const parts: Buffer[] = [];
  let j = i + 2;
  while (j < c.frames.length && c.frames[j]!.t === 'body') parts.push(Buffer.from((c.frames[j] as { hex: string }).hex, 'hex')), j++;
  return { header: h.h, body: Buffer.concat(parts), frames: parts.length };
}

test('every property and every field value type comes back with the same type letters (exact round trip)', async () => {
  const c = await RawClient.handshake(server.port);
  await c.openChannel(1);
  c.sendMethod(1, declare('', { exclusive: true }));
  const ok = (await c.waitMethod(1, MethodId.QueueDeclareOk)) as unknown as { queue: string };
  const headers: FieldTable = {
    S: 'text ü', t1: true, t0: false, b: new Typed('b', -5), B: new Typed('B', 250), s: new Typed('s', -300), u: new Typed('u', 65000),
    I: new Typed('I', -70000), i: new Typed('i', 4000000000), l: new Typed('l', -(2n ** 62n)), L: new Typed('L', 2n ** 62n),
    f: new Typed('f', 0.5), d: new Typed('d', -1.25), T: new Typed('T', 1700000000n), D: new Typed('D', { scale: 3, digits: 123456 }),
    V: null, x: Buffer.from([0, 255, 7]), A: [new Typed('b', 1), 'two', [null], { k: new Typed('u', 9) }], F: { nested: { deeper: new Typed('s', 1) } },
  };
  const props: BasicProperties = {
    contentType: 'a/b', contentEncoding: 'enc', headers, deliveryMode: 1, priority: 9, correlationId: 'c', replyTo: 'r',
    expiration: '600000', messageId: 'm', timestamp: 1700000002, type: 't', userId: 'guest', appId: 'app', clusterId: 'cl',
  };
  c.sendContent(1, method('BasicPublish', { exchange: '', routingKey: ok.queue, mandatory: false, immediate: false }), props, Buffer.from('body'));
  c.sendMethod(1, method('BasicGet', { queue: ok.queue, noAck: true }));
  const at = c.frames.length;
  await c.waitFor((f) => f.t === 'body', 'the content', 5000, at);
  const i = c.frames.findIndex((f, k) => k >= at && f.t === 'method' && f.m.id === MethodId.BasicGetOk);
  const got = contentAfter(c, i);
  assert.equal(got.header.properties, props);
  assert.is(got.body.toString(), 'body');
  const getOk = (c.frames[i] as { m: Record<string, unknown> }).m;
  assert.equal([getOk.exchange, getOk.routingKey, getOk.deliveryTag, getOk.redelivered, getOk.messageCount], ['', ok.queue, 1, false, 0]);
  c.destroy();
});

test('frame-max both ways: a 10 000-byte body at frame-max 4096 arrives in frames of at most 4088 payload bytes', async () => {
  const c = await RawClient.handshake(server.port, { frameMax: 4096 });
  await c.openChannel(1);
  c.sendMethod(1, declare('', { exclusive: true }));
  const { queue } = (await c.waitMethod(1, MethodId.QueueDeclareOk)) as unknown as { queue: string };
  const body = Buffer.alloc(10000, 7);
  c.sendContent(1, method('BasicPublish', { exchange: '', routingKey: queue, mandatory: false, immediate: false }), {}, body, 4096);
  c.sendMethod(1, method('BasicConsume', { queue, consumerTag: 'ct', noLocal: false, noAck: true, exclusive: false, nowait: false, arguments: {} }));
  const at = c.frames.length;
  await c.waitFor((f) => f.t === 'body' && f.remaining === 0, 'the last body frame', 5000, at);
  const i = c.frames.findIndex((f, k) => k >= at && f.t === 'method' && f.m.id === MethodId.BasicDeliver);
  const got = contentAfter(c, i);
  assert.ok(got.body.equals(body));
  assert.is(got.frames, 3);
  // A frame above the negotiated frame-max is a connection error (501).
  c.write(Buffer.concat([Buffer.from([3, 0, 1, 0, 0, 0x10, 0]), Buffer.alloc(4096), Buffer.from([0xce])]));
  assert.is((await c.closeFrom(0)).replyCode, 501);
  c.destroy();
});

test('tune-ok with a frame-max below 4096 or above ours: 530', async () => {
  for (const frameMax of [1000, 1 << 20]) {
    const c = await RawClient.open(server.port);
    c.write(PROTOCOL_HEADER);
    await c.waitMethod(0, MethodId.ConnectionStart);
    c.sendMethod(0, method('ConnectionStartOk', { clientProperties: {}, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' }));
    await c.waitMethod(0, MethodId.ConnectionTune);
    c.sendMethod(0, method('ConnectionTuneOk', { channelMax: 0, frameMax, heartbeat: 0 }));
    const close = await c.closeFrom(0);
    assert.is(close.replyCode, 530);
    assert.match(close.replyText, /frame_max/);
    c.destroy();
  }
});

test('confirms: tags are publish sequence numbers; a burst is acked with multiple; all covered once', async () => {
  const c = await RawClient.handshake(server.port);
  await c.openChannel(1);
  c.sendMethod(1, method('ConfirmSelect', { nowait: false }));
  await c.waitMethod(1, MethodId.ConfirmSelectOk);
  c.sendMethod(1, declare('', { exclusive: true }));
  const { queue } = (await c.waitMethod(1, MethodId.QueueDeclareOk)) as unknown as { queue: string };
  const at = c.frames.length;
  for (let k = 0; k < 300; k++) c.sendContent(1, method('BasicPublish', { exchange: '', routingKey: k % 3 === 0 ? 'nowhere' : queue, mandatory: false, immediate: false }), {}, Buffer.from(String(k)));
  const acked = new Set<number>();
  let multiples = 0;
  const start = Date.now();
  while (acked.size < 300 && Date.now() - start < 5000) {
    await new Promise((r) => setTimeout(r, 5));
    acked.clear();
    multiples = 0;
    for (const f of c.frames.slice(at)) {
      if (f.t !== 'method' || f.m.id !== MethodId.BasicAck) continue;
      const m = f.m as unknown as { deliveryTag: number; multiple: boolean };
      assert.not.ok(acked.has(m.deliveryTag), `tag ${m.deliveryTag} confirmed twice`);
      if (m.multiple) {
        multiples++;
        for (let t = 1; t <= m.deliveryTag; t++) acked.add(t); // multiple: every tag up to this one
      } else acked.add(m.deliveryTag);
    }
  }
  assert.is(acked.size, 300);
  assert.is(Math.min(...acked), 1);
  assert.is(Math.max(...acked), 300);
  assert.ok(multiples > 0, 'a burst is acked with multiple');
  assert.not.ok(c.frames.some((f) => f.t === 'method' && f.m.id === MethodId.BasicNack));
  c.destroy();
});

test('consumer tags: server-generated when empty; a reused tag on the channel is 530 NOT_ALLOWED', async () => {
  const c = await RawClient.handshake(server.port);
  await c.openChannel(1);
  c.sendMethod(1, declare('', { exclusive: true }));
  const { queue } = (await c.waitMethod(1, MethodId.QueueDeclareOk)) as unknown as { queue: string };
  c.sendMethod(1, method('BasicConsume', { queue, consumerTag: '', noLocal: false, noAck: false, exclusive: false, nowait: false, arguments: {} }));
  const okm = (await c.waitMethod(1, MethodId.BasicConsumeOk)) as unknown as { consumerTag: string };
  assert.match(okm.consumerTag, /^amq\.ctag-/);
  c.sendMethod(1, method('BasicConsume', { queue, consumerTag: okm.consumerTag, noLocal: false, noAck: false, exclusive: false, nowait: false, arguments: {} }));
  const close = await c.closeFrom(0);
  assert.is(close.replyCode, 530);
  assert.match(close.replyText, /reuse consumer tag/);
  c.destroy();
});

test('channel.close from the client returns close-ok and frees the number; methods after a server channel.close are dropped until close-ok', async () => {
  const c = await RawClient.handshake(server.port);
  await c.openChannel(1);
  c.sendMethod(1, method('QueueDeclare', { queue: 'missing', passive: true, durable: false, exclusive: false, autoDelete: false, nowait: false, arguments: {} }));
  const cc = await c.closeFrom(1);
  assert.is(cc.replyCode, 404);
  assert.equal([cc.classId, cc.methodId], [50, 10]);
  const before = c.frames.length;
  c.sendMethod(1, declare('', { exclusive: true })); // dropped: the channel is closing
  c.sendMethod(1, method('ChannelCloseOk', {}));
  await c.openChannel(1); // the number is free again
  assert.not.ok(c.frames.slice(before).some((f) => f.t === 'method' && f.m.id === MethodId.QueueDeclareOk));
  c.sendMethod(1, method('ChannelClose', { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 }));
  await c.waitMethod(1, MethodId.ChannelCloseOk);
  await c.openChannel(1);
  c.sendMethod(0, method('ConnectionClose', { replyCode: 200, replyText: 'bye', classId: 0, methodId: 0 }));
  await c.waitMethod(0, MethodId.ConnectionCloseOk);
  await c.ended;
});

test.run();
