/**
 * One direction of the I/O thread <-> shard link, over a ring (src/ring/).
 *
 * Outbox: the producer half, with two additions the engine needs.
 * - It never blocks the calling thread. When the ring is full the record is
 *   copied to a spill list, every later record goes there too (order is
 *   kept), and an async drainer moves them into the ring as the consumer
 *   frees space (`Atomics.waitAsync`). A full ring is backpressure — callers
 *   see `spilled` and the `drained()` promise — never loss. Spilling
 *   allocates; the steady state does not spill.
 * - Records larger than the ring's maxBody are cut into OP_FRAG records and
 *   an OP_FRAG_END carrying the real type; the Inbox joins them. (8 MiB
 *   bodies go this way; a ring record stays bounded.)
 *
 * Inbox: the consumer half; hands every record to a handler in place
 * (bytes, offset, length), joined fragments from its own buffer.
 */
import { RingConsumer, RingProducer } from '../ring/ring.js';
import { FRAG_END_HEADER, OP_FRAG, OP_FRAG_END, readU16, writeU16 } from './ops.js';

export type Handler = (type: number, bytes: Uint8Array, offset: number, length: number) => void;

export class Outbox {
  readonly ring: RingProducer;
  readonly maxBody: number;
  /** Records waiting for ring space, in order (allocated copies). */
  private spillTypes: number[] = [];
  private spillBytes: Uint8Array[] = [];
  private draining: Promise<void> | null = null;
  private closed = false;
  private fragHead = new Uint8Array(FRAG_END_HEADER);
  /** Records that had to wait in the spill list (backpressure events). */
  spilledRecords = 0;

  constructor(sab: SharedArrayBuffer) {
    this.ring = new RingProducer(sab);
    this.maxBody = this.ring.maxBody;
  }

  /** True while records wait for ring space. */
  get spilled(): boolean {
    return this.spillTypes.length > 0;
  }

  /**
   * Writes src[start, end) as one record of `type`. Returns true if it went
   * into the ring, false if it waits in the spill list. Visible to the other
   * side after the next publish(). Allocates only when spilling or fragmenting.
   */
  write(type: number, src: Uint8Array, start: number, end: number): boolean {
    if (this.closed) return false;
    const len = end - start;
    if (len > this.maxBody) return this.writeFragmented(type, src, start, end);
    if (this.spillTypes.length === 0 && this.ring.tryWrite(type, src, start, end)) return true;
    // A copy: callers reuse their buffer at once (and Buffer#slice would be a view, not a copy).
    const copy = new Uint8Array(len);
    copy.set(src.subarray(start, end));
    this.spill(type, copy);
    return false;
  }

  private writeFragmented(type: number, src: Uint8Array, start: number, end: number): boolean {
    const chunk = this.maxBody - FRAG_END_HEADER;
    let ok = true;
    let at = start;
    while (end - at > chunk) {
      ok = this.write(OP_FRAG, src, at, at + chunk) && ok;
      at += chunk;
    }
    // The last fragment carries the real type in front of its bytes.
    const last = new Uint8Array(FRAG_END_HEADER + (end - at));
    writeU16(last, 0, type);
    last.set(src.subarray(at, end), FRAG_END_HEADER);
    return this.write(OP_FRAG_END, last, 0, last.length) && ok;
  }

  private spill(type: number, bytes: Uint8Array): void {
    this.spillTypes.push(type);
    this.spillBytes.push(bytes);
    this.spilledRecords++;
    if (this.draining === null) this.draining = this.drainSpill();
  }

  private async drainSpill(): Promise<void> {
    // Start after the caller has stored this promise in `draining`: run
    // synchronously to the end (the ring had room again by now), the finally
    // below would clear `draining` first and the caller would then set it to
    // a settled promise, and no later spill would ever start a drain again.
    await null;
    // Whatever is in the ring already must become visible, or the consumer
    // never frees the space we wait for.
    this.ring.publish();
    let i = 0;
    try {
      while (i < this.spillTypes.length && !this.closed) {
        const bytes = this.spillBytes[i]!;
        if (this.ring.tryWrite(this.spillTypes[i]!, bytes, 0, bytes.length)) {
          i++;
          continue;
        }
        this.ring.publish();
        await this.ring.waitForSpace(bytes.length, 1000);
      }
      this.ring.publish();
    } finally {
      this.spillTypes.splice(0, i);
      this.spillBytes.splice(0, i);
      this.draining = null;
      if (this.spillTypes.length > 0 && !this.closed) this.draining = this.drainSpill();
    }
  }

  /** Resolves when nothing waits in the spill list. */
  async drained(): Promise<void> {
    while (this.draining) await this.draining;
  }

  /** Makes everything written so far visible to the consumer (one Atomics.store). */
  publish(): void {
    if (this.spillTypes.length === 0) this.ring.publish();
  }

  /** Stops the drainer; records still spilled are dropped (the link is going away). */
  abandon(): void {
    this.closed = true;
  }
}

export class Inbox {
  readonly ring: RingConsumer;
  private frag: Uint8Array = new Uint8Array(0);
  private fragLen = 0;

  constructor(sab: SharedArrayBuffer) {
    this.ring = new RingConsumer(sab);
  }

  /** Takes every available record (up to max), handles each, releases the ring once. Returns the count. */
  drain(handler: Handler, max = Infinity): number {
    const ring = this.ring;
    let n = 0;
    while (n < max && ring.next()) {
      const type = ring.type;
      if (type === OP_FRAG) this.appendFrag(ring.bytes, ring.offset, ring.length);
      else if (type === OP_FRAG_END) {
        this.appendFrag(ring.bytes, ring.offset + FRAG_END_HEADER, ring.length - FRAG_END_HEADER);
        const whole = this.frag;
        const len = this.fragLen;
        this.frag = new Uint8Array(0);
        this.fragLen = 0;
        handler(readU16(ring.bytes, ring.offset), whole, 0, len);
      } else handler(type, ring.bytes, ring.offset, ring.length);
      n++;
    }
    ring.release();
    return n;
  }

  private appendFrag(src: Uint8Array, offset: number, length: number): void {
    if (this.fragLen + length > this.frag.length) {
      const grown = new Uint8Array(Math.max(this.frag.length * 2, this.fragLen + length, 1 << 16));
      grown.set(this.frag.subarray(0, this.fragLen));
      this.frag = grown;
    }
    this.frag.set(src.subarray(offset, offset + length), this.fragLen);
    this.fragLen += length;
  }
}
