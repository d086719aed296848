/**
 * CRC-32 (IEEE 802.3 polynomial 0xEDB88320, reflected, init and xorout
 * 0xFFFFFFFF — exactly zlib's crc32) over a byte range, without allocating.
 *
 * Why CRC-32 and not CRC-32C: Node 20 ships `zlib.crc32` in core (no addon),
 * and it ran at 2.3 GB/s on 1 KiB and 5.1 GB/s on 64 KiB ranges on this
 * machine, against 1.0 GB/s for the best pure-JS CRC-32C (slice-by-8). Both
 * detect every burst up to 32 bits and the random-error rate is 2^-32 either
 * way; CRC-32C's edge is hardware instructions we cannot reach without an addon.
 *
 * Why a JS path too: `zlib.crc32` takes a whole view, so each call needs a
 * `subarray()` (an allocation) plus a native call — 230 ns for 64 B, where the
 * slice-by-8 loop below takes 65 ns. Both compute the same function (tested),
 * so ranges shorter than SMALL_RANGE go to JS, longer ones to zlib.
 */
import zlib from 'node:zlib';

/** Crossover measured on this machine: JS wins below ~300 B, zlib above. */
const SMALL_RANGE = 256;

const TABLE = ((): Int32Array => {
  const t = new Int32Array(256 * 8);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + i] = c;
    }
  }
  return t;
})();

/** CRC-32 of buf[start, end) in pure JS (slice-by-8). No allocation. */
export function crc32Js(buf: Uint8Array, start: number, end: number): number {
  const T = TABLE;
  let c = ~0;
  let i = start;
  const end8 = end - ((end - start) & 7);
  for (; i < end8; i += 8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    const hi = buf[i + 4]! | (buf[i + 5]! << 8) | (buf[i + 6]! << 16) | (buf[i + 7]! << 24);
    c =
      T[1792 + (c & 0xff)]! ^ T[1536 + ((c >>> 8) & 0xff)]! ^ T[1280 + ((c >>> 16) & 0xff)]! ^ T[1024 + (c >>> 24)]! ^
      T[768 + (hi & 0xff)]! ^ T[512 + ((hi >>> 8) & 0xff)]! ^ T[256 + ((hi >>> 16) & 0xff)]! ^ T[hi >>> 24]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of buf[start, end). Allocates one view for ranges of SMALL_RANGE bytes or more. */
export function crc32(buf: Uint8Array, start: number, end: number): number {
  if (end - start < SMALL_RANGE) return crc32Js(buf, start, end);
  return zlib.crc32(buf.subarray(start, end)) >>> 0;
}
