/**
 * A connection's output: frames are appended to one Writer and handed to the
 * socket once per tick (a microtask after the code that wrote them), as one
 * write, or one writev of several chunks under cork/uncork. Large bodies are
 * not copied: they go to the socket as chunks of their own between the bytes
 * around them.
 *
 * The Writer's buffer is referenced by the socket until the write completes,
 * so a flush hands it over and continues in a spare buffer; a buffer comes
 * back to the spares when its write callback runs (callbacks run in write
 * order). Steady state: two buffers alternate, nothing is allocated per
 * message, one write request per batch.
 *
 * Deliveries are written straight from the broker's message envelope (the
 * meta): exchange and routing key bytes and the encoded content header are
 * copied as bytes, with the body size patched in, so a delivery decodes no
 * property and allocates no string.
 */
import type { Socket } from 'node:net';
import type { Message } from '../broker.js';
import { FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_METHOD, FRAME_OVERHEAD, MethodId } from './codec/constants.js';
import { Writer } from './codec/writer.js';
import { microtask } from '../engine/microtask.js';
import { metaExchangeAt, metaExchangeLength, metaHeaderAt, metaKeyAt, metaKeyLength, metaLength } from '../engine/meta.js';
import { copyBytes } from '../ring/ring.js';

/** Bodies at least this long are written as their own chunks instead of copied (one write request costs about as much as a 64 KiB copy). */
const EXTERNAL_MIN = 64 * 1024;
/** A spare buffer bigger than this (after a burst of large frames) is dropped rather than kept. */
const KEEP_MAX = 256 * 1024;
/** Small: an idle connection holds at most two of these; a busy one grows them to its batch size once. */
const INITIAL = 4096;
/** Bytes queued in the socket above which the connection counts as congested. */
export const HIGH_WATER = 1024 * 1024;

export class Output {
  readonly w: Writer;
  private segStart: number;
  private readonly chunks: Buffer[];
  private readonly spares: Buffer[];
  private readonly inFlight: Buffer[];
  private scheduled: boolean;
  private readonly socket: Socket;
  /** Set when the socket is gone: writes are dropped. */
  dead: boolean;
  private wrote: boolean;
  private readonly flushFn: () => void;
  private readonly onWritten: () => void;

  constructor(socket: Socket) {
    this.socket = socket;
    this.w = new Writer(INITIAL);
    this.segStart = 0;
    this.chunks = [];
    this.spares = [];
    this.inFlight = [];
    this.scheduled = false;
    this.dead = false;
    this.wrote = false;
    this.flushFn = () => this.flush();
    this.onWritten = () => {
      const b = this.inFlight.shift();
      if (b !== undefined && b.length <= KEEP_MAX && this.spares.length < 2) this.spares.push(b);
    };
  }

  /** Bytes the socket holds, not yet taken by the kernel. */
  get congested(): boolean {
    return this.socket.writableLength > HIGH_WATER;
  }

  /** Whether anything was written since the last call (heartbeats). */
  wroteSinceCheck(): boolean {
    const r = this.wrote;
    this.wrote = false;
    return r;
  }

