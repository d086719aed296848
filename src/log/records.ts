/**
 * The record types the engine writes, their body layouts (docs/log-format.md,
 * "Record bodies") and typed encode/decode helpers. The log itself treats a
 * body as opaque bytes except for the fields its index needs (queue id,
 * message id, delivery count), read at the offsets below.
 *
 * Bodies are little-endian; strings are UTF-8 with a u16 byte length; byte
 * blobs (properties, arguments) carry a u32 length. Encoders allocate (they
 * are for topology and tests); the hot path (enqueue, settle, count) writes
 * straight into the log's buffer via SegmentedLog.appendEnqueue & co.
 */
import { LogError } from './errors.js';
import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './format.js';

export const RecordType = {
  MessageEnqueued: 1,
  MessageSettled: 2,
  DeliveryCount: 3,
  QueueDeclared: 16,
  QueueDeleted: 17,
  ExchangeDeclared: 18,
  ExchangeDeleted: 19,
  Bound: 20,
  Unbound: 21,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

/** Why a message left its queue. */
export const SettleReason = { Ack: 0, DeadLettered: 1, Expired: 2, Dropped: 3 } as const;
export type SettleReasonValue = (typeof SettleReason)[keyof typeof SettleReason];

export const ExchangeKind = { Direct: 0, Fanout: 1, Topic: 2, Headers: 3 } as const;
export type ExchangeKindValue = (typeof ExchangeKind)[keyof typeof ExchangeKind];

// ---- message records: common prefix (queue id, message id) ----------------
export const QUEUE_ID_OFFSET = 0;
export const QUEUE_ID_SIZE = 4;
export const MESSAGE_ID_OFFSET = QUEUE_ID_OFFSET + QUEUE_ID_SIZE;
export const MESSAGE_ID_SIZE = 8;
// MessageEnqueued
export const PROPERTIES_LENGTH_OFFSET = MESSAGE_ID_OFFSET + MESSAGE_ID_SIZE;
export const PROPERTIES_LENGTH_SIZE = 4;
export const PROPERTIES_OFFSET = PROPERTIES_LENGTH_OFFSET + PROPERTIES_LENGTH_SIZE; // 16; message body follows the properties
export const ENQUEUED_FIXED_SIZE = PROPERTIES_OFFSET;
// MessageSettled
export const REASON_OFFSET = MESSAGE_ID_OFFSET + MESSAGE_ID_SIZE;
export const REASON_SIZE = 1;
export const SETTLED_SIZE = REASON_OFFSET + REASON_SIZE; // 13
// DeliveryCount
export const COUNT_OFFSET = MESSAGE_ID_OFFSET + MESSAGE_ID_SIZE;
export const COUNT_SIZE = 4;
export const DELIVERY_COUNT_SIZE = COUNT_OFFSET + COUNT_SIZE; // 16
// QueueDeleted
export const QUEUE_DELETED_SIZE = QUEUE_ID_SIZE;

export interface MessageEnqueued { type: 1; queueId: number; messageId: number; properties: Uint8Array; body: Uint8Array }
export interface MessageSettled { type: 2; queueId: number; messageId: number; reason: SettleReasonValue }
export interface DeliveryCountUpdated { type: 3; queueId: number; messageId: number; count: number }
export interface QueueDeclared { type: 16; queueId: number; name: string; arguments: Uint8Array }
export interface QueueDeleted { type: 17; queueId: number }
export interface ExchangeDeclared { type: 18; name: string; kind: ExchangeKindValue; arguments: Uint8Array }
export interface ExchangeDeleted { type: 19; name: string }
export interface Binding { type: 20 | 21; exchange: string; queueId: number; routingKey: string; arguments: Uint8Array }
export type TopologyRecord = QueueDeclared | QueueDeleted | ExchangeDeclared | ExchangeDeleted | Binding;
export type LogRecord = MessageEnqueued | MessageSettled | DeliveryCountUpdated | TopologyRecord;

export function isTopologyType(type: number): boolean {
  return type >= RecordType.QueueDeclared && type <= RecordType.Unbound;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Sequential writer used by the encoders below (allocates its output once). */
class Out {
  readonly buf: Uint8Array;
  pos = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }
  u8(v: number): this { this.buf[this.pos++] = v; return this; }
  u16(v: number): this { writeU16(this.buf, this.pos, v); this.pos += 2; return this; }
  u32(v: number): this { writeU32(this.buf, this.pos, v); this.pos += 4; return this; }
  u64(v: number): this { writeU64(this.buf, this.pos, v); this.pos += 8; return this; }
  bytes(b: Uint8Array): this { this.buf.set(b, this.pos); this.pos += b.length; return this; }
}

class In {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new LogError('ERR_LOG_BAD_RECORD', `record body too short: need ${this.pos + n} bytes, have ${this.buf.length}`);
  }
  u8(): number { this.need(1); return this.buf[this.pos++]!; }
  u16(): number { this.need(2); const v = readU16(this.buf, this.pos); this.pos += 2; return v; }
  u32(): number { this.need(4); const v = readU32(this.buf, this.pos); this.pos += 4; return v; }
  u64(): number { this.need(8); const v = readU64(this.buf, this.pos); this.pos += 8; return v; }
  // Always a copy, even when buf is a Buffer (whose slice() is a view).
  bytes(n: number): Uint8Array { this.need(n); const v = Uint8Array.prototype.slice.call(this.buf, this.pos, this.pos + n); this.pos += n; return v; }
  str(): string { return fromUtf8.decode(this.bytes(this.u16())); }
  blob(): Uint8Array { return this.bytes(this.u32()); }
}

