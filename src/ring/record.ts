import { FLAG_LEAD_MASK, RECORD_ALIGN, RECORD_HEADER_SIZE } from './layout.js';

/**
 * Record header codec. A record is `u32 length | u16 type | u16 flags`, then
 * `lead` filler bytes (0..7), then the body, then padding to 8 bytes.
 *
 * The lead exists for copy speed: copying into a SharedArrayBuffer runs at
 * ~15 GB/s when source and destination addresses agree modulo 8 and ~2 GB/s
 * when they do not (stack-notes §2). The producer picks `lead` so that the body
 * lands at the same address modulo 8 as the bytes it is copied from.
 *
 * Headers are read and written through a Uint32Array over the data region, so
 * the record offset (a multiple of 8) is turned into an index with `>>> 2`.
 * The second word packs `type | flags << 16`: little-endian, that is u16 type
 * at byte 4 and u16 flags at byte 6, as drawn in docs/ring-layout.md.
 */

/** Total bytes a record occupies in the ring, header and padding included. */
export function recordSize(bodyLength: number, lead: number): number {
  return (RECORD_HEADER_SIZE + lead + bodyLength + (RECORD_ALIGN - 1)) & ~(RECORD_ALIGN - 1);
}

export function writeHeader(words: Uint32Array, recordOffset: number, length: number, type: number, flags: number): void {
  const i = recordOffset >>> 2;
  words[i] = length;
  words[i + 1] = (type | (flags << 16)) >>> 0;
}

export function headerLength(words: Uint32Array, recordOffset: number): number {
  return words[recordOffset >>> 2]!;
}

export function headerType(words: Uint32Array, recordOffset: number): number {
  return words[(recordOffset >>> 2) + 1]! & 0xffff;
}

export function headerFlags(words: Uint32Array, recordOffset: number): number {
  return words[(recordOffset >>> 2) + 1]! >>> 16;
}

export function leadOf(flags: number): number {
  return flags & FLAG_LEAD_MASK;
}
