import {
  ClassId, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_MAX_LIMIT, FRAME_METHOD,
  FRAME_MIN_SIZE, FRAME_OVERHEAD, PROTOCOL_HEADER, PROTOCOL_HEADER_SIZE, ReplyCode,
} from './codec/constants.js';
import { cursor } from './codec/cursor.js';
import { methodInfo, readMethod } from './codec/methods.js';
import type { Method } from './codec/methods.js';
import { readContentHeader } from './codec/properties.js';
import type { ContentHeader } from './codec/properties.js';
import { AmqpError, AmqpProtocolHeaderError } from './errors.js';

/**
 * What the reader calls for each frame, in stream order. A body payload is a
 * view, not a copy: of the socket chunk when the frame lay inside one chunk,
 * else of the one buffer the frame was assembled in. The reader never writes
 * into either again, so the view stays valid; keeping it pins that memory.
 */
export interface FrameHandler {
  method(channel: number, m: Method): void;
  header(channel: number, h: ContentHeader): void;
  /** `remaining`: body bytes of this content still to come after this frame (0 = content complete). */
  body(channel: number, payload: Buffer, remaining: number): void;
  heartbeat(): void;
}

export interface FrameReaderOptions {
  /** The frame-max in force (whole frame, header and frame-end included). Default frame-min-size, 4096. */
  frameMax?: number;
  /** Expect the 8-octet protocol header first (a server's reader). Default true. */
  protocolHeader?: boolean;
}

const S_PROTOCOL = 0; // collecting the protocol header into `head`
const S_HEADER = 1; // collecting a 7-octet frame header into `head`
const S_PAYLOAD = 2; // collecting payload + frame-end into `frame`
const S_FAILED = 3;

/**
 * Content state per channel: IDLE, EXPECT_HEADER, or the body bytes still due
 * (> 0). Entries are overwritten, never deleted, so a channel costs one map
 * entry for its life and a message adds none.
 */
const IDLE = 0;
const EXPECT_HEADER = -1;

/**
 * A state machine over socket chunks: the protocol header, then frames.
 *
 * - The 7-octet frame header is read in place, or through an 8-byte scratch
 *   when it straddles chunks; the declared size is checked against frame-max
 *   before anything is allocated for it (§4.2.3, "A peer that receives an
 *   oversized frame MUST signal a connection exception with reply code 501").
 * - A frame wholly inside a chunk is decoded in place. A frame that spans
 *   chunks is copied once into a buffer of exactly its size (at most
 *   frame-max), and decoded when complete.
 * - The frame-end octet is checked before the payload is decoded.
 * - Content sequencing is checked per channel (method with content, then one
 *   header, then body frames adding up to the declared body size).
 *
 * Errors are thrown as AmqpError with the reply code to close with; after one
 * the reader is failed and every later push rethrows it. Nothing else is
 * thrown for any input (a handler's own exceptions pass through and also fail
 * the reader).
 */
export class FrameReader {
  private readonly handler: FrameHandler;
  private frameMax: number;
  private state: number;
  /** Scratch for a straddling protocol header or frame header. */
  private readonly head: Buffer;
  private headLen: number;
  private frameType: number;
  private frameChannel: number;
  private frameSize: number;
  /** The frame being assembled across chunks (payload + frame-end), or null. */
  private frame: Buffer | null;
  private frameLen: number;
  private error: AmqpError | null;
  /** channel -> IDLE, EXPECT_HEADER or body bytes remaining. */
  private readonly content: Map<number, number>;

  constructor(handler: FrameHandler, options: FrameReaderOptions = {}) {
    this.handler = handler;
    this.frameMax = checkFrameMax(options.frameMax ?? FRAME_MIN_SIZE);
    this.state = options.protocolHeader === false ? S_HEADER : S_PROTOCOL;
    this.head = Buffer.alloc(PROTOCOL_HEADER_SIZE);
    this.headLen = 0;
    this.frameType = 0;
    this.frameChannel = 0;
    this.frameSize = 0;
    this.frame = null;
    this.frameLen = 0;
    this.error = null;
    this.content = new Map();
  }

  /** Sets the frame-max in force, after connection.tune-ok. 4096 <= frameMax <= 2^32 - 1. */
  setFrameMax(frameMax: number): void {
    this.frameMax = checkFrameMax(frameMax);
  }

  get failed(): AmqpError | null {
    return this.error;
  }

  /** Bytes received but not yet handed out (a partial frame). */
  get buffered(): number {
    return this.state === S_PAYLOAD ? FRAME_HEADER_SIZE + this.frameLen : this.headLen;
  }

  /** Feeds one chunk. Throws AmqpError on a protocol error. */
  push(chunk: Buffer): void {
    if (this.error !== null) throw this.error;
    try {
      this.consume(chunk);
    } catch (err) {
      this.state = S_FAILED;
      this.frame = null;
      this.error = err instanceof AmqpError ? err : new AmqpError(ReplyCode.INTERNAL_ERROR, `frame handler failed: ${String(err)}`);
      throw err;
    }
  }

