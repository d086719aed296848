import {
  FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_MIN_SIZE, FRAME_OVERHEAD,
} from './constants.js';
import { writeMethod } from './methods.js';
import type { Method } from './methods.js';
import { writeContentHeader } from './properties.js';
import type { BasicProperties } from './properties.js';
import { Writer } from './writer.js';

/**
 * Frame encoding (§4.2.3): type (octet) | channel (short) | size (long) |
 * payload | frame-end 0xCE. Each writer appends one or more whole frames at
 * `w.pos`; the payload is written in place and its size patched afterwards,
 * so no intermediate buffer is made.
 */

function begin(w: Writer, type: number, channel: number): number {
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) throw new RangeError(`channel must be 0..65535, got ${channel}`);
  w.ensure(FRAME_HEADER_SIZE);
  const start = w.pos;
  w.buf[start] = type;
  w.buf.writeUInt16BE(channel, start + 1);
  w.pos = start + FRAME_HEADER_SIZE;
  return start;
}

function end(w: Writer, start: number, frameMax: number): void {
  const size = w.pos - start - FRAME_HEADER_SIZE;
  if (frameMax !== 0 && size + FRAME_OVERHEAD > frameMax) {
    w.pos = start;
    throw new RangeError(`frame of ${size + FRAME_OVERHEAD} bytes exceeds frame-max ${frameMax}`);
  }
  w.buf.writeUInt32BE(size, start + 3);
  w.u8(FRAME_END);
}

/**
 * A method frame. `frameMax` (0 = no limit) guards against a method whose
 * arguments (tables, mostly) do not fit: §4.2.3 "A peer MUST NOT send frames
 * larger than the agreed-upon size." Throws RangeError then, writing nothing.
 */
export function writeMethodFrame(w: Writer, channel: number, m: Method, frameMax = 0): void {
  const start = begin(w, FRAME_METHOD, channel);
  writeMethod(w, m);
  end(w, start, frameMax);
}

/** A content header frame for class basic. */
export function writeHeaderFrame(w: Writer, channel: number, bodySize: number, properties: BasicProperties, frameMax = 0): void {
  const start = begin(w, FRAME_HEADER, channel);
  writeContentHeader(w, bodySize, properties);
  end(w, start, frameMax);
}

/**
 * The content body as body frames of at most `frameMax - 8` payload bytes
 * each (§4.2.6.2: "The content body can be split into as many frames as
 * needed. The maximum size of the frame payload is agreed upon by both peers
 * during connection negotiation."). An empty body makes no frame ("Zero
 * indicates that there are no content body frames"). frameMax 0 = no limit.
 */
export function writeBodyFrames(w: Writer, channel: number, body: Uint8Array, frameMax: number): void {
  if (frameMax !== 0 && frameMax < FRAME_OVERHEAD + 1) throw new RangeError(`frame-max ${frameMax} leaves no room for a body`);
  const max = frameMax === 0 ? 0xffffffff : frameMax - FRAME_OVERHEAD;
  for (let off = 0; off < body.length; off += max) {
    const n = Math.min(max, body.length - off);
    w.ensure(FRAME_OVERHEAD + n);
    const start = begin(w, FRAME_BODY, channel);
    w.buf.writeUInt32BE(n, start + 3);
    w.buf.set(body.subarray(off, off + n), w.pos);
    w.pos += n;
    w.buf[w.pos++] = FRAME_END;
  }
}

/** §4.2.7 heartbeat: `%d8 %d0 %d0 frame-end` - channel 0, empty payload. */
export function writeHeartbeatFrame(w: Writer): void {
  w.ensure(FRAME_OVERHEAD);
  const p = w.pos;
  w.buf[p] = FRAME_HEARTBEAT;
  w.buf.writeUInt16BE(0, p + 1);
  w.buf.writeUInt32BE(0, p + 3);
  w.buf[p + 7] = FRAME_END;
  w.pos = p + FRAME_OVERHEAD;
}

/** A content-carrying method, its header and its body frames (publish, deliver, get-ok, return). */
export function writeContent(w: Writer, channel: number, m: Method, properties: BasicProperties, body: Uint8Array, frameMax: number): void {
  writeMethodFrame(w, channel, m, frameMax);
  writeHeaderFrame(w, channel, body.length, properties, frameMax);
  writeBodyFrames(w, channel, body, frameMax);
}

const scratch = new Writer(FRAME_MIN_SIZE);

/** One method frame as a new Buffer. Allocates; for setup paths and tests. */
export function encodeMethodFrame(channel: number, m: Method): Buffer {
  scratch.reset();
  writeMethodFrame(scratch, channel, m);
  return scratch.take();
}

/** Method, header and body frames as one new Buffer. Allocates; for setup paths and tests. */
export function encodeContent(channel: number, m: Method, properties: BasicProperties, body: Uint8Array, frameMax: number): Buffer {
  scratch.reset();
  writeContent(scratch, channel, m, properties, body, frameMax);
  return scratch.take();
}
