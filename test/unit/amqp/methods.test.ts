import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cursor } from '../../../src/amqp/codec/cursor.js';
import { allMethods, method, METHODS, MethodId, readMethod, writeMethod } from '../../../src/amqp/codec/methods.js';
import type { Method } from '../../../src/amqp/codec/methods.js';
import { Writer } from '../../../src/amqp/codec/writer.js';
import { AmqpError } from '../../../src/amqp/errors.js';

function encode(m: Method): Buffer {
  const w = new Writer(64);
  writeMethod(w, m);
  return w.take();
}

function decode(b: Buffer): Method {
  const c = new Cursor();
  c.reset(b, 0, b.length, 1);
  return readMethod(c);
}

function errorOf(fn: () => unknown): AmqpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AmqpError) return err;
    throw new Error(`expected an AmqpError, got ${String(err)}`);
  }
  throw new Error('expected an AmqpError, nothing was thrown');
}

test('every method of connection, channel, exchange, queue, basic, confirm and tx is known', () => {
  const names = allMethods().map((m) => m.name).sort();
  assert.is(names.length, 64); // amqplib's 66 without the deprecated access class
  for (const n of ['basic.nack', 'confirm.select', 'connection.blocked', 'connection.unblocked', 'exchange.bind', 'exchange.unbind-ok', 'basic.recover-async', 'connection.update-secret', 'tx.rollback-ok']) {
    assert.ok(names.includes(n), n);
  }
});

test('ids are class << 16 | method, with RabbitMQ numbering exchange.unbind-ok 51', () => {
  assert.is(MethodId.BasicPublish, (60 << 16) | 40);
  assert.is(MethodId.ConnectionStart, (10 << 16) | 10);
  assert.is(MethodId.ConfirmSelect, (85 << 16) | 10);
  assert.is(MethodId.ExchangeUnbindOk, (40 << 16) | 51);
  assert.is(MethodId.BasicNack, (60 << 16) | 120);
  assert.equal(Object.keys(MethodId).sort(), Object.keys(METHODS).sort());
});

test('every method encodes and decodes with its zero-value arguments', () => {
  for (const info of allMethods()) {
    const m = decode(encode({ id: info.id } as Method));
    assert.is(m.id, info.id, info.name);
    assert.equal(encode(m), encode({ id: info.id } as Method), info.name);
  }
});

test('consecutive bits pack into one octet from the low bit (§4.2.5.2)', () => {
  const ex = encode(method('ExchangeDeclare', { exchange: 'e', type: 'd', passive: false, durable: true, autoDelete: false, internal: false, nowait: true, arguments: {} }));
  // class 40, method 10, ticket 0, "e", "d", bits, empty table
  assert.is(ex.toString('hex'), '0028000a' + '0000' + '0165' + '0164' + '12' + '00000000');
  const nack = encode(method('BasicNack', { deliveryTag: 7, multiple: false, requeue: true }));
  assert.is(nack.toString('hex'), '003c0078' + '0000000000000007' + '02');
  const consume = encode(method('BasicConsume', { queue: 'q', consumerTag: '', noLocal: true, noAck: false, exclusive: true, nowait: false, arguments: {} }));
  assert.is(consume.toString('hex'), '003c0014' + '0000' + '0171' + '00' + '05' + '00000000');
  const qd = decode(Buffer.from('0032000a' + '0000' + '0171' + '1e' + '00000000', 'hex'));
  assert.equal(qd, method('QueueDeclare', { queue: 'q', passive: false, durable: true, exclusive: true, autoDelete: true, nowait: true, arguments: {} }));
});

test('a bit after a non-bit field starts a new octet', () => {
  // basic.deliver: consumer-tag, delivery-tag, redelivered (bit), exchange, routing-key
  const d = encode(method('BasicDeliver', { consumerTag: 'c', deliveryTag: 2 ** 53 - 1, redelivered: true, exchange: 'x', routingKey: 'r' }));
  assert.is(d.toString('hex'), '003c003c' + '0163' + '001fffffffffffff' + '01' + '0178' + '0172');
});

test('reserved arguments are written as zero and not returned', () => {
  const open = encode(method('ConnectionOpen', { virtualHost: '/' }));
  assert.is(open.toString('hex'), '000a0028' + '012f' + '00' + '00');
  assert.equal(decode(Buffer.from('000a0028' + '012f' + '0378797a' + '01', 'hex')), method('ConnectionOpen', { virtualHost: '/' }));
});

test('an unknown class or method is not-implemented (540), naming the ids', () => {
  const e = errorOf(() => decode(Buffer.from('001e000a', 'hex'))); // access.request: deprecated, not supported
  assert.is(e.replyCode, 540);
  assert.is(e.classId, 30);
  assert.is(e.methodId, 10);
  assert.is(e.closes, 'connection');
});

test('a truncated argument list is frame-error with the class and method ids', () => {
  const full = encode(method('BasicPublish', { exchange: 'amq.direct', routingKey: 'key', mandatory: true, immediate: false }));
  for (let n = 4; n < full.length; n++) {
    const e = errorOf(() => decode(full.subarray(0, n)));
    assert.is(e.replyCode, 501, `cut at ${n}`);
    assert.is(e.classId, 60);
    assert.is(e.methodId, 40);
  }
});

test('bytes after the last argument are frame-error', () => {
  const b = Buffer.concat([encode(method('BasicAck', { deliveryTag: 1, multiple: false })), Buffer.from([0])]);
  assert.is(errorOf(() => decode(b)).replyCode, 501);
});

test('a 64-bit value above 2^53 - 1 is syntax-error, never rounded', () => {
  const e = errorOf(() => decode(Buffer.from('003c0050' + '0020000000000000' + '00', 'hex')));
  assert.is(e.replyCode, 502);
  assert.equal(decode(Buffer.from('003c0050' + '001fffffffffffff' + '01', 'hex')), method('BasicAck', { deliveryTag: 2 ** 53 - 1, multiple: true }));
});

test('encoding refuses arguments out of range', () => {
  assert.throws(() => encode(method('ConnectionTune', { channelMax: 65536, frameMax: 0, heartbeat: 0 })), (e: Error) => e instanceof RangeError);
  assert.throws(() => encode(method('BasicAck', { deliveryTag: -1, multiple: false })), (e: Error) => e instanceof RangeError);
  assert.throws(() => encode(method('BasicPublish', { exchange: 'x'.repeat(256), routingKey: '', mandatory: false, immediate: false })), (e: Error) => e instanceof RangeError);
  assert.throws(() => encode({ id: 0x001e000a } as unknown as Method), (e: Error) => e instanceof TypeError);
});

test('switch (m.id) narrows a Method to its arguments (checked by tsc)', () => {
  function describe(m: Method): string {
    switch (m.id) {
      case MethodId.BasicPublish:
        return `publish ${m.exchange}/${m.routingKey} mandatory=${m.mandatory}`;
      case MethodId.BasicAck:
        return `ack ${m.deliveryTag} multiple=${m.multiple}`;
      case MethodId.QueueDeclare:
        return `declare ${m.queue} durable=${m.durable}`;
      default:
        return 'other';
    }
  }
  assert.is(describe(method('BasicPublish', { exchange: 'x', routingKey: 'k', mandatory: true, immediate: false })), 'publish x/k mandatory=true');
  assert.is(describe(method('BasicAck', { deliveryTag: 3, multiple: false })), 'ack 3 multiple=false');
  assert.is(describe(method('TxSelect', {})), 'other');
});

test.run();
