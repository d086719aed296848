import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cursor } from '../../../src/amqp/codec/cursor.js';
import { Typed } from '../../../src/amqp/codec/field-table.js';
import { readContentHeader, writeContentHeader } from '../../../src/amqp/codec/properties.js';
import type { BasicProperties, ContentHeader } from '../../../src/amqp/codec/properties.js';
import { Writer } from '../../../src/amqp/codec/writer.js';
import { AmqpError } from '../../../src/amqp/errors.js';

function encode(bodySize: number, p: BasicProperties): Buffer {
  const w = new Writer(64);
  writeContentHeader(w, bodySize, p);
  return w.take();
}

function decode(b: Buffer): ContentHeader {
  const c = new Cursor();
  c.reset(b, 0, b.length, 1);
  return readContentHeader(c);
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

// §4.2.6.1: "bit 15 indicates the first property". The spec's property order for basic.
const order: [keyof BasicProperties, unknown, string][] = [
  ['contentType', 'a', '0161'],
  ['contentEncoding', 'a', '0161'],
  ['headers', {}, '00000000'],
  ['deliveryMode', 2, '02'],
  ['priority', 9, '09'],
  ['correlationId', 'a', '0161'],
  ['replyTo', 'a', '0161'],
  ['expiration', '60000', '053630303030'],
  ['messageId', 'a', '0161'],
  ['timestamp', 1700000000, '000000006553f100'],
  ['type', 'a', '0161'],
  ['userId', 'a', '0161'],
  ['appId', 'a', '0161'],
  ['clusterId', 'a', '0161'],
];

order.forEach(([name, value, hex], i) => {
  test(`${name} alone sets flag bit ${15 - i} and nothing else`, () => {
    const flags = (1 << (15 - i)).toString(16).padStart(4, '0');
    const b = encode(5, { [name]: value } as BasicProperties);
    assert.is(b.toString('hex'), '003c' + '0000' + '0000000000000005' + flags + hex);
    assert.equal(decode(b), { classId: 60, bodySize: 5, properties: { [name]: value } });
  });
});

test('all 14 properties in spec order', () => {
  const all: BasicProperties = {
    contentType: 'application/json', contentEncoding: 'gzip', headers: { 'x-death': [{ count: new Typed('l', 1n), reason: 'rejected' }] },
    deliveryMode: 2, priority: 5, correlationId: 'c1', replyTo: 'amq.rabbitmq.reply-to', expiration: '1000', messageId: 'm1',
    timestamp: 1700000000, type: 't', userId: 'guest', appId: 'app', clusterId: '',
  };
  const b = encode(2 ** 40, all);
  assert.is(b.readUInt16BE(12), 0xfffc);
  assert.equal(decode(b), { classId: 60, bodySize: 2 ** 40, properties: all });
});

test('no properties: flags 0, body size 0', () => {
  assert.is(encode(0, {}).toString('hex'), '003c' + '0000' + '0000000000000000' + '0000');
});

test('undefined flag bits (bit 1, or the continuation bit 0) are syntax-error', () => {
  for (const flags of ['0001', '0002', '8001']) {
    const e = errorOf(() => decode(Buffer.from('003c00000000000000000000' + flags + '0161', 'hex')));
    assert.is(e.replyCode, 502, flags);
  }
});

test('a content class other than basic is frame-error (§4.2.6.1)', () => {
  const e = errorOf(() => decode(Buffer.from('003200000000000000000000' + '0000', 'hex')));
  assert.is(e.replyCode, 501);
  assert.is(e.classId, 50);
});

test('a property running past the payload is frame-error; trailing bytes too', () => {
  const b = encode(1, { contentType: 'text/plain', messageId: 'abc' });
  for (let n = 0; n < b.length; n++) assert.is(errorOf(() => decode(b.subarray(0, n))).replyCode, 501, `cut at ${n}`);
  assert.is(errorOf(() => decode(Buffer.concat([b, Buffer.from([1])]))).replyCode, 501);
});

test.run();
