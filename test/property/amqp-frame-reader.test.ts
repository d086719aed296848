/**
 * Frame reader properties (seeded): any chunking of a valid stream yields the
 * same frames; random and mutated streams never make it throw anything but an
 * AmqpError, never make it allocate more than frame-max, and give the same
 * outcome whole or split in two.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClassId, PROTOCOL_HEADER } from '../../src/amqp/codec/constants.js';
import { writeBodyFrames, writeHeaderFrame, writeHeartbeatFrame, writeMethodFrame } from '../../src/amqp/codec/frames.js';
import { METHODS, methodInfo } from '../../src/amqp/codec/methods.js';
import type { Method, MethodName } from '../../src/amqp/codec/methods.js';
import type { BasicProperties } from '../../src/amqp/codec/properties.js';
import { Writer } from '../../src/amqp/codec/writer.js';
import { AmqpError } from '../../src/amqp/errors.js';
import { FrameReader } from '../../src/amqp/frame-reader.js';
import { basicProperties, methodArbitrary } from '../helpers/amqp-arbitraries.js';
import { FrameCollector, largestAllocation } from '../helpers/frame-collector.js';
import type { Recorded } from '../helpers/frame-collector.js';

const SEED = Number(process.env.RINGMQ_SEED ?? 20261128);

type Step = { kind: 'method'; channel: number; m: Method } | { kind: 'content'; channel: number; m: Method; p: BasicProperties; body: Buffer } | { kind: 'heartbeat' };

const nonContent = (Object.keys(METHODS) as MethodName[]).filter((n) => !METHODS[n].content);
const contentMethods = (Object.keys(METHODS) as MethodName[]).filter((n) => METHODS[n].content);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(fc.oneof(...nonContent.map((n) => methodArbitrary(n))), fc.integer({ min: 1, max: 3 })).map(([m, ch]): Step => ({ kind: 'method', channel: m.id >>> 16 === ClassId.CONNECTION ? 0 : ch, m })) },
  { weight: 3, arbitrary: fc.record({ m: fc.oneof(...contentMethods.map((n) => methodArbitrary(n))), channel: fc.integer({ min: 1, max: 3 }), p: basicProperties, body: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 40000, size: 'max' })).map((a) => Buffer.from(a)) }).map((s): Step => ({ kind: 'content', ...s })) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'heartbeat' }) },
);

/** Encodes steps; frame-max 64 KiB so that generated tables fit; bodies split at `bodyMax`. */
function encode(steps: Step[], bodyMax: number): Buffer {
  const w = new Writer();
  w.bytes(PROTOCOL_HEADER);
  for (const s of steps) {
    if (s.kind === 'heartbeat') writeHeartbeatFrame(w);
    else if (s.kind === 'method') writeMethodFrame(w, s.channel, s.m);
    else {
      writeMethodFrame(w, s.channel, s.m);
      writeHeaderFrame(w, s.channel, s.body.length, s.p);
      writeBodyFrames(w, s.channel, s.body, bodyMax);
    }
  }
  return w.take();
}

const FRAME_MAX = 65536;

function read(chunks: Buffer[]): { frames: Recorded[]; error: AmqpError | null } {
  const c = new FrameCollector();
  const r = new FrameReader(c, { frameMax: FRAME_MAX });
  try {
    for (const ch of chunks) r.push(ch);
    r.end();
    return { frames: c.frames, error: null };
  } catch (err) {
    if (!(err instanceof AmqpError)) throw new Error(`reader threw a non-AmqpError: ${String((err as Error).stack ?? err)}`);
    return { frames: c.frames, error: err };
  }
}

function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

/** What the reader should report for the steps, body frames joined. */
function model(steps: Step[]): unknown[] {
  const out: unknown[] = [];
  for (const s of steps) {
    if (s.kind === 'heartbeat') out.push({ t: 'heartbeat' });
    else if (s.kind === 'method') out.push({ t: 'method', channel: s.channel, m: s.m });
    else {
      out.push({ t: 'method', channel: s.channel, m: s.m }, { t: 'header', channel: s.channel, h: { classId: 60, bodySize: s.body.length, properties: s.p } });
      // "Zero indicates that there are no content body frames."
      if (s.body.length > 0) out.push({ t: 'body', channel: s.channel, hex: s.body.toString('hex') });
    }
  }
  return out;
}

function joinBodies(frames: Recorded[]): unknown[] {
  const out: unknown[] = [];
  let open: { t: 'body'; channel: number; hex: string } | null = null;
  for (const f of frames) {
    if (f.t === 'body') {
      if (open === null) {
        open = { t: 'body', channel: f.channel, hex: '' };
        out.push(open);
      }
      open.hex += f.hex;
      if (f.remaining === 0) open = null;
    } else out.push(f);
  }
  return out;
}

