import { ClassId } from './constants.js';
import type { Cursor } from './cursor.js';
import { readTable, writeTable } from './field-table.js';
import type { FieldTable } from './field-table.js';
import type { Writer } from './writer.js';

/**
 * The basic class content header (§4.2.6.1): class-id, weight, body size,
 * property flags, then the present properties in order.
 *
 * "The property flags are an array of bits that indicate the presence or
 * absence of each property value in sequence. The bits are ordered from most
 * high to low - bit 15 indicates the first property." Basic has 14
 * properties, so they use bits 15..2; bit 1 is unused and bit 0 ("If the last
 * bit (0) is set, this indicates that a further property flags field
 * follows") is never needed. We refuse either bit set (syntax-error): no
 * client sets them, and accepting a continuation would mean reading flag words
 * that describe properties that do not exist.
 */
export interface BasicProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: FieldTable;
  /** 1 = transient, 2 = persistent. */
  deliveryMode?: number;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  /** Per-message TTL in milliseconds, as a decimal string (RabbitMQ). */
  expiration?: string;
  messageId?: string;
  /** Seconds since the epoch (64-bit POSIX time_t, §4.2.5.4). */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
  /** Reserved in 0-9-1 ("cluster-id"), still carried. */
  clusterId?: string;
}

export const FLAG_CONTENT_TYPE = 1 << 15;
export const FLAG_CONTENT_ENCODING = 1 << 14;
export const FLAG_HEADERS = 1 << 13;
export const FLAG_DELIVERY_MODE = 1 << 12;
export const FLAG_PRIORITY = 1 << 11;
export const FLAG_CORRELATION_ID = 1 << 10;
export const FLAG_REPLY_TO = 1 << 9;
export const FLAG_EXPIRATION = 1 << 8;
export const FLAG_MESSAGE_ID = 1 << 7;
export const FLAG_TIMESTAMP = 1 << 6;
export const FLAG_TYPE = 1 << 5;
export const FLAG_USER_ID = 1 << 4;
export const FLAG_APP_ID = 1 << 3;
export const FLAG_CLUSTER_ID = 1 << 2;
/** Bits 1 and 0: unused, and the continuation flag. */
export const FLAGS_UNDEFINED = 0b11;

/** A decoded content header. */
export interface ContentHeader {
  classId: number;
  bodySize: number;
  properties: BasicProperties;
}

/** Writes a content header payload for class basic. */
export function writeContentHeader(w: Writer, bodySize: number, p: BasicProperties): void {
  w.ensure(14);
  const start = w.pos;
  w.buf.writeUInt16BE(ClassId.BASIC, start);
  w.buf.writeUInt16BE(0, start + 2); // "The weight field is unused and must be zero."
  w.pos = start + 4;
  w.u64(bodySize);
  const flagsAt = w.pos;
  w.pos += 2;
  let flags = 0;
  if (p.contentType !== undefined) { flags |= FLAG_CONTENT_TYPE; w.shortstr(p.contentType); }
  if (p.contentEncoding !== undefined) { flags |= FLAG_CONTENT_ENCODING; w.shortstr(p.contentEncoding); }
  if (p.headers !== undefined) { flags |= FLAG_HEADERS; writeTable(w, p.headers); }
  if (p.deliveryMode !== undefined) { flags |= FLAG_DELIVERY_MODE; w.u8(octet(p.deliveryMode, 'deliveryMode')); }
  if (p.priority !== undefined) { flags |= FLAG_PRIORITY; w.u8(octet(p.priority, 'priority')); }
  if (p.correlationId !== undefined) { flags |= FLAG_CORRELATION_ID; w.shortstr(p.correlationId); }
  if (p.replyTo !== undefined) { flags |= FLAG_REPLY_TO; w.shortstr(p.replyTo); }
  if (p.expiration !== undefined) { flags |= FLAG_EXPIRATION; w.shortstr(p.expiration); }
  if (p.messageId !== undefined) { flags |= FLAG_MESSAGE_ID; w.shortstr(p.messageId); }
  if (p.timestamp !== undefined) { flags |= FLAG_TIMESTAMP; w.u64(p.timestamp); }
  if (p.type !== undefined) { flags |= FLAG_TYPE; w.shortstr(p.type); }
  if (p.userId !== undefined) { flags |= FLAG_USER_ID; w.shortstr(p.userId); }
  if (p.appId !== undefined) { flags |= FLAG_APP_ID; w.shortstr(p.appId); }
  if (p.clusterId !== undefined) { flags |= FLAG_CLUSTER_ID; w.shortstr(p.clusterId); }
  w.buf.writeUInt16BE(flags, flagsAt);
}

function octet(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`property ${name} must be an octet, got ${v}`);
  return v;
}

/**
 * Reads a content header payload at the cursor (which spans exactly the
 * payload). Only the present properties are set. Allocates the result.
 */
export function readContentHeader(c: Cursor): ContentHeader {
  const classId = c.u16();
  c.classId = classId;
  // §4.2.6.1: "The class-id MUST match the method frame class id. The peer MUST
  // respond to an invalid class-id by raising a connection exception with reply
  // code 501 (frame error)." Basic is the only content class of 0-9-1.
  if (classId !== ClassId.BASIC) throw c.malformed(`content header for class ${classId}; only basic (60) carries content`);
  c.u16(); // weight: unused; not checked (no client sends anything but 0)
  const bodySize = c.u64();
  const flags = c.u16();
  if ((flags & FLAGS_UNDEFINED) !== 0) throw c.illegal(`content header property flags 0x${flags.toString(16)} set undefined bits 1..0`);
  const p: BasicProperties = {};
  if (flags & FLAG_CONTENT_TYPE) p.contentType = c.shortstr();
  if (flags & FLAG_CONTENT_ENCODING) p.contentEncoding = c.shortstr();
  if (flags & FLAG_HEADERS) p.headers = readTable(c);
  if (flags & FLAG_DELIVERY_MODE) p.deliveryMode = c.u8();
  if (flags & FLAG_PRIORITY) p.priority = c.u8();
  if (flags & FLAG_CORRELATION_ID) p.correlationId = c.shortstr();
  if (flags & FLAG_REPLY_TO) p.replyTo = c.shortstr();
  if (flags & FLAG_EXPIRATION) p.expiration = c.shortstr();
  if (flags & FLAG_MESSAGE_ID) p.messageId = c.shortstr();
  if (flags & FLAG_TIMESTAMP) p.timestamp = c.u64();
  if (flags & FLAG_TYPE) p.type = c.shortstr();
  if (flags & FLAG_USER_ID) p.userId = c.shortstr();
  if (flags & FLAG_APP_ID) p.appId = c.shortstr();
  if (flags & FLAG_CLUSTER_ID) p.clusterId = c.shortstr();
  if (c.pos !== c.end) throw c.malformed(`${c.end - c.pos} bytes after the last content property`);
  return { classId, bodySize, properties: p };
}
