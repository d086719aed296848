/**
 * `ringmq bench frame`: the AMQP frame reader on the publish path. A stream of
 * basic.publish + content header + 64 B body (the three frames a client sends
 * per message) is fed in 64 KiB chunks, the size a socket read delivers, and
 * every frame is decoded. Reports messages/s, frames/s and MB/s of wire bytes,
 * and GC events per million messages (style.md §3: measure allocation).
 */
import { FRAME_MIN_SIZE, PROTOCOL_HEADER } from '../src/amqp/codec/constants.js';
import { writeContent } from '../src/amqp/codec/frames.js';
import { method } from '../src/amqp/codec/methods.js';
import type { Method } from '../src/amqp/codec/methods.js';
import type { ContentHeader } from '../src/amqp/codec/properties.js';
import { Writer } from '../src/amqp/codec/writer.js';
import { FrameReader } from '../src/amqp/frame-reader.js';
import type { FrameHandler } from '../src/amqp/frame-reader.js';
import { PerformanceObserver } from 'node:perf_hooks';
import type { BenchOptions, BenchResult, Suite } from './_util.js';
import { failIfNot, median, rmePct } from './_util.js';

const MESSAGES = 20000;
const CHUNK = 64 * 1024;
const PAYLOAD = 64;

class Counter implements FrameHandler {
  methods = 0;
  headers = 0;
  bodyBytes = 0;
  method(_channel: number, _m: Method): void {
    this.methods++;
  }
  header(_channel: number, _h: ContentHeader): void {
    this.headers++;
  }
  body(_channel: number, payload: Buffer): void {
    this.bodyBytes += payload.length;
  }
  heartbeat(): void {}
}

function buildStream(): { chunks: Buffer[]; bytes: number } {
  const w = new Writer(1 << 20);
  const pub = method('BasicPublish', { exchange: 'amq.direct', routingKey: 'bench.queue', mandatory: false, immediate: false });
  const body = Buffer.alloc(PAYLOAD, 0x61);
  for (let i = 0; i < MESSAGES; i++) writeContent(w, 1, pub, { deliveryMode: 1, contentType: 'application/octet-stream' }, body, FRAME_MIN_SIZE);
  const frames = w.take();
  const chunks: Buffer[] = [];
  // Fresh chunks per socket read, as Node delivers them; frames straddle chunk edges.
  for (let off = 0; off < frames.length; off += CHUNK) chunks.push(Buffer.from(frames.subarray(off, off + CHUNK)));
  return { chunks, bytes: frames.length };
}

function runOnce(chunks: Buffer[]): { ms: number; counter: Counter } {
  const counter = new Counter();
  const reader = new FrameReader(counter, { frameMax: 131072 });
  const t0 = process.hrtime.bigint();
  reader.push(PROTOCOL_HEADER);
  for (const c of chunks) reader.push(c);
  reader.end();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, counter };
}

export const suite: Suite = {
  name: 'frame',
  description: 'AMQP frame reader: basic.publish + header + 64 B body, decoded from 64 KiB chunks',
  threads: 1,
  async run(opts: BenchOptions): Promise<BenchResult[]> {
    const { chunks, bytes } = buildStream();
    const budgetMs = opts.quick ? 300 : 2000;
    for (let i = 0; i < 3; i++) runOnce(chunks); // warm up
    const rates: number[] = [];
    let gcs = 0;
    const obs = new PerformanceObserver((list) => {
      gcs += list.getEntries().length;
    });
    obs.observe({ entryTypes: ['gc'] });
    const started = Date.now();
    while (Date.now() - started < budgetMs || rates.length < 5) {
      const { ms, counter } = runOnce(chunks);
      failIfNot(counter.methods === MESSAGES && counter.headers === MESSAGES && counter.bodyBytes === MESSAGES * PAYLOAD, 'every frame decoded');
      rates.push(MESSAGES / (ms / 1000));
    }
    await new Promise((r) => setTimeout(r, 50)); // let the observer deliver
    obs.disconnect();
    const msgs = median(rates);
    opts.note(`frame: ${rates.length} runs of ${MESSAGES} messages (${bytes} bytes)`);
    return [{
      suite: 'frame',
      case: 'publish-64',
      payload: PAYLOAD,
      msgs_per_s: msgs,
      frames_per_s: msgs * 3,
      mb_per_s: (msgs * (bytes / MESSAGES)) / 1e6,
      bytes_per_msg: bytes / MESSAGES,
      rme_pct: rmePct(rates),
      gc_per_1m_msgs: (gcs / (rates.length * MESSAGES)) * 1e6,
    }];
  },
};