  /** Flushes at the end of the current tick (once, however much is written meanwhile). */
  schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      microtask(this.flushFn);
    }
  }

  flush(): void {
    this.scheduled = false;
    const w = this.w;
    if (w.pos > this.segStart) this.chunks.push(w.buf.subarray(this.segStart, w.pos));
    const chunks = this.chunks;
    const n = chunks.length;
    if (n === 0) return;
    if (this.dead || this.socket.destroyed || this.socket.writableEnded) {
      chunks.length = 0;
      w.pos = 0;
      this.segStart = 0;
      return;
    }
    if (n === 1) {
      this.socket.write(chunks[0]!, this.onWritten);
    } else {
      this.socket.cork();
      for (let i = 0; i < n - 1; i++) this.socket.write(chunks[i]!);
      this.socket.write(chunks[n - 1]!, this.onWritten);
      this.socket.uncork();
    }
    chunks.length = 0;
    this.wrote = true;
    this.inFlight.push(w.buf);
    w.buf = this.spares.pop() ?? Buffer.allocUnsafe(INITIAL);
    w.pos = 0;
    this.segStart = 0;
  }

  /** Ends the bytes written so far as a chunk, so that an external chunk can follow. */
  private seal(): void {
    const w = this.w;
    if (w.pos > this.segStart) {
      this.chunks.push(w.buf.subarray(this.segStart, w.pos));
      this.segStart = w.pos;
    }
  }

  private begin(type: number, channel: number): number {
    const w = this.w;
    w.ensure(FRAME_HEADER_SIZE);
    const s = w.pos;
    w.buf[s] = type;
    w.buf.writeUInt16BE(channel, s + 1);
    w.pos = s + FRAME_HEADER_SIZE;
    return s;
  }

  private end(start: number): void {
    const w = this.w;
    w.buf.writeUInt32BE(w.pos - start - FRAME_HEADER_SIZE, start + 3);
    w.ensure(1);
    w.buf[w.pos++] = FRAME_END;
  }

  /** Exchange and routing key of a meta, as two short strings. */
  private route(meta: Buffer): void {
    const w = this.w;
    const exLen = metaExchangeLength(meta, 0);
    const keyAt = metaKeyAt(meta, 0);
    const keyLen = metaKeyLength(meta, 0);
    w.ensure(2 + exLen + keyLen);
    const buf = w.buf;
    buf[w.pos++] = exLen;
    const exAt = metaExchangeAt(0);
    copyBytes(buf, w.pos, meta, exAt, exLen);
    w.pos += exLen;
    buf[w.pos++] = keyLen;
    copyBytes(buf, w.pos, meta, keyAt + 2, keyLen);
    w.pos += keyLen;
  }

  /**
   * basic.deliver + content header + body frames for a broker message.
   * `consumerTag` is the tag as a short string (length octet included).
   */
  deliver(channel: number, consumerTag: Buffer, deliveryTag: number, redelivered: boolean, m: Message, frameMax: number): void {
    const meta = m.meta;
    const w = this.w;
    const s = this.begin(FRAME_METHOD, channel);
    w.ensure(4 + consumerTag.length + 9);
    w.buf.writeUInt32BE(MethodId.BasicDeliver, w.pos);
    w.pos += 4;
    consumerTag.copy(w.buf, w.pos);
    w.pos += consumerTag.length;
    w.u64(deliveryTag);
    w.buf[w.pos++] = redelivered ? 1 : 0;
    this.route(meta);
    this.end(s);
    this.content(channel, meta, m.body, frameMax);
  }

  /** basic.get-ok + content header + body frames. */
  getOk(channel: number, deliveryTag: number, m: Message, messageCount: number, frameMax: number): void {
    const meta = m.meta;
    const w = this.w;
    const s = this.begin(FRAME_METHOD, channel);
    w.ensure(4 + 9);
    w.buf.writeUInt32BE(MethodId.BasicGetOk, w.pos);
    w.pos += 4;
    w.u64(deliveryTag);
    w.buf[w.pos++] = m.redelivered ? 1 : 0;
    this.route(meta);
    w.u32(messageCount);
    this.end(s);
    this.content(channel, meta, m.body, frameMax);
  }

  /** The content header (copied from the meta, body size patched) and the body frames. */
  private content(channel: number, meta: Buffer, body: Buffer, frameMax: number): void {
    const w = this.w;
    const hAt = metaHeaderAt(meta, 0);
    const hEnd = metaLength(meta, 0);
    const s = this.begin(FRAME_HEADER, channel);
    w.ensure(hEnd - hAt);
    copyBytes(w.buf, w.pos, meta, hAt, hEnd - hAt);
    // class-id (2) | weight (2) | body size (8): patch the size the meta left at 0.
    w.buf.writeUInt32BE(Math.floor(body.length / 0x100000000), w.pos + 4);
    w.buf.writeUInt32BE(body.length >>> 0, w.pos + 8);
    w.pos += hEnd - hAt;
    this.end(s);
    this.body(channel, body, frameMax);
  }

  /** Body frames of at most frameMax bytes each; an empty body has none (§4.2.6.2). */
  body(channel: number, body: Uint8Array, frameMax: number): void {
    const max = frameMax - FRAME_OVERHEAD;
    const len = body.length;
    const w = this.w;
    for (let off = 0; off < len; off += max) {
      const n = len - off < max ? len - off : max;
      const s = this.begin(FRAME_BODY, channel);
      w.buf.writeUInt32BE(n, s + 3);
      if (n >= EXTERNAL_MIN) {
        this.seal();
        this.chunks.push(Buffer.from(body.buffer, body.byteOffset + off, n));
      } else {
        w.ensure(n);
        w.buf.set(n === len ? body : body.subarray(off, off + n), w.pos);
        w.pos += n;
      }
      w.ensure(1);
      w.buf[w.pos++] = FRAME_END;
    }
  }
}
