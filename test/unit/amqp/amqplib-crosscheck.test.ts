/**
 * Conformance with amqplib's generated codec, both ways: what we encode,
 * amqplib decodes to the same values; what amqplib encodes, we decode to the
 * same values (field-table letters included). Every method amqplib defines
 * (all but the deprecated access class) and the 14 content properties.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME_MIN_SIZE, PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { Cursor } from '../../../src/amqp/codec/cursor.js';
import { Typed } from '../../../src/amqp/codec/field-table.js';
import type { FieldValue } from '../../../src/amqp/codec/field-table.js';
import { encodeMethodFrame, writeHeaderFrame } from '../../../src/amqp/codec/frames.js';
import { allMethods, METHODS, method, methodInfo, readMethod } from '../../../src/amqp/codec/methods.js';
import type { Method, MethodName } from '../../../src/amqp/codec/methods.js';
import { readContentHeader } from '../../../src/amqp/codec/properties.js';
import type { BasicProperties } from '../../../src/amqp/codec/properties.js';
import { Writer } from '../../../src/amqp/codec/writer.js';
import { FrameReader } from '../../../src/amqp/frame-reader.js';
import { basicProperties, methodArbitrary } from '../../helpers/amqp-arbitraries.js';
import { amqplibId, defs } from '../../helpers/amqplib-codec.js';
import { FrameCollector } from '../../helpers/frame-collector.js';

const SEED = 0x5eed;

/** amqplib has no 'L' (RabbitMQ reads it like 'l'); replace it for the amqplib direction. */
function withoutL(v: FieldValue): FieldValue {
  if (v instanceof Typed) return v.type === 'L' ? new Typed('l', v.value as bigint) : v;
  if (Array.isArray(v)) return v.map(withoutL);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, FieldValue> = {};
    for (const k of Object.keys(v)) o[k] = withoutL(v[k]);
    return o;
  }
  return v;
}

const AMQPLIB_TYPE: Record<string, string> = { b: 'int8', B: 'uint8', s: 'int16', u: 'uint16', I: 'int32', i: 'uint32', l: 'int64', f: 'float', d: 'double', T: 'timestamp', D: 'decimal' };

/** Our decoded form -> amqplib's `{'!': type, value}` input form. */
function toAmqplibInput(v: FieldValue): unknown {
  if (v instanceof Typed) {
    if (v.type === 'D') {
      const d = v.value as { scale: number; digits: number };
      return { '!': 'decimal', value: { places: d.scale, digits: d.digits } };
    }
    return { '!': AMQPLIB_TYPE[v.type], value: v.value };
  }
  if (Array.isArray(v)) return v.map(toAmqplibInput);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) o[k] = toAmqplibInput(v[k]);
    return o;
  }
  return v;
}

/** Our decoded form -> what amqplib's decoder returns for the same bytes. */
function toAmqplibDecoded(v: FieldValue): unknown {
  if (v instanceof Typed) {
    switch (v.type) {
      case 'l':
      case 'L':
        return Number(v.value as bigint);
      case 'T':
        return { '!': 'timestamp', value: Number(v.value as bigint) };
      case 'D': {
        const d = v.value as { scale: number; digits: number };
        return { '!': 'decimal', value: { places: d.scale, digits: d.digits } };
      }
      default:
        return v.value;
    }
  }
  if (Array.isArray(v)) return v.map(toAmqplibDecoded);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) o[k] = toAmqplibDecoded(v[k]);
    return o;
  }
  return v;
}

function mapArgs(m: Method, f: (v: FieldValue) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (k !== 'id') out[k] = typeof v === 'object' && v !== null && !(v instanceof Uint8Array) ? f(v as FieldValue) : v;
  return out;
}

/** amqplib's decoded fields without the reserved ones we do not return. */
function publicFields(typeName: string, fields: Record<string, unknown>): Record<string, unknown> {
  const reserved = new Set((METHODS[typeName as MethodName].fields as readonly (readonly [string, string])[]).filter(([n]) => n.startsWith('_')).map(([n]) => n.slice(1)));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (!reserved.has(k)) out[k] = v;
  return out;
}

const amqplibSafeMethod = fc.oneof(...(Object.keys(METHODS) as MethodName[]).map((n) => methodArbitrary(n))).map((m) => {
  const o: Record<string, unknown> = { id: m.id };
  for (const [k, v] of Object.entries(m)) if (k !== 'id') o[k] = typeof v === 'object' && v !== null && !(v instanceof Uint8Array) ? withoutL(v as FieldValue) : v;
  return o as Method;
});

