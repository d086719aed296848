/**
 * The output buffer's deliver path writes basic.deliver / get-ok and the
 * content header straight from a broker message envelope: decoded by our
 * frame reader it must equal what the codec encodes from the same values,
 * for any exchange, routing key (UTF-8 of any length up to 255 bytes),
 * properties, body size and frame-max; the batch goes out as one write (or
 * one corked writev when large bodies are not copied).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import type { Socket } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { Message } from '../../../src/broker.js';
import { Writer } from '../../../src/amqp/codec/writer.js';
import { writeMeta } from '../../../src/engine/meta.js';
import { Output } from '../../../src/amqp/output.js';
import { FrameReader } from '../../../src/amqp/frame-reader.js';
import { MethodId } from '../../../src/amqp/codec/methods.js';
import type { BasicProperties } from '../../../src/amqp/codec/properties.js';
import { FrameCollector } from '../../helpers/frame-collector.js';
import { fcParams } from '../../helpers/fc.js';
import { basicProperties } from '../../helpers/amqp-arbitraries.js';

class FakeSocket {
  writes: Buffer[][] = [];
  private batch: Buffer[] | null = null;
  writableLength = 0;
  destroyed = false;
  writableEnded = false;
  cork(): void { this.batch = []; }
  uncork(): void { this.writes.push(this.batch!); this.batch = null; }
  write(b: Buffer, cb?: () => void): boolean {
    const copy = Buffer.from(b); // what the kernel would have taken at this moment
    if (this.batch !== null) this.batch.push(copy);
    else this.writes.push([copy]);
    if (cb) queueMicrotask(cb);
    return true;
  }
}

function message(exchange: string, routingKey: string, props: BasicProperties | undefined, body: Buffer, redelivered: boolean): Message {
  const w = new Writer(256);
  const metaLen = writeMeta(w, Date.now(), 0, 0, true, exchange, routingKey, props);
  w.bytes(body);
  return new Message(null, 'q', 1, 7, 1, w.take(), metaLen, redelivered, 0, 3, false);
}

const utf8Upto = (n: number): fc.Arbitrary<string> => fc.string({ unit: 'grapheme', maxLength: n }).filter((s) => Buffer.byteLength(s) <= n);

test('deliver and get-ok from the envelope decode to the same method, properties and body (frame-max respected)', () => {
  fc.assert(fc.property(
    utf8Upto(255), utf8Upto(255), fc.option(basicProperties, { nil: undefined }), fc.uint8Array({ maxLength: 20000 }),
    fc.boolean(), fc.constantFrom(4096, 5000, 131072), fc.nat(2 ** 40), utf8Upto(100),
    (exchange, routingKey, props, bodyArr, redelivered, frameMax, tag, ctag) => {
      const body = Buffer.from(bodyArr);
      const m = message(exchange, routingKey, props, body, redelivered);
      const sock = new FakeSocket();
      const out = new Output(sock as unknown as Socket);
      const t = Buffer.from(ctag);
      out.deliver(3, Buffer.concat([Buffer.from([t.length]), t]), tag + 1, redelivered, m, frameMax);
      out.getOk(4, tag + 2, m, 3, frameMax);
      out.flush();
      assert.is(sock.writes.length, 1, 'one write (or one corked writev) per flush');
      const col = new FrameCollector();
      const reader = new FrameReader(col, { protocolHeader: false, frameMax });
      for (const chunk of sock.writes[0]!) reader.push(chunk);
      const methods = col.frames.filter((f) => f.t === 'method') as { channel: number; m: Record<string, unknown> }[];
      assert.equal(methods[0]!.m, { id: MethodId.BasicDeliver, consumerTag: ctag, deliveryTag: tag + 1, redelivered, exchange, routingKey });
      assert.equal(methods[1]!.m, { id: MethodId.BasicGetOk, deliveryTag: tag + 2, redelivered, exchange, routingKey, messageCount: 3 });
      for (const ch of [3, 4]) {
        const h = col.frames.find((f) => f.t === 'header' && f.channel === ch) as { h: { bodySize: number; properties: BasicProperties } };
        assert.equal(h.h.properties, props ?? {});
        assert.is(h.h.bodySize, body.length);
        const got = Buffer.concat(col.frames.filter((f) => f.t === 'body' && f.channel === ch).map((f) => Buffer.from((f as { hex: string }).hex, 'hex')));
        assert.ok(got.equals(body));
      }
    }), fcParams({ numRuns: 150 }));
});

test('a large body is written without copying, as its own chunks between the frame bytes', () => {
  const body = Buffer.alloc(300000, 9);
  const m = message('x', 'k', undefined, body, false);
  const sock = new FakeSocket();
  const out = new Output(sock as unknown as Socket);
  out.deliver(1, Buffer.from([1, 0x61]), 1, false, m, 131072);
  out.flush();
  assert.is(sock.writes.length, 1);
  const chunks = sock.writes[0]!;
  assert.ok(chunks.some((c) => c.length === 131072 - 8), 'a body frame payload as a chunk of its own');
  const col = new FrameCollector();
  const reader = new FrameReader(col, { protocolHeader: false, frameMax: 131072 });
  for (const c of chunks) reader.push(c);
  assert.is(col.frames.filter((f) => f.t === 'body').length, 3);
});

/** A socket that takes every write and completes it when told (as the kernel would, later). */
class NullSocket {
  writableLength = 0;
  destroyed = false;
  writableEnded = false;
  private readonly pending: (() => void)[] = [];
  cork(): void {}
  uncork(): void {}
  write(_b: Buffer, cb?: () => void): boolean {
    if (cb) this.pending.push(cb);
    return true;
  }
  complete(): void {
    for (let i = 0; i < this.pending.length; i++) this.pending[i]!();
    this.pending.length = 0;
  }
}

test('the deliver path allocates nothing per delivery: 1M deliveries with properties run without a garbage collection', async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  assert.ok(gc, 'run with --expose-gc (npm test does)');
  const gcs: number[] = [];
  const observer = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e.startTime); });
  observer.observe({ entryTypes: ['gc'] });
  const m = message('amq.direct', 'rpc.requests', { correlationId: '12345', replyTo: 'amq.gen-reply-queue-name', contentType: 'application/json' }, Buffer.alloc(64, 1), false);
  const sock = new NullSocket();
  const out = new Output(sock as unknown as Socket);
  const tag = Buffer.from('\x08ctag-001', 'latin1');
  const run = (n: number): void => {
    for (let i = 1; i <= n; i++) {
      out.deliver(1, tag, i, false, m, 131072);
      if ((i & 511) === 0) {
        out.flush();
        sock.complete();
      }
    }
  };
  run(20_000); // warm up: the buffers reach their batch size, the code is optimized
  gc!();
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  run(1_000_000);
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 20));
  observer.disconnect();
  const during = gcs.filter((t) => t >= t0 && t <= t1).length;
  // One small view per flush (2,000 of them) fits in the young generation; one per delivery would not.
  assert.is(during, 0, `${during} garbage collections during 1M deliveries`);
});

test.run();