test('shouldYieldTheSameFramesForAnyChunking of a generated valid stream', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 8 }), fc.integer({ min: 4096, max: 16384 }), fc.array(fc.nat(), { maxLength: 12 }), (steps, bodyMax, cuts) => {
      const bytes = encode(steps, bodyMax);
      const whole = read([bytes]);
      assert.is(whole.error, null);
      assert.equal(joinBodies(whole.frames), model(steps));
      const split = read(chunked(bytes, cuts));
      assert.equal(split, whole);
      for (const f of whole.frames) if (f.t === 'method') assert.ok(methodInfo(f.m.id) !== undefined);
    }),
    { seed: SEED, numRuns: 500 },
  );
});

test('shouldNeverThrowAnythingButAmqpError on random bytes after the protocol header, nor allocate beyond frame-max', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 600, size: 'max' }), fc.array(fc.nat(), { maxLength: 6 }), (junk, cuts) => {
      const bytes = Buffer.concat([PROTOCOL_HEADER, junk]);
      let r: ReturnType<typeof read> | undefined;
      const max = largestAllocation(() => {
        r = read(chunked(bytes, cuts));
      });
      assert.ok(max <= FRAME_MAX, `allocated ${max}`);
      assert.equal(read([bytes]), r!);
    }),
    { seed: SEED, numRuns: 1500 },
  );
});

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);

type Mutation = { op: 'flip'; at: number; bit: number } | { op: 'set'; at: number; value: number } | { op: 'insert'; at: number; value: number } | { op: 'delete'; at: number; len: number } | { op: 'truncate'; at: number };

function mutate(bytes: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of ms) {
    const at = m.at % (b.length + 1);
    switch (m.op) {
      case 'flip': if (at < b.length) b[at] = b[at]! ^ (1 << m.bit); break;
      case 'set': if (at < b.length) b[at] = m.value; break;
      case 'insert': b = Buffer.concat([b.subarray(0, at), Buffer.from([m.value]), b.subarray(at)]); break;
      case 'delete': b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]); break;
      case 'truncate': b = b.subarray(0, at); break;
    }
  }
  return b;
}

test('shouldSurviveMutatedStreams: typed errors only, bounded allocation, same outcome whole or split in two', () => {
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 5 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.nat(), (steps, ms, cut) => {
      const bytes = mutate(encode(steps, 4096), ms as Mutation[]);
      let whole: ReturnType<typeof read> | undefined;
      const max = largestAllocation(() => {
        whole = read([bytes]);
      });
      assert.ok(max <= Math.max(FRAME_MAX, bytes.length), `allocated ${max}`);
      if (whole!.error !== null) assert.ok([501, 502, 503, 504, 505, 540].includes(whole!.error.replyCode), String(whole!.error.replyCode));
      assert.equal(read(chunked(bytes, [cut])), whole!);
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

/** A well-framed frame around a random payload: the decoders, not the framing, get the garbage. */
const garbageFrame = fc.oneof(
  fc.record({
    id: fc.constantFrom(...Object.values(METHODS).map((d) => d.id as number)),
    args: fc.uint8Array({ maxLength: 80 }),
    channel: fc.integer({ min: 0, max: 2 }),
  }).map(({ id, args, channel }) => {
    const p = Buffer.alloc(4 + args.length);
    p.writeUInt32BE(id, 0);
    p.set(args, 4);
    return rawFrame(1, id >>> 16 === ClassId.CONNECTION ? 0 : channel || 1, p);
  }),
  fc.record({ props: fc.uint8Array({ maxLength: 80 }), size: fc.integer({ min: 0, max: 100 }) }).map(({ props, size }) => {
    const p = Buffer.alloc(12 + props.length);
    p.writeUInt16BE(60, 0);
    p.writeUInt32BE(size, 8);
    p.set(props, 12);
    return rawFrame(2, 1, p);
  }),
  fc.uint8Array({ maxLength: 100 }).map((b) => rawFrame(3, 1, Buffer.from(b))),
);

function rawFrame(type: number, channel: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(7);
  h[0] = type;
  h.writeUInt16BE(channel, 1);
  h.writeUInt32BE(payload.length, 3);
  return Buffer.concat([h, payload, Buffer.from([0xce])]);
}

test('shouldNeverThrowAnythingButAmqpError when well-framed payloads are garbage', () => {
  const publishFrame = (() => {
    const w = new Writer();
    writeMethodFrame(w, 1, { id: METHODS.BasicPublish.id, exchange: '', routingKey: 'q', mandatory: false, immediate: false });
    return w.take();
  })();
  fc.assert(
    fc.property(fc.array(fc.oneof(garbageFrame, fc.constant(publishFrame)), { minLength: 1, maxLength: 6 }), fc.nat(), (frames, cut) => {
      const bytes = Buffer.concat([PROTOCOL_HEADER, ...frames]);
      const whole = read([bytes]);
      assert.equal(read(chunked(bytes, [cut])), whole);
    }),
    { seed: SEED, numRuns: 3000 },
  );
});

test.run();
