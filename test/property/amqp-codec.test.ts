/** Round-trip properties of the codec: every method, the content header, field tables. Seeded; prints the seed on failure. */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cursor } from '../../src/amqp/codec/cursor.js';
import { encodeTable, fieldNumber, readTable } from '../../src/amqp/codec/field-table.js';
import type { FieldTable } from '../../src/amqp/codec/field-table.js';
import { METHODS, readMethod, writeMethod } from '../../src/amqp/codec/methods.js';
import type { Method, MethodName } from '../../src/amqp/codec/methods.js';
import { readContentHeader, writeContentHeader } from '../../src/amqp/codec/properties.js';
import { Writer } from '../../src/amqp/codec/writer.js';
import { AmqpError } from '../../src/amqp/errors.js';
import { basicProperties, fieldTable, methodArbitrary } from '../helpers/amqp-arbitraries.js';

const SEED = Number(process.env.RINGMQ_SEED ?? 20261128);
const w = new Writer();

function roundTripMethod(m: Method): { decoded: Method; bytes: Buffer; again: Buffer } {
  w.reset();
  writeMethod(w, m);
  const bytes = w.take();
  const c = new Cursor();
  c.reset(bytes, 0, bytes.length, 1);
  const decoded = readMethod(c);
  writeMethod(w, decoded);
  return { decoded, bytes, again: w.take() };
}

test('every method encodes then decodes back to the same value, and re-encodes to the same bytes', () => {
  for (const name of Object.keys(METHODS) as MethodName[]) {
    fc.assert(
      fc.property(methodArbitrary(name), (m) => {
        const { decoded, bytes, again } = roundTripMethod(m);
        assert.equal(decoded, m, name);
        assert.ok(bytes.equals(again), name);
      }),
      { seed: SEED, numRuns: 100 },
    );
  }
});

test('the content header with any subset of the 14 properties round-trips', () => {
  fc.assert(
    fc.property(basicProperties, fc.maxSafeNat(), (p, bodySize) => {
      w.reset();
      writeContentHeader(w, bodySize, p);
      const bytes = w.take();
      const c = new Cursor();
      c.reset(bytes, 0, bytes.length, 1);
      assert.equal(readContentHeader(c), { classId: 60, bodySize, properties: p });
    }),
    { seed: SEED, numRuns: 400 },
  );
});

function decodeTable(bytes: Buffer): FieldTable {
  const c = new Cursor();
  c.reset(bytes, 0, bytes.length, 1);
  const t = readTable(c);
  assert.is(c.pos, bytes.length);
  return t;
}

test('field tables of every type, nested tables and arrays round-trip exactly', () => {
  fc.assert(
    fc.property(fieldTable, (t) => {
      const bytes = encodeTable(t);
      const back = decodeTable(bytes);
      assert.equal(back, t);
      assert.ok(encodeTable(back).equals(bytes));
    }),
    { seed: SEED, numRuns: 400 },
  );
});

test('plain JS numbers, strings, booleans and bigints keep their value', () => {
  const plain = fc.oneof(fc.integer(), fc.double({ noNaN: true }), fc.maxSafeInteger(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.string(), fc.boolean());
  fc.assert(
    fc.property(fc.dictionary(fc.string({ maxLength: 8 }), plain, { noNullPrototype: true }), (t) => {
      const back = decodeTable(encodeTable(t));
      for (const k of Object.keys(t)) {
        const v = t[k];
        if (typeof v === 'number') assert.ok(Object.is(fieldNumber(back[k]!), v), k);
        else if (typeof v === 'bigint') assert.is(fieldNumber(back[k]!), Number(v));
        else assert.is(back[k], v);
      }
    }),
    { seed: SEED, numRuns: 300 },
  );
});

test('shouldNeverThrowAnythingButAmqpError on garbage inside a correctly sized table', () => {
  // Entries built from a key, a letter (valid ones, 'U', and junk) and 0..12 random octets, so that
  // the decoder meets every letter with too few, enough and too many bytes, and nested length lies.
  const piece = fc.tuple(fc.string({ maxLength: 4 }), fc.constantFrom(...'tbBsuIilLfdDSATFVxU?\0'), fc.uint8Array({ maxLength: 12 }))
    .map(([k, t, v]) => Buffer.concat([Buffer.from([Buffer.byteLength(k)]), Buffer.from(k), Buffer.from(t, 'latin1'), v]));
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => {
      const body = Buffer.concat(pieces);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      const bytes = Buffer.concat([len, body]);
      try {
        const t = decodeTable(bytes);
        assert.ok(encodeTable(t).length > 0);
      } catch (err) {
        if (!(err instanceof AmqpError)) throw err;
        assert.ok(err.replyCode === 501 || err.replyCode === 502, String(err.replyCode));
      }
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

test.run();
