/**
 * In-memory message bytes of one shard, without an allocation per message.
 *
 * Payloads (meta + body) are appended to 1 MiB chunks; a payload is named by
 * a u32, `chunk * CHUNK_SPAN + offset / 8` (payloads start 8-aligned), that
 * the queue keeps in its u32 payload column: up to 32,768 chunks (32 GiB of
 * payloads in one shard; freed chunks are reused lowest index first). Each payload starts
 * with its u32 length. A chunk counts its live payloads and returns to the
 * free list when the count drops to zero and it is not the one being filled;
 * a payload larger than a quarter chunk gets a chunk of its own. Messages
 * that stay queued for long pin their chunk (at most 1 MiB each), which the
 * shard's memory budget bounds.
 */
const CHUNK_BYTES = 1 << 20;
/** References per chunk: offsets in 8-byte units (a dedicated chunk, however large, has one payload at 0). */
const CHUNK_SPAN = 1 << 17;
const MAX_CHUNKS = 2 ** 32 / CHUNK_SPAN - 1;
const LEN_SIZE = 4;

export class PayloadStore {
  private chunks: (Uint8Array | null)[] = [];
  private live: number[] = [];
  private free: number[] = [];
  private cur = -1;
  private pos = 0;
  /** Bytes held in chunks (allocated, live or not). */
  heldBytes = 0;

  /** Copies src[start, end) in; returns its reference. */
  put(src: Uint8Array, start: number, end: number): number {
    const len = end - start;
    const need = (LEN_SIZE + len + 7) & ~7;
    if (need > CHUNK_BYTES >>> 2) {
      const c = this.newChunk(need);
      this.write(c, 0, src, start, end);
      this.live[c] = 1;
      return c * CHUNK_SPAN;
    }
    if (this.cur < 0 || this.pos + need > CHUNK_BYTES) {
      const old = this.cur;
      this.cur = this.newChunk(CHUNK_BYTES);
      this.pos = 0;
      if (old >= 0 && this.live[old] === 0) this.release(old);
    }
    const at = this.pos;
    this.write(this.cur, at, src, start, end);
    this.pos += need;
    this.live[this.cur]!++;
    return this.cur * CHUNK_SPAN + (at >>> 3);
  }

  private write(c: number, at: number, src: Uint8Array, start: number, end: number): void {
    const chunk = this.chunks[c]!;
    const len = end - start;
    chunk[at] = len;
    chunk[at + 1] = len >>> 8;
    chunk[at + 2] = len >>> 16;
    chunk[at + 3] = len >>> 24;
    // Small payloads by a loop: `set` from a view of shared memory (the ring) takes a slow path
    // (profiled: 0.6 µs for ~100 B, the shard's top item) and allocates the view.
    if (len <= 512) {
      const to = at + LEN_SIZE - start;
      for (let i = start; i < end; i++) chunk[to + i] = src[i]!;
    } else chunk.set(start === 0 && end === src.length ? src : src.subarray(start, end), at + LEN_SIZE);
  }

  private newChunk(size: number): number {
    let c: number;
    if (size === CHUNK_BYTES && this.free.length > 0) {
      c = this.free.pop()!;
      this.chunks[c] ??= new Uint8Array(CHUNK_BYTES);
    } else {
      c = this.chunks.length;
      for (let i = 0; i < this.chunks.length; i++) if (this.chunks[i] === null && !this.free.includes(i)) { c = i; break; }
      this.chunks[c] = new Uint8Array(size);
    }
    if (c >= MAX_CHUNKS) throw new RangeError(`payload store: more than ${MAX_CHUNKS} chunks (${MAX_CHUNKS} MiB) in one shard`);
    this.live[c] = 0;
    this.heldBytes += size;
    return c;
  }

  /** The chunk holding payload `ref`. */
  chunk(ref: number): Uint8Array {
    return this.chunks[Math.floor(ref / CHUNK_SPAN)]!;
  }
  /** Offset of the payload's first byte in its chunk. */
  offset(ref: number): number {
    return (ref % CHUNK_SPAN) * 8 + LEN_SIZE;
  }
  length(ref: number): number {
    const c = this.chunk(ref);
    const at = (ref % CHUNK_SPAN) * 8;
    return (c[at]! | (c[at + 1]! << 8) | (c[at + 2]! << 16)) + c[at + 3]! * 0x1000000;
  }

  /** The payload is no longer needed. */
  drop(ref: number): void {
    const c = Math.floor(ref / CHUNK_SPAN);
    if (--this.live[c]! === 0 && c !== this.cur) this.release(c);
  }

  private release(c: number): void {
    const chunk = this.chunks[c]!;
    this.heldBytes -= chunk.length;
    if (chunk.length === CHUNK_BYTES && this.free.length < 4) {
      // Keep a few standard chunks for reuse (a burst of publishes reuses them without allocating).
      this.heldBytes += chunk.length;
      this.free.push(c);
      this.free.sort((a, b) => b - a);
    } else {
      this.chunks[c] = null;
    }
  }
}