test('amqplib defines the same methods with the same ids and argument order', () => {
  for (const info of allMethods()) {
    assert.is(amqplibId(info.typeName), info.id, info.name);
    const theirs = defs.info(info.id).args.map((a) => a.name);
    const ours = info.names.map((n) => (n.startsWith('_') ? n.slice(1) : n));
    // Reserved names differ (spec "reserved-1"); compare positions of the rest.
    const reservedAt = info.names.map((n, i) => (n.startsWith('_') ? i : -1)).filter((i) => i >= 0);
    assert.equal(ours.filter((_, i) => !reservedAt.includes(i)), theirs.filter((_, i) => !reservedAt.includes(i)), info.name);
  }
});

test('what we encode, amqplib decodes (every method, generated arguments)', () => {
  fc.assert(
    fc.property(amqplibSafeMethod, (m) => {
      const frame = encodeMethodFrame(1, m);
      const payload = frame.subarray(7, frame.length - 1);
      const theirs = defs.decode(payload.readUInt32BE(0), payload.subarray(4));
      const info = methodInfo(m.id)!;
      assert.equal(publicFields(info.typeName, theirs), mapArgs(m, toAmqplibDecoded), info.name);
    }),
    { seed: SEED, numRuns: 1500 },
  );
});

test('what amqplib encodes, we decode (every method, generated arguments), byte for byte the same frame', () => {
  fc.assert(
    fc.property(amqplibSafeMethod, (m) => {
      const info = methodInfo(m.id)!;
      const frame = defs.encodeMethod(m.id, 3, mapArgs(m, toAmqplibInput));
      const c = new Cursor();
      c.reset(frame, 7, frame.length - 1, 3);
      assert.equal(readMethod(c), m, info.name);
      assert.is(encodeMethodFrame(3, m).toString('hex'), frame.toString('hex'), info.name);
    }),
    { seed: SEED + 1, numRuns: 1500 },
  );
});

const amqplibSafeProps = basicProperties.map((p) => (p.headers === undefined ? p : { ...p, headers: withoutL(p.headers) as BasicProperties['headers'] }));

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

test('content properties: ours -> amqplib and amqplib -> ours, same header frame bytes', () => {
  fc.assert(
    fc.property(amqplibSafeProps, fc.maxSafeNat(), (p, size) => {
      const w = new Writer();
      writeHeaderFrame(w, 2, size, p);
      const ours = w.take();
      const amqp = { ...p, headers: p.headers === undefined ? undefined : toAmqplibInput(p.headers) };
      const theirs = defs.encodeProperties(defs.BasicProperties, 2, size, amqp);
      assert.is(ours.toString('hex'), theirs.toString('hex'));
      const decodedByThem = withoutUndefined(defs.decode(defs.BasicProperties, ours.subarray(7 + 12, ours.length - 1)));
      const expected = withoutUndefined({ ...p, headers: p.headers === undefined ? undefined : toAmqplibDecoded(p.headers) });
      assert.equal(decodedByThem, expected);
      const c = new Cursor();
      c.reset(theirs, 7, theirs.length - 1, 2);
      assert.equal(readContentHeader(c), { classId: 60, bodySize: size, properties: p });
    }),
    { seed: SEED + 2, numRuns: 500 },
  );
});

test('a publish sequence written frame by frame by amqplib reads back through the frame reader', () => {
  const pub = { exchange: 'logs', routingKey: 'info', mandatory: true, immediate: false };
  const body = Buffer.from('x'.repeat(5000));
  const frames = [
    PROTOCOL_HEADER,
    defs.encodeMethod(amqplibId('ChannelOpen'), 1, {}),
    defs.encodeMethod(amqplibId('BasicPublish'), 1, pub),
    defs.encodeProperties(defs.BasicProperties, 1, body.length, { contentType: 'text/plain', headers: { 'x-retries': 3 }, timestamp: 1700000000 }),
  ];
  for (let off = 0; off < body.length; off += FRAME_MIN_SIZE - 8) {
    const part = body.subarray(off, off + FRAME_MIN_SIZE - 8);
    const h = Buffer.alloc(7);
    h[0] = 3;
    h.writeUInt16BE(1, 1);
    h.writeUInt32BE(part.length, 3);
    frames.push(h, part, Buffer.from([0xce]));
  }
  const c = new FrameCollector();
  new FrameReader(c).push(Buffer.concat(frames));
  assert.equal(c.frames.slice(0, 3), [
    { t: 'method', channel: 1, m: method('ChannelOpen', {}) },
    { t: 'method', channel: 1, m: method('BasicPublish', pub) },
    { t: 'header', channel: 1, h: { classId: 60, bodySize: 5000, properties: { contentType: 'text/plain', headers: { 'x-retries': new Typed('b', 3) }, timestamp: 1700000000 } } },
  ]);
  assert.is(c.frames.filter((f) => f.t === 'body').map((f) => (f.t === 'body' ? f.hex : '')).join(''), body.toString('hex'));
});

test.run();
