/** fast-check arbitraries for AMQP field values, tables, method arguments and content properties. */
import fc from 'fast-check';
import { METHODS, method } from '../../src/amqp/codec/methods.js';
import type { Method, MethodName } from '../../src/amqp/codec/methods.js';
import { Typed } from '../../src/amqp/codec/field-table.js';
import type { FieldTable, FieldValue } from '../../src/amqp/codec/field-table.js';
import type { BasicProperties } from '../../src/amqp/codec/properties.js';

/** A short string: at most 255 UTF-8 bytes (60 code points of at most 4 bytes). */
export const shortstr = fc.string({ unit: 'binary', maxLength: 60 });
export const longstr = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
export const u64 = fc.maxSafeNat();

/**
 * Every field value type in its decoded form (so decode(encode(v)) equals v):
 * numbers carry their letter, 'S' is a string, 'x' a Buffer, 'V' null.
 */
export const fieldValue: fc.Arbitrary<FieldValue> = fc.letrec<{ value: FieldValue; table: FieldTable; array: FieldValue[] }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constant(null),
    fc.uint8Array({ maxLength: 32 }).map((a): FieldValue => Buffer.from(a)),
    fc.integer({ min: -0x80, max: 0x7f }).map((v) => new Typed('b', v)),
    fc.integer({ min: 0, max: 0xff }).map((v) => new Typed('B', v)),
    fc.integer({ min: -0x8000, max: 0x7fff }).map((v) => new Typed('s', v)),
    fc.integer({ min: 0, max: 0xffff }).map((v) => new Typed('u', v)),
    fc.integer({ min: -0x80000000, max: 0x7fffffff }).map((v) => new Typed('I', v)),
    fc.integer({ min: 0, max: 0xffffffff }).map((v) => new Typed('i', v)),
    fc.float().map((v) => new Typed('f', v)),
    fc.double().map((v) => new Typed('d', v)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => new Typed('l', v)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((v) => new Typed('L', v)),
    fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((v) => new Typed('T', v)),
    fc.record({ scale: fc.integer({ min: 0, max: 255 }), digits: fc.integer({ min: 0, max: 0xffffffff }) }, { noNullPrototype: true }).map((v) => new Typed('D', v)),
    tie('table'),
    tie('array'),
  ),
  table: fc.dictionary(fc.string({ unit: 'binary', maxLength: 20 }), tie('value'), { maxKeys: 5, noNullPrototype: true }),
  array: fc.array(tie('value'), { maxLength: 5 }),
})).value;

export const fieldTable: fc.Arbitrary<FieldTable> = fc.dictionary(fc.string({ unit: 'binary', maxLength: 20 }), fieldValue, { maxKeys: 6, noNullPrototype: true });

function argArbitrary(kind: string): fc.Arbitrary<unknown> {
  switch (kind) {
    case 'octet': return fc.integer({ min: 0, max: 0xff });
    case 'short': return fc.integer({ min: 0, max: 0xffff });
    case 'long': return fc.integer({ min: 0, max: 0xffffffff });
    case 'longlong': return u64;
    case 'shortstr': return shortstr;
    case 'longstr': return longstr;
    case 'bit': return fc.boolean();
    case 'table': return fieldTable;
    default: throw new Error(`no arbitrary for ${kind}`);
  }
}

/** Arguments for one method, in decoded form (reserved arguments left out). */
export function methodArbitrary<K extends MethodName>(name: K): fc.Arbitrary<Method> {
  const rec: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [arg, kind] of METHODS[name].fields as readonly (readonly [string, string])[]) {
    if (!arg.startsWith('_')) rec[arg] = argArbitrary(kind);
  }
  return fc.record(rec, { noNullPrototype: true }).map((args) => method(name, args as never) as Method);
}

/** Any method with arguments. */
export const anyMethod: fc.Arbitrary<Method> = fc.oneof(...(Object.keys(METHODS) as MethodName[]).map((n) => methodArbitrary(n)));

/** Content properties: each of the 14 present or absent. */
export const basicProperties: fc.Arbitrary<BasicProperties> = fc.record(
  {
    contentType: shortstr,
    contentEncoding: shortstr,
    headers: fieldTable,
    deliveryMode: fc.integer({ min: 0, max: 255 }),
    priority: fc.integer({ min: 0, max: 255 }),
    correlationId: shortstr,
    replyTo: shortstr,
    expiration: shortstr,
    messageId: shortstr,
    timestamp: u64,
    type: shortstr,
    userId: shortstr,
    appId: shortstr,
    clusterId: shortstr,
  },
  { requiredKeys: [], noNullPrototype: true },
);
