/**
 * An append-only, growable output buffer for the encoders. Encoders call
 * `ensure(n)` before writing n bytes at `pos`, then advance `pos`. Capacity
 * grows by doubling in 4 KiB pages, so a writer reused across frames stops
 * allocating once it has seen the largest frame (style.md §3: reuse scratch,
 * grow rarely).
 *
 * `view()` returns the written bytes without copying (valid until the next
 * write after `reset()`); `take()` copies them out and resets (allocates).
 */
export class Writer {
  buf: Buffer;
  pos: number;

  constructor(initialCapacity = 4096) {
    this.buf = Buffer.allocUnsafe(initialCapacity);
    this.pos = 0;
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    cap = (cap + 4095) & ~4095;
    const next = Buffer.allocUnsafe(cap);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written since the last reset, not copied. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written since the last reset; resets the writer. Allocates. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    this.pos = 0;
    return out;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  /** An unsigned 64-bit integer given as a safe non-negative integer (delivery tags, body sizes, timestamps). */
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`not a non-negative safe integer: ${v}`);
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x100000000), this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** §4.2.5.3 short string: octet length, then at most 255 octets of UTF-8. */
  shortstr(s: string): void {
    // UTF-8 never takes fewer bytes than UTF-16 code units, so a longer string cannot fit.
    if (s.length > 255) throw new RangeError(`short string of ${Buffer.byteLength(s)} bytes exceeds 255: ${JSON.stringify(s.slice(0, 40))}`);
    const max = s.length * 3;
    this.ensure(1 + max);
    const n = this.buf.write(s, this.pos + 1, 'utf8');
    // ensure() reserved 3 bytes per UTF-16 unit, the most UTF-8 needs, so n is the whole string.
    if (n > 255) {
      throw new RangeError(`short string of ${n} bytes exceeds 255: ${JSON.stringify(s.slice(0, 40))}`);
    }
    this.buf[this.pos] = n;
    this.pos += 1 + n;
  }

  /** §4.2.5.3 long string: long-uint length, then the octets. */
  longstr(b: Uint8Array | string): void {
    if (typeof b === 'string') {
      const n = Buffer.byteLength(b);
      this.ensure(4 + n);
      this.buf.writeUInt32BE(n, this.pos);
      this.buf.write(b, this.pos + 4, 'utf8');
      this.pos += 4 + n;
      return;
    }
    this.ensure(4 + b.length);
    this.buf.writeUInt32BE(b.length, this.pos);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}
