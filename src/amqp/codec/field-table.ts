import type { Cursor } from './cursor.js';
import { Writer } from './writer.js';

/**
 * Field tables (§4.2.5.5) and field arrays, with the value type letters that
 * RabbitMQ and amqplib use, not the ones in the 0-9-1 grammar (§4.2.1). The
 * differences, from RabbitMQ's errata and rabbit_binary_parser:
 *
 *   letter  0-9-1 grammar        RabbitMQ / amqplib / here
 *   's'     short-string         signed 16-bit integer
 *   'U'     signed 16-bit        not accepted (RabbitMQ rejects it too)
 *   'l'     unsigned 64-bit      signed 64-bit
 *   'L'     signed 64-bit        signed 64-bit (RabbitMQ decodes it like 'l')
 *   'x'     -                    byte array (long length + octets)
 *   'D'     scale + signed long  scale octet + unsigned 32-bit digits
 *
 * Decoded values (what `decodeTable` returns):
 *   t -> boolean, S -> string (UTF-8), V -> null, x -> Buffer (a copy),
 *   A -> FieldValue[], F -> FieldTable (a plain object),
 *   b B s u I i f d -> Typed(letter, number), l L T -> Typed(letter, bigint),
 *   D -> Typed('D', { scale, digits }).
 * Numbers keep their letter so that a decoded table re-encodes to the same
 * bytes; `fieldNumber()` reads any of them as a number.
 *
 * Encoded values (what `writeTable` accepts): all of the above, plus plain JS
 * values: number -> 'I' when an int32, 'l' when another safe integer, else
 * 'd'; bigint -> 'l'; Uint8Array -> 'x'; undefined entries are skipped.
 */

export type TypedLetter = 'b' | 'B' | 's' | 'u' | 'I' | 'i' | 'f' | 'd' | 'l' | 'L' | 'T' | 'D';
export interface Decimal {
  /** Number of decimal places (0..255). */
  scale: number;
  /** Unsigned 32-bit digits; the value is digits / 10^scale. */
  digits: number;
}

/** A field value with an explicit type letter. */
export class Typed<L extends TypedLetter = TypedLetter> {
  readonly type: L;
  readonly value: L extends 'l' | 'L' | 'T' ? bigint : L extends 'D' ? Decimal : number;
  constructor(type: L, value: L extends 'l' | 'L' | 'T' ? bigint : L extends 'D' ? Decimal : number) {
    this.type = type;
    this.value = value;
  }
}

export type FieldValue = boolean | number | bigint | string | null | undefined | Uint8Array | Typed | FieldValue[] | FieldTable;
export interface FieldTable {
  [key: string]: FieldValue;
}

/** Nesting deeper than this is refused both ways: a 128 KiB frame could otherwise nest 26 000 arrays and overflow the stack. */
export const MAX_FIELD_DEPTH = 64;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Any numeric field value as a JS number (64-bit values may round); undefined for non-numbers. */
export function fieldNumber(v: FieldValue): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Typed) {
    const x = v.value;
    if (typeof x === 'number') return x;
    if (typeof x === 'bigint') return Number(x);
    return x.digits / 10 ** x.scale;
  }
  return undefined;
}

// ---------------------------------------------------------------- encoding

/** Writes a field table: long-uint byte length, then name/value pairs. */
export function writeTable(w: Writer, table: FieldTable | undefined, depth = 0): void {
  if (depth > MAX_FIELD_DEPTH) throw new RangeError(`field table nested deeper than ${MAX_FIELD_DEPTH}`);
  w.ensure(4);
  const start = w.pos;
  w.pos += 4;
  if (table !== undefined) {
    for (const key of Object.keys(table)) {
      const v = table[key];
      if (v === undefined) continue;
      w.shortstr(key);
      writeValue(w, v, depth);
    }
  }
  w.buf.writeUInt32BE(w.pos - start - 4, start);
}

function writeArray(w: Writer, arr: FieldValue[], depth: number): void {
  if (depth > MAX_FIELD_DEPTH) throw new RangeError(`field array nested deeper than ${MAX_FIELD_DEPTH}`);
  w.ensure(4);
  const start = w.pos;
  w.pos += 4;
  for (const v of arr) writeValue(w, v === undefined ? null : v, depth);
  w.buf.writeUInt32BE(w.pos - start - 4, start);
}