function checkName(s: Uint8Array, what: string): Uint8Array {
  if (s.length > 0xffff) throw new LogError('ERR_LOG_BAD_RECORD', `${what} longer than 65535 bytes`);
  return s;
}

/** Encodes a record body (everything after the 20-byte record header). Allocates. */
export function encodeRecordBody(r: LogRecord): Uint8Array {
  switch (r.type) {
    case RecordType.MessageEnqueued:
      return new Out(ENQUEUED_FIXED_SIZE + r.properties.length + r.body.length)
        .u32(r.queueId).u64(r.messageId).u32(r.properties.length).bytes(r.properties).bytes(r.body).buf;
    case RecordType.MessageSettled:
      return new Out(SETTLED_SIZE).u32(r.queueId).u64(r.messageId).u8(r.reason).buf;
    case RecordType.DeliveryCount:
      return new Out(DELIVERY_COUNT_SIZE).u32(r.queueId).u64(r.messageId).u32(r.count).buf;
    case RecordType.QueueDeclared: {
      const name = checkName(utf8.encode(r.name), 'queue name');
      return new Out(4 + 2 + name.length + 4 + r.arguments.length).u32(r.queueId).u16(name.length).bytes(name).u32(r.arguments.length).bytes(r.arguments).buf;
    }
    case RecordType.QueueDeleted:
      return new Out(QUEUE_DELETED_SIZE).u32(r.queueId).buf;
    case RecordType.ExchangeDeclared: {
      const name = checkName(utf8.encode(r.name), 'exchange name');
      return new Out(2 + name.length + 1 + 4 + r.arguments.length).u16(name.length).bytes(name).u8(r.kind).u32(r.arguments.length).bytes(r.arguments).buf;
    }
    case RecordType.ExchangeDeleted: {
      const name = checkName(utf8.encode(r.name), 'exchange name');
      return new Out(2 + name.length).u16(name.length).bytes(name).buf;
    }
    case RecordType.Bound:
    case RecordType.Unbound: {
      const ex = checkName(utf8.encode(r.exchange), 'exchange name');
      const key = checkName(utf8.encode(r.routingKey), 'routing key');
      return new Out(2 + ex.length + 4 + 2 + key.length + 4 + r.arguments.length)
        .u16(ex.length).bytes(ex).u32(r.queueId).u16(key.length).bytes(key).u32(r.arguments.length).bytes(r.arguments).buf;
    }
  }
}

/** Decodes a record body of a known type. Allocates (copies blobs). Throws ERR_LOG_BAD_RECORD on a short body or unknown type. */
export function decodeRecordBody(type: number, body: Uint8Array): LogRecord {
  const i = new In(body);
  let r: LogRecord;
  switch (type) {
    case RecordType.MessageEnqueued: {
      const queueId = i.u32();
      const messageId = i.u64();
      const properties = i.blob();
      r = { type, queueId, messageId, properties, body: i.bytes(body.length - i.pos) };
      break;
    }
    case RecordType.MessageSettled: {
      const queueId = i.u32();
      const messageId = i.u64();
      const reason = i.u8();
      if (reason > SettleReason.Dropped) throw new LogError('ERR_LOG_BAD_RECORD', `unknown settle reason ${reason}`);
      r = { type, queueId, messageId, reason: reason as SettleReasonValue };
      break;
    }
    case RecordType.DeliveryCount:
      r = { type, queueId: i.u32(), messageId: i.u64(), count: i.u32() };
      break;
    case RecordType.QueueDeclared:
      r = { type, queueId: i.u32(), name: i.str(), arguments: i.blob() };
      break;
    case RecordType.QueueDeleted:
      r = { type, queueId: i.u32() };
      break;
    case RecordType.ExchangeDeclared: {
      const name = i.str();
      const kind = i.u8();
      if (kind > ExchangeKind.Headers) throw new LogError('ERR_LOG_BAD_RECORD', `unknown exchange kind ${kind}`);
      r = { type, name, kind: kind as ExchangeKindValue, arguments: i.blob() };
      break;
    }
    case RecordType.ExchangeDeleted:
      r = { type, name: i.str() };
      break;
    case RecordType.Bound:
    case RecordType.Unbound:
      r = { type, exchange: i.str(), queueId: i.u32(), routingKey: i.str(), arguments: i.blob() };
      break;
    default:
      throw new LogError('ERR_LOG_BAD_RECORD', `unknown record type ${type}`);
  }
  if (i.pos !== body.length) throw new LogError('ERR_LOG_BAD_RECORD', `record type ${type}: ${body.length - i.pos} trailing bytes`);
  return r;
}
