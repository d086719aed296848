import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME_MIN_SIZE, PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { encodeContent, encodeMethodFrame, writeHeartbeatFrame } from '../../../src/amqp/codec/frames.js';
import { method } from '../../../src/amqp/codec/methods.js';
import { Writer } from '../../../src/amqp/codec/writer.js';
import { AmqpError, AmqpProtocolHeaderError } from '../../../src/amqp/errors.js';
import { FrameReader } from '../../../src/amqp/frame-reader.js';
import type { FrameReaderOptions } from '../../../src/amqp/frame-reader.js';
import { FrameCollector, largestAllocation } from '../../helpers/frame-collector.js';

const publish = method('BasicPublish', { exchange: 'amq.topic', routingKey: 'a.b', mandatory: true, immediate: false });

/** A realistic client stream: header, start-ok, tune-ok, open, channel.open, 2 publishes with bodies (one split), a heartbeat, acks. */
function stream(): Buffer {
  const w = new Writer();
  w.bytes(PROTOCOL_HEADER);
  w.bytes(encodeMethodFrame(0, method('ConnectionStartOk', { clientProperties: { product: 'test', capabilities: { publisher_confirms: true } }, mechanism: 'PLAIN', response: Buffer.from('\0guest\0guest'), locale: 'en_US' })));
  w.bytes(encodeMethodFrame(0, method('ConnectionTuneOk', { channelMax: 2047, frameMax: FRAME_MIN_SIZE, heartbeat: 60 })));
  w.bytes(encodeMethodFrame(0, method('ConnectionOpen', { virtualHost: '/' })));
  w.bytes(encodeMethodFrame(1, method('ChannelOpen', {})));
  w.bytes(encodeMethodFrame(1, method('ConfirmSelect', { nowait: false })));
  w.bytes(encodeContent(1, publish, { contentType: 'text/plain', deliveryMode: 2, headers: { n: 1 } }, Buffer.from('hello'), FRAME_MIN_SIZE));
  writeHeartbeatFrame(w);
  w.bytes(encodeContent(2, publish, {}, Buffer.alloc(9000, 0x5a), FRAME_MIN_SIZE));
  w.bytes(encodeContent(1, publish, {}, Buffer.alloc(0), FRAME_MIN_SIZE));
  w.bytes(encodeMethodFrame(1, method('BasicAck', { deliveryTag: 12, multiple: true })));
  return w.take();
}

function readAll(chunks: Buffer[], opts?: FrameReaderOptions): FrameCollector {
  const c = new FrameCollector();
  const r = new FrameReader(c, opts);
  for (const ch of chunks) r.push(ch);
  r.end();
  return c;
}

function errorOf(fn: () => unknown): AmqpError {
  try {
    fn();
  } catch (err) {
    if (err instanceof AmqpError) return err;
    throw new Error(`expected an AmqpError, got ${String(err)}`);
  }
  throw new Error('expected an AmqpError, nothing was thrown');
}

function readError(bytes: Buffer, opts?: FrameReaderOptions): AmqpError {
  return errorOf(() => readAll([bytes], opts));
}

function frame(type: number, channel: number, payload: Buffer, end = 0xce): Buffer {
  const h = Buffer.alloc(7);
  h[0] = type;
  h.writeUInt16BE(channel, 1);
  h.writeUInt32BE(payload.length, 3);
  return Buffer.concat([h, payload, Buffer.from([end])]);
}

const withHeader = (...frames: Buffer[]): Buffer => Buffer.concat([PROTOCOL_HEADER, ...frames]);

test('reads a whole stream in one chunk', () => {
  const c = readAll([stream()]);
  assert.equal(c.frames.map((f) => f.t), ['method', 'method', 'method', 'method', 'method', 'method', 'header', 'body', 'heartbeat', 'method', 'header', 'body', 'body', 'body', 'method', 'header', 'method']);
  const bodies = c.frames.filter((f) => f.t === 'body');
  assert.equal(bodies.map((b) => (b.t === 'body' ? b.remaining : -1)), [0, 9000 - 4088, 9000 - 2 * 4088, 0]);
});

test('shouldYieldTheSameFramesWhenSplitAtEveryPosition', () => {
  const bytes = stream();
  const expected = readAll([bytes]).frames;
  for (let i = 0; i <= bytes.length; i++) {
    assert.equal(readAll([bytes.subarray(0, i), bytes.subarray(i)]).frames, expected, `split at ${i}`);
  }
});