function letter(w: Writer, c: string, size: number): void {
  w.ensure(1 + size);
  w.buf[w.pos++] = c.charCodeAt(0);
}

export function writeValue(w: Writer, v: FieldValue, depth = 0): void {
  switch (typeof v) {
    case 'string':
      letter(w, 'S', 0);
      w.longstr(v);
      return;
    case 'boolean':
      letter(w, 't', 1);
      w.buf[w.pos++] = v ? 1 : 0;
      return;
    case 'number':
      // -0 goes to 'd' to keep its sign.
      if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff && !Object.is(v, -0)) {
        letter(w, 'I', 4);
        w.pos = w.buf.writeInt32BE(v, w.pos);
      } else if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        letter(w, 'l', 8);
        w.pos = w.buf.writeBigInt64BE(BigInt(v), w.pos);
      } else {
        letter(w, 'd', 8);
        w.pos = w.buf.writeDoubleBE(v, w.pos);
      }
      return;
    case 'bigint':
      writeTyped(w, new Typed('l', v));
      return;
    case 'undefined':
      letter(w, 'V', 0);
      return;
    case 'object':
      if (v === null) {
        letter(w, 'V', 0);
      } else if (v instanceof Typed) {
        writeTyped(w, v);
      } else if (v instanceof Uint8Array) {
        letter(w, 'x', 0);
        w.longstr(v);
      } else if (Array.isArray(v)) {
        letter(w, 'A', 0);
        writeArray(w, v, depth + 1);
      } else {
        letter(w, 'F', 0);
        writeTable(w, v, depth + 1);
      }
      return;
    default:
      throw new TypeError(`cannot encode a ${typeof v} in a field table`);
  }
}

function checkInt(v: number, min: number, max: number, t: string): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`'${t}' field value out of range: ${v}`);
  return v;
}

function writeTyped(w: Writer, t: Typed): void {
  const v = t.value;
  switch (t.type) {
    case 'b': letter(w, 'b', 1); w.pos = w.buf.writeInt8(checkInt(v as number, -0x80, 0x7f, 'b'), w.pos); return;
    case 'B': letter(w, 'B', 1); w.pos = w.buf.writeUInt8(checkInt(v as number, 0, 0xff, 'B'), w.pos); return;
    case 's': letter(w, 's', 2); w.pos = w.buf.writeInt16BE(checkInt(v as number, -0x8000, 0x7fff, 's'), w.pos); return;
    case 'u': letter(w, 'u', 2); w.pos = w.buf.writeUInt16BE(checkInt(v as number, 0, 0xffff, 'u'), w.pos); return;
    case 'I': letter(w, 'I', 4); w.pos = w.buf.writeInt32BE(checkInt(v as number, -0x80000000, 0x7fffffff, 'I'), w.pos); return;
    case 'i': letter(w, 'i', 4); w.pos = w.buf.writeUInt32BE(checkInt(v as number, 0, 0xffffffff, 'i'), w.pos); return;
    case 'f': letter(w, 'f', 4); w.pos = w.buf.writeFloatBE(v as number, w.pos); return;
    case 'd': letter(w, 'd', 8); w.pos = w.buf.writeDoubleBE(v as number, w.pos); return;
    case 'l':
    case 'L': {
      const b = v as bigint;
      if (typeof b !== 'bigint' || b < INT64_MIN || b > INT64_MAX) throw new RangeError(`'${t.type}' field value out of range: ${String(b)}`);
      letter(w, t.type, 8);
      w.pos = w.buf.writeBigInt64BE(b, w.pos);
      return;
    }
    case 'T': {
      const b = v as bigint;
      if (typeof b !== 'bigint' || b < 0n || b > UINT64_MAX) throw new RangeError(`'T' field value out of range: ${String(b)}`);
      letter(w, 'T', 8);
      w.pos = w.buf.writeBigUInt64BE(b, w.pos);
      return;
    }
    case 'D': {
      const d = v as Decimal;
      letter(w, 'D', 5);
      w.buf[w.pos++] = checkInt(d.scale, 0, 255, 'D scale');
      w.pos = w.buf.writeUInt32BE(checkInt(d.digits, 0, 0xffffffff, 'D digits'), w.pos);
      return;
    }
    default:
      throw new TypeError(`unknown field type letter ${JSON.stringify((t as Typed).type)}`);
  }
}

