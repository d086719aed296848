/**
 * On-disk format of one shard's log. The specification is docs/log-format.md;
 * keep the two true to each other (the golden fixture test checks the bytes).
 *
 * ```
 * segment file  <base sequence, 20 decimal digits>.seg
 * header (32 B) magic "RMQL" | u16 version | u16 flags | u64 base seq | 12 B zero | u32 crc(0..28)
 * record        u32 crc | u32 length | u16 type | u16 flags | u64 seq | body (length B)
 *               crc = CRC-32 (IEEE, as zlib) of bytes [LENGTH_OFFSET, end of body)
 * ```
 * All integers little-endian. Offsets are derived one from the previous, as in
 * Kafka's DefaultRecordBatch, so that moving a field moves every later one.
 */

// ---- segment header -------------------------------------------------------
export const MAGIC_OFFSET = 0;
export const MAGIC_SIZE = 4;
export const VERSION_OFFSET = MAGIC_OFFSET + MAGIC_SIZE;
export const VERSION_SIZE = 2;
export const HEADER_FLAGS_OFFSET = VERSION_OFFSET + VERSION_SIZE;
export const HEADER_FLAGS_SIZE = 2;
export const BASE_SEQ_OFFSET = HEADER_FLAGS_OFFSET + HEADER_FLAGS_SIZE;
export const BASE_SEQ_SIZE = 8;
export const HEADER_RESERVED_OFFSET = BASE_SEQ_OFFSET + BASE_SEQ_SIZE;
export const HEADER_RESERVED_SIZE = 12;
export const HEADER_CRC_OFFSET = HEADER_RESERVED_OFFSET + HEADER_RESERVED_SIZE;
export const HEADER_CRC_SIZE = 4;
export const SEGMENT_HEADER_SIZE = HEADER_CRC_OFFSET + HEADER_CRC_SIZE; // 32

/** "RMQL" read as a little-endian u32 (bytes 52 4d 51 4c). */
export const MAGIC = 0x4c514d52;
/** Bumped on any incompatible change; readers refuse versions they do not know. */
export const FORMAT_VERSION = 1;
/** Header flag: the file was produced by compaction (its sequences have gaps). Informative only. */
export const HEADER_FLAG_COMPACTED = 0x1;

// ---- record ---------------------------------------------------------------
export const CRC_OFFSET = 0;
export const CRC_SIZE = 4;
export const LENGTH_OFFSET = CRC_OFFSET + CRC_SIZE;
export const LENGTH_SIZE = 4;
export const TYPE_OFFSET = LENGTH_OFFSET + LENGTH_SIZE;
export const TYPE_SIZE = 2;
export const FLAGS_OFFSET = TYPE_OFFSET + TYPE_SIZE;
export const FLAGS_SIZE = 2;
export const SEQ_OFFSET = FLAGS_OFFSET + FLAGS_SIZE;
export const SEQ_SIZE = 8;
export const BODY_OFFSET = SEQ_OFFSET + SEQ_SIZE;
export const RECORD_HEADER_SIZE = BODY_OFFSET; // 20
/** The checksum covers everything after itself: length, type, flags, seq and body. */
export const CRC_START = LENGTH_OFFSET;

/**
 * Largest record body. Offsets inside a segment are u32 and a record never
 * straddles two segments; 256 MiB keeps one record well inside that.
 */
export const MAX_BODY_SIZE = 256 * 1024 * 1024;
/** Segment size bounds (bytes, header included). */
export const MIN_SEGMENT_BYTES = 4096;
export const MAX_SEGMENT_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

// ---- file naming ----------------------------------------------------------
export const SEGMENT_SUFFIX = '.seg';
/** A compaction output before its atomic rename; deleted on recovery. */
export const COMPACT_SUFFIX = '.seg.compact';
export const SEGMENT_NAME_DIGITS = 20;
export const SEGMENT_NAME_RE = /^(\d{20})\.seg$/;

export function segmentFileName(baseSeq: number): string {
  return String(baseSeq).padStart(SEGMENT_NAME_DIGITS, '0') + SEGMENT_SUFFIX;
}

// ---- u64 helpers (sequences and message ids are safe integers < 2^53) -----
const TWO_32 = 0x1_0000_0000;

export function writeU64(buf: Uint8Array, offset: number, value: number): void {
  const lo = value % TWO_32;
  const hi = (value - lo) / TWO_32;
  buf[offset] = lo;
  buf[offset + 1] = lo >>> 8;
  buf[offset + 2] = lo >>> 16;
  buf[offset + 3] = lo >>> 24;
  buf[offset + 4] = hi;
  buf[offset + 5] = hi >>> 8;
  buf[offset + 6] = hi >>> 16;
  buf[offset + 7] = hi >>> 24;
}

export function readU64(buf: Uint8Array, offset: number): number {
  const lo = (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16)) + buf[offset + 3]! * 0x100_0000;
  const hi = (buf[offset + 4]! | (buf[offset + 5]! << 8) | (buf[offset + 6]! << 16)) + buf[offset + 7]! * 0x100_0000;
  return hi * TWO_32 + lo;
}

export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value;
  buf[offset + 1] = value >>> 8;
  buf[offset + 2] = value >>> 16;
  buf[offset + 3] = value >>> 24;
}

export function readU32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16)) + buf[offset + 3]! * 0x100_0000;
}

export function writeU16(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value;
  buf[offset + 1] = value >>> 8;
}

export function readU16(buf: Uint8Array, offset: number): number {
  return buf[offset]! | (buf[offset + 1]! << 8);
}