test('shouldYieldTheSameFramesFedOneByteAtATime', () => {
  const bytes = stream();
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  assert.equal(readAll(chunks).frames, readAll([bytes]).frames);
});

test('shouldHoldExactlyThePartialFrameWhenSplitAtEveryPosition (buffered state after the first part)', () => {
  const bytes = stream();
  // Frame boundaries: after the protocol header, then after each frame.
  const bounds = [0, 8];
  for (let p = 8; p < bytes.length;) {
    p += 8 + bytes.readUInt32BE(p + 3);
    bounds.push(p);
  }
  assert.is(bounds[bounds.length - 1], bytes.length);
  for (let i = 0; i <= bytes.length; i++) {
    const c = new FrameCollector();
    const r = new FrameReader(c);
    r.push(bytes.subarray(0, i));
    const last = bounds.filter((b) => b <= i).pop()!;
    assert.is(r.buffered, i - last, `split at ${i}`);
    assert.is(c.frames.length, Math.max(0, bounds.filter((b) => b <= i).length - 2), `frames delivered at ${i}`);
  }
});

test('a frame inside one chunk is not copied: the body is a view of the chunk', () => {
  const bytes = withHeader(encodeContent(1, publish, {}, Buffer.from('abc'), FRAME_MIN_SIZE));
  let view: Buffer | undefined;
  const r = new FrameReader({ method() {}, header() {}, heartbeat() {}, body(_ch, p) { view = p; } });
  r.push(bytes);
  assert.ok(view !== undefined && view.buffer === bytes.buffer);
});

test('bad protocol header: typed error carrying the octets, at the first wrong octet', () => {
  const e = readError(Buffer.from('HTTP/1.1 200 OK\r\n'));
  assert.ok(e instanceof AmqpProtocolHeaderError);
  assert.is((e as AmqpProtocolHeaderError).received.toString(), 'H');
  const v = readError(Buffer.from('414d515001010009', 'hex')); // AMQP 1-1-0-9 (0-9 era header)
  assert.ok(v instanceof AmqpProtocolHeaderError);
  assert.is((v as AmqpProtocolHeaderError).received.toString('hex'), '414d515001');
  assert.is(v.replyCode, 501);
});

test('lying size: larger than frame-max is frame-error and the size is never allocated', () => {
  const lie = Buffer.from('01' + '0001' + '7ffffff0' + '003c0028', 'hex');
  let e: AmqpError | undefined;
  const max = largestAllocation(() => {
    e = errorOf(() => readAll([withHeader(lie)]));
  });
  assert.is(e!.replyCode, 501);
  assert.match(e!.message, /exceeds frame-max 4096/);
  assert.ok(max < 4096, `largest allocation ${max}`);
});

test('frame-max counts header and frame-end: payload frame-max - 8 passes, one more fails', () => {
  const okStream = withHeader(encodeMethodFrame(1, publish), encodeContent(1, publish, {}, Buffer.alloc(FRAME_MIN_SIZE - 8), 0).subarray(encodeMethodFrame(1, publish).length));
  assert.is(readAll([okStream]).frames.length, 3);
  const big = frame(3, 1, Buffer.alloc(FRAME_MIN_SIZE - 7));
  const e = readError(withHeader(encodeMethodFrame(1, publish), big));
  assert.is(e.replyCode, 501);
});

test('a larger frame-max is honoured after setFrameMax (tune-ok)', () => {
  const bytes = withHeader(encodeContent(1, publish, {}, Buffer.alloc(100000, 1), 131072));
  assert.is(readError(bytes).replyCode, 501);
  assert.is(readAll([bytes], { frameMax: 131072 }).frames.length, 3);
  assert.throws(() => new FrameReader(new FrameCollector(), { frameMax: 0 }), (e: Error) => e instanceof RangeError);
});

test('missing frame-end octet is frame-error, before the payload is decoded', () => {
  const good = encodeMethodFrame(1, publish);
  const bad = Buffer.from(good);
  bad[bad.length - 1] = 0x00;
  const e = readError(withHeader(bad));
  assert.is(e.replyCode, 501);
  assert.match(e.message, /frame-end/);
  // A payload that would not decode still reports the frame-end first.
  const e2 = readError(withHeader(frame(1, 1, Buffer.from('ffff', 'hex'), 0x41)));
  assert.match(e2.message, /frame-end/);
});