  /**
   * The peer closed the stream. A partial frame left over means the stream was
   * truncated: frame-error. (A content left incomplete is not an error here:
   * the connection is gone either way.)
   */
  end(): void {
    if (this.error !== null) throw this.error;
    const n = this.buffered;
    if (n === 0) return;
    const what = this.state === S_PROTOCOL ? 'the protocol header' : 'a frame';
    this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `stream ended inside ${what} after ${n} bytes`));
  }

  private fail(err: AmqpError): never {
    this.state = S_FAILED;
    this.frame = null;
    this.error = err;
    throw err;
  }

  private consume(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.state) {
        case S_PROTOCOL: {
          // §4.2.2: "If the server does not recognise the first 5 octets of data on
          // the socket, or does not support the specific protocol version that the
          // client requests, it MUST write a valid protocol header to the socket".
          // Checked octet by octet, so "HTTP/1.1 ..." fails at its first byte.
          while (pos < len && this.headLen < PROTOCOL_HEADER_SIZE) {
            const b = chunk[pos++]!;
            this.head[this.headLen++] = b;
            if (b !== PROTOCOL_HEADER[this.headLen - 1]) {
              this.fail(new AmqpProtocolHeaderError(Buffer.from(this.head.subarray(0, this.headLen))));
            }
          }
          if (this.headLen === PROTOCOL_HEADER_SIZE) {
            this.headLen = 0;
            this.state = S_HEADER;
          }
          break;
        }
        case S_HEADER: {
          if (this.headLen === 0 && len - pos >= FRAME_HEADER_SIZE) {
            // The common case: the whole header, and often the whole frame, is here.
            this.beginFrame(chunk[pos]!, chunk.readUInt16BE(pos + 1), chunk.readUInt32BE(pos + 3));
            pos += FRAME_HEADER_SIZE;
            const need = this.frameSize + 1;
            if (len - pos >= need) {
              this.finishFrame(chunk, pos);
              pos += need;
            } else {
              this.startAssembly(chunk, pos);
              pos = len;
            }
            break;
          }
          // The header straddles chunks: gather it in the scratch.
          const take = Math.min(FRAME_HEADER_SIZE - this.headLen, len - pos);
          chunk.copy(this.head, this.headLen, pos, pos + take);
          this.headLen += take;
          pos += take;
          if (this.headLen < FRAME_HEADER_SIZE) break;
          this.headLen = 0;
          this.beginFrame(this.head[0]!, this.head.readUInt16BE(1), this.head.readUInt32BE(3));
          const need = this.frameSize + 1;
          if (len - pos >= need) {
            this.finishFrame(chunk, pos);
            pos += need;
          } else {
            this.startAssembly(chunk, pos);
            pos = len;
          }
          break;
        }
        case S_PAYLOAD: {
          const frame = this.frame!;
          const take = Math.min(frame.length - this.frameLen, len - pos);
          chunk.copy(frame, this.frameLen, pos, pos + take);
          this.frameLen += take;
          pos += take;
          if (this.frameLen === frame.length) {
            this.frame = null;
            this.frameLen = 0;
            this.state = S_HEADER;
            this.finishFrame(frame, 0);
          }
          break;
        }
        default:
          throw this.error!;
      }
    }
  }

  /** Validates a frame header before any byte of its payload is kept. */
  private beginFrame(type: number, channel: number, size: number): void {
    this.frameType = type;
    this.frameChannel = channel;
    this.frameSize = size;
    switch (type) {
      case FRAME_METHOD:
        break;
      case FRAME_HEADER:
      case FRAME_BODY:
        // §4.2.6.1: "The channel number in content frames MUST NOT be zero. A peer that
        // receives a zero channel number in a content frame MUST signal a connection
        // exception with reply code 504 (channel error)."
        if (channel === 0) this.fail(new AmqpError(ReplyCode.CHANNEL_ERROR, `content ${type === FRAME_HEADER ? 'header' : 'body'} frame on channel 0`));
        break;
      case FRAME_HEARTBEAT:
        // §4.2.7: "Heartbeat frames MUST have a channel number of zero. A peer that
        // receives an invalid heartbeat frame MUST raise a connection exception with
        // reply code 501 (frame error)." The grammar has no payload: `%d8 %d0 %d0 frame-end`.
        if (channel !== 0) this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `heartbeat frame on channel ${channel}`, 0, 0, channel));
        if (size !== 0) this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `heartbeat frame with a ${size}-byte payload`));
        break;
      default:
        // §4.2.3: "If a peer receives a frame with a type that is not one of these
        // defined types, it MUST treat this as a fatal protocol error and close the
        // connection without sending any further data on it".
        this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `unknown frame type ${type}`, 0, 0, channel));
    }
    // §4.2.3: "A peer MUST NOT send frames larger than the agreed-upon size. A peer
    // that receives an oversized frame MUST signal a connection exception with reply
    // code 501 (frame error)." frame-max counts the header and the frame-end.
    if (size > this.frameMax - FRAME_OVERHEAD) {
      this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `frame of ${size + FRAME_OVERHEAD} bytes exceeds frame-max ${this.frameMax}`, 0, 0, channel));
    }
  }

  /** The frame continues in later chunks: one buffer of its exact size (checked against frame-max), one copy. */
  private startAssembly(chunk: Buffer, pos: number): void {
    const frame = Buffer.allocUnsafe(this.frameSize + 1);
    const have = chunk.length - pos;
    chunk.copy(frame, 0, pos, chunk.length);
    this.frame = frame;
    this.frameLen = have;
    this.state = S_PAYLOAD;
  }

  /** `buf[at, at + size]` holds the payload and the frame-end. Check, decode, hand out. */
  private finishFrame(buf: Buffer, at: number): void {
    const size = this.frameSize;
    const channel = this.frameChannel;
    // §4.2.3: "When a peer reads a frame it MUST check that the frame-end is valid
    // before attempting to decode the frame."
    if (buf[at + size] !== FRAME_END) {
      this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `frame-end octet is 0x${buf[at + size]!.toString(16).padStart(2, '0')}, not 0xce`, 0, 0, channel));
    }
    switch (this.frameType) {
      case FRAME_METHOD:
        this.onMethodFrame(buf, at, size, channel);
        return;
      case FRAME_HEADER:
        this.onHeaderFrame(buf, at, size, channel);
        return;
      case FRAME_BODY:
        this.onBodyFrame(buf, at, size, channel);
        return;
      case FRAME_HEARTBEAT:
        this.handler.heartbeat();
        return;
    }
  }

  private onMethodFrame(buf: Buffer, at: number, size: number, channel: number): void {
    if (size < 4) this.fail(new AmqpError(ReplyCode.FRAME_ERROR, `method frame of ${size} bytes has no class and method id`, 0, 0, channel));
    const classId = buf.readUInt16BE(at);
    const methodId = buf.readUInt16BE(at + 2);
    // §4.2.3: "The channel number MUST be zero for all heartbeat frames, and for
    // method, header and body frames that refer to the Connection class. A peer
    // that receives a non-zero channel number for one of these frames MUST signal a
    // connection exception with reply code 503 (command invalid)." Conversely the
    // grammar says of a method frame's channel: "Non-zero" for every other class.
    if ((classId === ClassId.CONNECTION) !== (channel === 0)) {
      this.fail(new AmqpError(ReplyCode.COMMAND_INVALID,
        classId === ClassId.CONNECTION ? `connection method on channel ${channel}` : `class ${classId} method on channel 0`, classId, methodId, channel));
    }
    // §4.2.6: "A peer that receives an incomplete or badly-formatted content MUST
    // raise a connection exception with reply code 505 (unexpected frame). This
    // includes missing content headers, ... missing content body frames".
    if ((this.content.get(channel) ?? IDLE) !== IDLE) {
      this.fail(new AmqpError(ReplyCode.UNEXPECTED_FRAME, `method ${classId}.${methodId} on channel ${channel} while its content is incomplete`, classId, methodId, channel));
    }
    cursor.reset(buf, at, at + size, channel);
    const m = readMethod(cursor);
    if (methodInfo(m.id)!.content) this.content.set(channel, EXPECT_HEADER);
    this.handler.method(channel, m);
  }

  private onHeaderFrame(buf: Buffer, at: number, size: number, channel: number): void {
    if (this.content.get(channel) !== EXPECT_HEADER) {
      this.fail(new AmqpError(ReplyCode.UNEXPECTED_FRAME, `content header on channel ${channel} without a content method before it`, 0, 0, channel));
    }
    cursor.reset(buf, at, at + size, channel);
    const h = readContentHeader(cursor);
    // "The body size ... Zero indicates that there are no content body frames."
    this.content.set(channel, h.bodySize === 0 ? IDLE : h.bodySize);
    this.handler.header(channel, h);
  }

  private onBodyFrame(buf: Buffer, at: number, size: number, channel: number): void {
    const remaining = this.content.get(channel) ?? IDLE;
    if (remaining === IDLE || remaining === EXPECT_HEADER) {
      this.fail(new AmqpError(ReplyCode.UNEXPECTED_FRAME, `content body on channel ${channel} without a content header before it`, 0, 0, channel));
    }
    if (size > remaining) {
      this.fail(new AmqpError(ReplyCode.UNEXPECTED_FRAME, `content body frame of ${size} bytes on channel ${channel} exceeds the ${remaining} bytes the header left`, 0, 0, channel));
    }
    const left = remaining - size;
    this.content.set(channel, left);
    this.handler.body(channel, buf.subarray(at, at + size), left);
  }
}

function checkFrameMax(n: number): number {
  if (!Number.isInteger(n) || n < FRAME_MIN_SIZE || n > FRAME_MAX_LIMIT) {
    throw new RangeError(`frame-max must be an integer in ${FRAME_MIN_SIZE}..${FRAME_MAX_LIMIT}, got ${n}`);
  }
  return n;
}
