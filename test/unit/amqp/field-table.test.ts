import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cursor } from '../../../src/amqp/codec/cursor.js';
import { encodeTable, fieldNumber, MAX_FIELD_DEPTH, readTable, Typed } from '../../../src/amqp/codec/field-table.js';
import type { FieldTable } from '../../../src/amqp/codec/field-table.js';
import { AmqpError } from '../../../src/amqp/errors.js';

function decode(bytes: Buffer): FieldTable {
  const c = new Cursor();
  c.reset(bytes, 0, bytes.length, 1);
  const t = readTable(c);
  assert.is(c.pos, bytes.length, 'table consumed exactly');
  return t;
}

/** A table with one entry named "k": length prefix, key, then the value bytes. */
function entry(valueHex: string): Buffer {
  const v = Buffer.from(valueHex.replace(/ /g, ''), 'hex');
  const body = Buffer.concat([Buffer.from([1, 0x6b]), v]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
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

// Golden bytes for every letter, as RabbitMQ's rabbit_binary_parser reads them.
const golden: [string, string, unknown][] = [
  ['t true', '74 01', true],
  ['t nonzero is true', '74 07', true],
  ['t false', '74 00', false],
  ['b signed 8', '62 ff', new Typed('b', -1)],
  ['B unsigned 8', '42 ff', new Typed('B', 255)],
  ["s is a signed 16 (RabbitMQ), not the spec's short-string", '73 ff fe', new Typed('s', -2)],
  ['u unsigned 16', '75 ff fe', new Typed('u', 65534)],
  ['I signed 32', '49 ff ff ff fd', new Typed('I', -3)],
  ['i unsigned 32', '69 ff ff ff fd', new Typed('i', 4294967293)],
  ['l signed 64 (RabbitMQ), not unsigned', '6c ff ff ff ff ff ff ff fc', new Typed('l', -4n)],
  ['L signed 64', '4c 80 00 00 00 00 00 00 00', new Typed('L', -(2n ** 63n))],
  ['f float', '66 3f c0 00 00', new Typed('f', 1.5)],
  ['d double', '64 40 09 21 fb 54 44 2d 18', new Typed('d', Math.PI)],
  ['D decimal, unsigned digits', '44 02 ff ff ff ff', new Typed('D', { scale: 2, digits: 4294967295 })],
  ['S long string', '53 00 00 00 03 e2 82 ac', '€'],
  ['T timestamp unsigned 64', '54 ff ff ff ff ff ff ff ff', new Typed('T', 2n ** 64n - 1n)],
  ['V void', '56', null],
  ['x byte array', '78 00 00 00 02 00 ff', Buffer.from([0, 255])],
  ['A array', '41 00 00 00 04 74 01 56 56', [true, null, null]],
  ['F nested table', '46 00 00 00 04 01 6a 74 00', { j: false }],
];

for (const [name, hex, value] of golden) {
  test(`decodes ${name}`, () => {
    assert.equal(decode(entry(hex)).k, value);
  });
  test(`encodes ${name} byte for byte (except non-canonical booleans)`, () => {
    if (name === 't nonzero is true') return;
    assert.is(encodeTable({ k: value as never }).toString('hex'), entry(hex).toString('hex'));
  });
}

test('plain JS values pick their letter: int32 -> I, other safe integers -> l, fractions -> d, bigint -> l', () => {
  const t = decode(encodeTable({ a: 5, b: -0x80000001, c: 0.5, d: 2n ** 62n, e: 'x', f: Buffer.from('y'), g: undefined }));
  assert.equal(t, { a: new Typed('I', 5), b: new Typed('l', -0x80000001n), c: new Typed('d', 0.5), d: new Typed('l', 2n ** 62n), e: 'x', f: Buffer.from('y') });
  assert.is(fieldNumber(t.a), 5);
  assert.is(fieldNumber(t.b), -0x80000001);
  assert.is(fieldNumber(new Typed('D', { scale: 2, digits: 150 })), 1.5);
  assert.is(fieldNumber('5'), undefined);
});

test("'U' (the spec's signed 16) is refused as RabbitMQ refuses it: frame-error", () => {
  const e = errorOf(() => decode(entry('55 00 01')));
  assert.is(e.replyCode, 501);
  assert.match(e.message, /unknown field value type 0x55 'U'/);
});

test('a value running past the table end is frame-error, not a RangeError', () => {
  for (const hex of ['49 00 00', '53 00 00 00 09 41', '46 00 00 00 09 00', '41 ff ff ff ff', '44 01']) {
    const e = errorOf(() => decode(entry(hex)));
    assert.is(e.replyCode, 501, hex);
    assert.is(e.closes, 'connection');
  }
});

test('a table length larger than the payload is frame-error before anything is read', () => {
  const bytes = Buffer.from('7fffffff016b56', 'hex');
  assert.is(errorOf(() => decode(bytes)).replyCode, 501);
});

test('nested values stay inside their container: an array cannot read its parent bytes', () => {
  // Array declares 1 byte but holds an 'I' needing 5: must fail even though the outer table has bytes left.
  const bytes = Buffer.from('0000000a' + '016b' + '41' + '00000001' + '49' + '000000', 'hex');
  assert.is(errorOf(() => decode(bytes)).replyCode, 501);
});

test('nesting deeper than MAX_FIELD_DEPTH is refused both ways (syntax-error when read)', () => {
  let v: unknown = true;
  for (let i = 0; i <= MAX_FIELD_DEPTH; i++) v = [v];
  assert.throws(() => encodeTable({ k: v as never }), (e: Error) => e instanceof RangeError);
  // Build the bytes by hand: 65 nested arrays.
  let inner = Buffer.from('7401', 'hex');
  for (let i = 0; i <= MAX_FIELD_DEPTH; i++) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(inner.length);
    inner = Buffer.concat([Buffer.from('41', 'hex'), len, inner]);
  }
  const e = errorOf(() => decode(entry(inner.toString('hex'))));
  assert.is(e.replyCode, 502);
  // One level less decodes.
  let ok: unknown = true;
  for (let i = 0; i < MAX_FIELD_DEPTH; i++) ok = [ok];
  assert.equal(decode(encodeTable({ k: ok as never })).k, ok);
});

test('a key "__proto__" becomes an own property, not the prototype', () => {
  const t = decode(Buffer.from('0000000c' + '095f5f70726f746f5f5f' + '7401', 'hex'));
  assert.is(Object.getPrototypeOf(t), Object.prototype);
  assert.ok(Object.prototype.hasOwnProperty.call(t, '__proto__'));
  assert.is((t as Record<string, unknown>)['__proto__'], true);
});

test('encoding refuses values out of range for their letter', () => {
  assert.throws(() => encodeTable({ k: new Typed('b', 128) }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeTable({ k: new Typed('i', -1) }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeTable({ k: new Typed('l', 2n ** 63n) }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeTable({ k: new Typed('D', { scale: 256, digits: 0 }) }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeTable({ ['x'.repeat(256)]: 1 }), (e: Error) => e instanceof RangeError);
});

test.run();
