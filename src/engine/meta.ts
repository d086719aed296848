/**
 * Writing and reading the message meta (layout in ops.ts, "message meta").
 * The I/O thread writes it once per publish into a reused Writer; deliveries
 * decode it lazily (see Message in src/broker.ts).
 */
import { Cursor } from '../amqp/codec/cursor.js';
import { readContentHeader, writeContentHeader, type BasicProperties } from '../amqp/codec/properties.js';
import type { Writer } from '../amqp/codec/writer.js';
import {
  META_EXCHANGE_LEN_OFFSET, META_EXPIRES_OFFSET, META_FIXED_SIZE, META_FLAGS_OFFSET, META_FLAG_PERSISTENT, META_LENGTH_OFFSET,
  META_PUBLISHED_OFFSET, META_READY_OFFSET, readU16, readU32, readU64, writeU16, writeU32, writeU64,
} from './ops.js';

const EMPTY_PROPS: BasicProperties = {};

/** Appends a meta to `w` (at w.pos); returns its length. Allocates nothing unless w grows. */
export function writeMeta(w: Writer, publishedAt: number, expiresAt: number, readyAt: number, persistent: boolean,
  exchange: string, routingKey: string, props: BasicProperties | undefined): number {
  const start = w.pos;
  w.ensure(META_FIXED_SIZE + 4 + 3 * (exchange.length + routingKey.length));
  const b = w.buf;
  writeU64(b, start + META_PUBLISHED_OFFSET, publishedAt);
  writeU64(b, start + META_EXPIRES_OFFSET, expiresAt);
  writeU64(b, start + META_READY_OFFSET, readyAt);
  b[start + META_FLAGS_OFFSET] = persistent ? META_FLAG_PERSISTENT : 0;
  b[start + META_FLAGS_OFFSET + 1] = 0;
  let p = start + META_FIXED_SIZE;
  const exLen = exchange.length === 0 ? 0 : b.write(exchange, p, 'utf8');
  if (exLen > 255) throw new RangeError('exchange name longer than 255 bytes');
  writeU16(b, start + META_EXCHANGE_LEN_OFFSET, exLen);
  p += exLen;
  const keyLen = routingKey.length === 0 ? 0 : b.write(routingKey, p + 2, 'utf8');
  if (keyLen > 255) throw new RangeError('routing key longer than 255 bytes');
  writeU16(b, p, keyLen);
  w.pos = p + 2 + keyLen;
  writeContentHeader(w, 0, props ?? EMPTY_PROPS);
  const len = w.pos - start;
  writeU32(w.buf, start + META_LENGTH_OFFSET, len);
  return len;
}

export function metaLength(b: Uint8Array, at: number): number {
  return readU32(b, at + META_LENGTH_OFFSET);
}
export function metaPersistent(b: Uint8Array, at: number): boolean {
  return (b[at + META_FLAGS_OFFSET]! & META_FLAG_PERSISTENT) !== 0;
}
export function metaPublishedAt(b: Uint8Array, at: number): number {
  return readU64(b, at + META_PUBLISHED_OFFSET);
}
export function metaExpiresAt(b: Uint8Array, at: number): number {
  return readU64(b, at + META_EXPIRES_OFFSET);
}
export function metaReadyAt(b: Uint8Array, at: number): number {
  return readU64(b, at + META_READY_OFFSET);
}

/** Exchange, routing key and the offset of the content header. Allocates the strings. */
export function metaRoute(b: Uint8Array, at: number): { exchange: string; routingKey: string; headerAt: number } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const exLen = readU16(b, at + META_EXCHANGE_LEN_OFFSET);
  let p = at + META_FIXED_SIZE;
  const exchange = exLen === 0 ? '' : buf.toString('utf8', p, p + exLen);
  p += exLen;
  const keyLen = readU16(b, p);
  const routingKey = keyLen === 0 ? '' : buf.toString('utf8', p + 2, p + 2 + keyLen);
  return { exchange, routingKey, headerAt: p + 2 + keyLen };
}

const cursor = new Cursor();
/** The AMQP properties in a meta. Allocates them. */
export function metaProperties(b: Uint8Array, at: number): BasicProperties {
  const { headerAt } = metaRoute(b, at);
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  cursor.reset(buf, headerAt, at + metaLength(b, at), 0);
  return readContentHeader(cursor).properties;
}

/**
 * Offsets into a meta for code that copies its parts as bytes (the AMQP
 * server writes basic.deliver and the content header straight from them).
 * No allocation. The exchange name is `exchangeLength` UTF-8 bytes at
 * `at + META_FIXED_SIZE`; the routing key is a u16 length at `metaKeyAt`
 * then its bytes; the content header (body size 0) runs from `metaHeaderAt`
 * to `at + metaLength`.
 */
export function metaExchangeAt(at: number): number {
  return at + META_FIXED_SIZE;
}
export function metaExchangeLength(b: Uint8Array, at: number): number {
  return readU16(b, at + META_EXCHANGE_LEN_OFFSET);
}
export function metaKeyAt(b: Uint8Array, at: number): number {
  return at + META_FIXED_SIZE + readU16(b, at + META_EXCHANGE_LEN_OFFSET);
}
export function metaKeyLength(b: Uint8Array, at: number): number {
  return readU16(b, metaKeyAt(b, at));
}
export function metaHeaderAt(b: Uint8Array, at: number): number {
  const k = metaKeyAt(b, at);
  return k + 2 + readU16(b, k);
}
