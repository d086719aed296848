import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FRAME_MIN_SIZE, PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { encodeContent, encodeMethodFrame, writeBodyFrames, writeHeartbeatFrame, writeMethodFrame } from '../../../src/amqp/codec/frames.js';
import { method } from '../../../src/amqp/codec/methods.js';
import { Writer } from '../../../src/amqp/codec/writer.js';

test('protocol header is AMQP 0 0 9 1', () => {
  assert.is(PROTOCOL_HEADER.toString('hex'), '414d515000000901');
});

test('method frame: type 1, channel, size, payload, 0xCE', () => {
  const b = encodeMethodFrame(3, method('BasicQos', { prefetchSize: 0, prefetchCount: 10, global: false }));
  assert.is(b.toString('hex'), '01' + '0003' + '0000000b' + '003c000a' + '00000000' + '000a' + '00' + 'ce');
});

test('heartbeat frame: 08 0000 00000000 ce', () => {
  const w = new Writer(8);
  writeHeartbeatFrame(w);
  assert.is(w.take().toString('hex'), '08000000000000ce');
});

test('a body is split into frames of at most frame-max - 8 payload bytes', () => {
  const body = Buffer.alloc(FRAME_MIN_SIZE * 2 + 100, 7);
  const w = new Writer();
  writeBodyFrames(w, 1, body, FRAME_MIN_SIZE);
  const out = w.take();
  const sizes: number[] = [];
  for (let p = 0; p < out.length;) {
    assert.is(out[p], 3);
    const size = out.readUInt32BE(p + 3);
    assert.ok(size + 8 <= FRAME_MIN_SIZE);
    assert.is(out[p + 7 + size], 0xce);
    sizes.push(size);
    p += size + 8;
  }
  assert.equal(sizes, [4088, 4088, 100 + 2 * 8]);
});

test('an empty body makes no body frame', () => {
  const b = encodeContent(1, method('BasicPublish', { exchange: '', routingKey: 'q', mandatory: false, immediate: false }), {}, Buffer.alloc(0), FRAME_MIN_SIZE);
  const methodLen = 8 + b.readUInt32BE(3);
  assert.is(b[methodLen], 2);
  assert.is(b.length, methodLen + 8 + 14);
});

test('a method larger than frame-max is refused and nothing is written', () => {
  const w = new Writer();
  w.u8(0xaa);
  const big = method('QueueDeclare', { queue: 'q', passive: false, durable: false, exclusive: false, autoDelete: false, nowait: false, arguments: { x: 'y'.repeat(5000) } });
  assert.throws(() => writeMethodFrame(w, 1, big, FRAME_MIN_SIZE), (e: Error) => e instanceof RangeError && /frame-max/.test(e.message));
  assert.is(w.view().toString('hex'), 'aa');
});

test('channel numbers outside 0..65535 are refused', () => {
  assert.throws(() => encodeMethodFrame(65536, method('ChannelOpen', {})), (e: Error) => e instanceof RangeError);
});

test.run();