// ---------------------------------------------------------------- decoding

/** Reads a field table at the cursor (long-uint length, then pairs). Allocates the decoded values. */
export function readTable(c: Cursor, depth = 0): FieldTable {
  const n = c.u32();
  c.need(n);
  const end = c.pos + n;
  const table: FieldTable = {};
  const outerEnd = c.end;
  c.end = end;
  while (c.pos < end) {
    const key = c.shortstr();
    const v = readValue(c, depth);
    // A key "__proto__" must become an own property, not the prototype.
    if (key === '__proto__') Object.defineProperty(table, key, { value: v, enumerable: true, writable: true, configurable: true });
    else table[key] = v;
  }
  c.end = outerEnd;
  return table;
}

function readArray(c: Cursor, depth: number): FieldValue[] {
  const n = c.u32();
  c.need(n);
  const end = c.pos + n;
  const outerEnd = c.end;
  c.end = end;
  const arr: FieldValue[] = [];
  while (c.pos < end) arr.push(readValue(c, depth));
  c.end = outerEnd;
  return arr;
}

function readValue(c: Cursor, depth: number): FieldValue {
  const t = c.u8();
  const buf = c.buf;
  switch (t) {
    case 0x53: { // 'S' long string
      const n = c.u32();
      c.need(n);
      const s = buf.toString('utf8', c.pos, c.pos + n);
      c.pos += n;
      return s;
    }
    case 0x74: // 't' boolean: "OCTET ; 0 = FALSE, else TRUE"
      return c.u8() !== 0;
    case 0x49: c.need(4); c.pos += 4; return new Typed('I', buf.readInt32BE(c.pos - 4));
    case 0x69: c.need(4); c.pos += 4; return new Typed('i', buf.readUInt32BE(c.pos - 4));
    case 0x62: c.need(1); c.pos += 1; return new Typed('b', buf.readInt8(c.pos - 1));
    case 0x42: c.need(1); c.pos += 1; return new Typed('B', buf[c.pos - 1]!);
    case 0x73: c.need(2); c.pos += 2; return new Typed('s', buf.readInt16BE(c.pos - 2));
    case 0x75: c.need(2); c.pos += 2; return new Typed('u', buf.readUInt16BE(c.pos - 2));
    case 0x66: c.need(4); c.pos += 4; return new Typed('f', buf.readFloatBE(c.pos - 4));
    case 0x64: c.need(8); c.pos += 8; return new Typed('d', buf.readDoubleBE(c.pos - 8));
    case 0x6c: c.need(8); c.pos += 8; return new Typed('l', buf.readBigInt64BE(c.pos - 8));
    case 0x4c: c.need(8); c.pos += 8; return new Typed('L', buf.readBigInt64BE(c.pos - 8));
    case 0x54: c.need(8); c.pos += 8; return new Typed('T', buf.readBigUInt64BE(c.pos - 8));
    case 0x44: { // 'D' decimal: scale octet, then (RabbitMQ, amqplib) an unsigned long
      c.need(5);
      const scale = buf[c.pos]!;
      const digits = buf.readUInt32BE(c.pos + 1);
      c.pos += 5;
      return new Typed('D', { scale, digits });
    }
    case 0x56: // 'V' void
      return null;
    case 0x78: // 'x' byte array (RabbitMQ)
      return c.longstr();
    case 0x46: // 'F'
      if (depth >= MAX_FIELD_DEPTH) throw c.illegal(`field table nested deeper than ${MAX_FIELD_DEPTH}`);
      return readTable(c, depth + 1);
    case 0x41: // 'A'
      if (depth >= MAX_FIELD_DEPTH) throw c.illegal(`field array nested deeper than ${MAX_FIELD_DEPTH}`);
      return readArray(c, depth + 1);
    default:
      throw c.malformed(`unknown field value type 0x${t.toString(16).padStart(2, '0')}${t >= 0x20 && t < 0x7f ? ` '${String.fromCharCode(t)}'` : ''}`);
  }
}

/** Encodes a table into a fresh Buffer (length prefix included). Allocates; for tests and setup paths. */
export function encodeTable(table: FieldTable): Buffer {
  const w = new Writer(256);
  writeTable(w, table);
  return w.take();
}
