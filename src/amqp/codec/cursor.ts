import { AmqpError } from '../errors.js';
import { ReplyCode } from './constants.js';

/**
 * A read position over one frame payload, `buf[pos, end)`. Every read checks
 * that it stays inside `end` first: a length read off the wire is compared
 * with what is left of the payload before anything is sliced or allocated
 * (§4.10.1: "All externally-provided data can be verified against maximum
 * allowed lengths whenever any data is read").
 *
 * The decoders share one module-level cursor (decoding never re-enters), so a
 * frame costs no cursor allocation. `classId`/`methodId`/`channel` say what
 * is being decoded, so that an error names it.
 */
export class Cursor {
  buf: Buffer;
  pos: number;
  end: number;
  classId: number;
  methodId: number;
  channel: number;

  constructor() {
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    this.end = 0;
    this.classId = 0;
    this.methodId = 0;
    this.channel = 0;
  }

  reset(buf: Buffer, start: number, end: number, channel: number): void {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.classId = 0;
    this.methodId = 0;
    this.channel = channel;
  }

  /** frame-error 501: "The sender sent a malformed frame that the recipient could not decode." */
  malformed(what: string): AmqpError {
    return new AmqpError(ReplyCode.FRAME_ERROR, what, this.classId, this.methodId, this.channel);
  }

  /** syntax-error 502: "The sender sent a frame that contained illegal values for one or more fields." */
  illegal(what: string): AmqpError {
    return new AmqpError(ReplyCode.SYNTAX_ERROR, what, this.classId, this.methodId, this.channel);
  }

  need(n: number): void {
    if (n > this.end - this.pos) throw this.malformed(`payload truncated: ${n} more bytes needed at offset ${this.pos}, ${this.end - this.pos} left`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /**
   * An unsigned 64-bit integer as a JS number. Values above 2^53 - 1 cannot be
   * represented exactly; we refuse them (syntax-error) rather than round a
   * delivery tag or a body size.
   */
  u64(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1fffff) throw this.illegal(`64-bit value ${(BigInt(hi) << 32n) | BigInt(lo)} exceeds 2^53 - 1`);
    return hi * 0x100000000 + lo;
  }

  shortstr(): string {
    const n = this.u8();
    this.need(n);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** A long string as an owned copy (the payload may live in a socket chunk). Allocates. */
  longstr(): Buffer {
    const n = this.u32();
    this.need(n);
    const b = Buffer.allocUnsafe(n);
    this.buf.copy(b, 0, this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

/** The cursor all decoders use. */
export const cursor = new Cursor();
