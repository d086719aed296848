/**
 * Verifies one segment image and extracts what the index needs from each
 * record. Shared by the piscina verify task (sealed segments, in parallel),
 * by recovery of the newest segment, and by compaction, so that all three
 * apply the same validity rule (docs/log-format.md, "Recovery rule"):
 *
 *   a record is valid iff its header fits in the file, its length is at most
 *   MAX_BODY_SIZE, its body fits in the file, its checksum matches, and its
 *   sequence is greater than the previous record's (or >= the base sequence).
 *
 * The scan stops at the first invalid record; `validEnd` is where it starts.
 */
import { crc32 } from './crc32.js';
import {
  BASE_SEQ_OFFSET, BODY_OFFSET, CRC_OFFSET, CRC_START, FORMAT_VERSION, HEADER_CRC_OFFSET, HEADER_FLAGS_OFFSET,
  LENGTH_OFFSET, MAGIC, MAGIC_OFFSET, MAX_BODY_SIZE, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SEQ_OFFSET, TYPE_OFFSET,
  VERSION_OFFSET, readU16, readU32, readU64,
} from './format.js';
import { COUNT_OFFSET, DELIVERY_COUNT_SIZE, ENQUEUED_FIXED_SIZE, MESSAGE_ID_OFFSET, QUEUE_ID_OFFSET, REASON_OFFSET, RecordType, SETTLED_SIZE } from './records.js';

/** Float64 slots per scanned record in ScanResult.entries. */
export const ENTRY_FIELDS = 6;
export const E_OFFSET = 0; // byte offset of the record in the file
export const E_LENGTH = 1; // total record size (header + body)
export const E_TYPE = 2;
export const E_QUEUE = 3; // queue id; for other types, the index into ScanResult.other
export const E_MESSAGE = 4; // message id (message records)
export const E_EXTRA = 5; // settle reason or delivery count

export type StopReason = 'end' | 'short' | 'length' | 'checksum' | 'sequence' | 'malformed';

export interface ScanResult {
  /** null when the header is valid; else why it is not. */
  headerError: string | null;
  headerFlags: number;
  records: number;
  /** End of the valid prefix (file offset). Equals the file size when stopReason is 'end'. */
  validEnd: number;
  stopReason: StopReason;
  firstSeq: number;
  lastSeq: number;
  /** records × ENTRY_FIELDS numbers, see E_*. */
  entries: Float64Array;
  /** Bodies of records the index does not interpret field by field (topology, unknown types), in order. */
  other: Uint8Array[];
}

/** Why the header of a segment image is invalid, or null. */
export function checkHeader(buf: Uint8Array, size: number, expectedBase: number): string | null {
  if (size < SEGMENT_HEADER_SIZE) return `file shorter than its ${SEGMENT_HEADER_SIZE}-byte header (${size} bytes)`;
  if (readU32(buf, MAGIC_OFFSET) !== MAGIC) return 'bad magic';
  if (readU32(buf, HEADER_CRC_OFFSET) !== crc32(buf, 0, HEADER_CRC_OFFSET)) return 'header checksum mismatch';
  const version = readU16(buf, VERSION_OFFSET);
  if (version !== FORMAT_VERSION) return `format version ${version} (this code reads ${FORMAT_VERSION})`;
  const base = readU64(buf, BASE_SEQ_OFFSET);
  if (base !== expectedBase) return `base sequence ${base} does not match the file name (${expectedBase})`;
  return null;
}

/** Scans buf[0, size) (a whole segment file). Allocates the result. */
export function scanSegment(buf: Uint8Array, size: number, expectedBase: number): ScanResult {
  const headerError = checkHeader(buf, size, expectedBase);
  const result: ScanResult = {
    headerError, headerFlags: headerError ? 0 : readU16(buf, HEADER_FLAGS_OFFSET), records: 0,
    validEnd: 0, stopReason: 'end', firstSeq: -1, lastSeq: -1, entries: new Float64Array(0), other: [],
  };
  if (headerError) return result;
  let entries = new Float64Array(ENTRY_FIELDS * Math.max(64, Math.min(1 << 20, size >>> 9)));
  let n = 0;
  let pos = SEGMENT_HEADER_SIZE;
  let prevSeq = expectedBase - 1;
  let stop: StopReason = 'end';
  while (pos < size) {
    if (size - pos < RECORD_HEADER_SIZE) { stop = 'short'; break; }
    const length = readU32(buf, pos + LENGTH_OFFSET);
    if (length > MAX_BODY_SIZE) { stop = 'length'; break; }
    const end = pos + RECORD_HEADER_SIZE + length;
    if (end > size) { stop = 'short'; break; }
    if (readU32(buf, pos + CRC_OFFSET) !== crc32(buf, pos + CRC_START, end)) { stop = 'checksum'; break; }
    const seq = readU64(buf, pos + SEQ_OFFSET);
    if (seq <= prevSeq) { stop = 'sequence'; break; }
    const type = readU16(buf, pos + TYPE_OFFSET);
    const b = pos + BODY_OFFSET;
    if ((n + 1) * ENTRY_FIELDS > entries.length) {
      const grown = new Float64Array(entries.length * 2);
      grown.set(entries);
      entries = grown;
    }
    const e = n * ENTRY_FIELDS;
    entries[e + E_OFFSET] = pos;
    entries[e + E_LENGTH] = end - pos;
    entries[e + E_TYPE] = type;
    if (type === RecordType.MessageEnqueued || type === RecordType.MessageSettled || type === RecordType.DeliveryCount) {
      const need = type === RecordType.MessageEnqueued ? ENQUEUED_FIXED_SIZE : type === RecordType.MessageSettled ? SETTLED_SIZE : DELIVERY_COUNT_SIZE;
      // A checksummed record too short for its type can only come from a writer bug; it ends the log like any invalid record.
      if (length < need || (type !== RecordType.MessageEnqueued && length !== need)) { stop = 'malformed'; break; }
      entries[e + E_QUEUE] = readU32(buf, b + QUEUE_ID_OFFSET);
      entries[e + E_MESSAGE] = readU64(buf, b + MESSAGE_ID_OFFSET);
      entries[e + E_EXTRA] = type === RecordType.MessageSettled ? buf[b + REASON_OFFSET]! : type === RecordType.DeliveryCount ? readU32(buf, b + COUNT_OFFSET) : 0;
    } else {
      entries[e + E_QUEUE] = result.other.length;
      entries[e + E_MESSAGE] = 0;
      entries[e + E_EXTRA] = 0;
      result.other.push(buf.slice(b, end));
    }
    if (result.firstSeq < 0) result.firstSeq = seq;
    result.lastSeq = seq;
    prevSeq = seq;
    n++;
    pos = end;
  }
  result.records = n;
  result.validEnd = pos;
  result.stopReason = stop;
  // A copy when oversized: a view would drag its whole buffer through structured clone (piscina).
  result.entries = entries.length === n * ENTRY_FIELDS ? entries : entries.slice(0, n * ENTRY_FIELDS);
  return result;
}