test('truncated stream: end() inside a frame or the protocol header is frame-error', () => {
  const bytes = withHeader(encodeMethodFrame(1, publish));
  for (const cut of [3, 8 + 3, 8 + 7, bytes.length - 1]) {
    const e = errorOf(() => readAll([bytes.subarray(0, cut)]));
    assert.is(e.replyCode, 501, `cut at ${cut}`);
    assert.match(e.message, /stream ended/);
  }
  readAll([bytes.subarray(0, 0)]);
});

test('unknown frame type is frame-error', () => {
  assert.is(readError(withHeader(frame(4, 0, Buffer.alloc(0)))).replyCode, 501);
  assert.is(readError(withHeader(Buffer.from('GET / HTTP/1.1\r\n'))).replyCode, 501);
});

test('heartbeat on a non-zero channel, or with a payload, is frame-error (§4.2.7)', () => {
  assert.is(readError(withHeader(frame(8, 1, Buffer.alloc(0)))).replyCode, 501);
  assert.is(readError(withHeader(frame(8, 0, Buffer.alloc(1)))).replyCode, 501);
});

test('content frames on channel 0 are channel-error (§4.2.6.1)', () => {
  assert.is(readError(withHeader(frame(2, 0, Buffer.alloc(14)))).replyCode, 504);
  assert.is(readError(withHeader(frame(3, 0, Buffer.alloc(1)))).replyCode, 504);
});

test('connection methods off channel 0, and other methods on channel 0, are command-invalid (§4.2.3)', () => {
  const e = readError(withHeader(encodeMethodFrame(1, method('ConnectionCloseOk', {}))));
  assert.is(e.replyCode, 503);
  assert.is(e.classId, 10);
  assert.is(e.methodId, 51);
  assert.is(readError(withHeader(encodeMethodFrame(0, publish))).replyCode, 503);
});

test('content out of sequence is unexpected-frame (§4.2.6)', () => {
  const m = encodeMethodFrame(1, publish);
  const hdr = (size: number) => encodeContent(1, publish, {}, Buffer.alloc(size), FRAME_MIN_SIZE).subarray(m.length, m.length + 22);
  const body = (n: number) => frame(3, 1, Buffer.alloc(n));
  // header without a content method
  assert.is(readError(withHeader(hdr(1))).replyCode, 505);
  // body without a header
  assert.is(readError(withHeader(m, body(1))).replyCode, 505);
  // method while a body is still due
  assert.is(readError(withHeader(m, hdr(2), body(1), encodeMethodFrame(1, publish))).replyCode, 505);
  // body larger than what the header declared
  assert.is(readError(withHeader(m, hdr(2), body(3))).replyCode, 505);
  // a second header
  assert.is(readError(withHeader(m, hdr(2), hdr(2))).replyCode, 505);
  // other channels are independent
  const other = encodeMethodFrame(2, method('BasicAck', { deliveryTag: 1, multiple: false }));
  assert.is(readAll([withHeader(m, hdr(2), other, body(2))]).frames.length, 4);
});

test('a bad payload inside a well-formed frame surfaces the codec error with the channel', () => {
  const e = readError(withHeader(frame(1, 7, Buffer.from('003c0050' + '00', 'hex'))));
  assert.is(e.replyCode, 501);
  assert.is(e.channel, 7);
  assert.is(e.classId, 60);
  assert.is(e.methodId, 80);
});

test('after an error the reader stays failed and rethrows the same error', () => {
  const c = new FrameCollector();
  const r = new FrameReader(c);
  const e1 = errorOf(() => r.push(Buffer.from('XMQP')));
  const e2 = errorOf(() => r.push(PROTOCOL_HEADER));
  assert.is(e1, e2);
  assert.is(r.failed, e1);
  assert.is(c.frames.length, 0);
});

test('frames before the bad one are delivered; none after', () => {
  const bytes = withHeader(encodeMethodFrame(1, method('BasicAck', { deliveryTag: 1, multiple: false })), frame(9, 0, Buffer.alloc(0)), encodeMethodFrame(1, method('BasicAck', { deliveryTag: 2, multiple: false })));
  const c = new FrameCollector();
  const r = new FrameReader(c);
  errorOf(() => r.push(bytes));
  assert.is(c.frames.length, 1);
});

test('a client-side reader can skip the protocol header', () => {
  const c = readAll([encodeMethodFrame(0, method('ConnectionStart', { versionMajor: 0, versionMinor: 9, serverProperties: {}, mechanisms: Buffer.from('PLAIN'), locales: Buffer.from('en_US') }))], { protocolHeader: false });
  assert.is(c.frames.length, 1);
});

test.run();
