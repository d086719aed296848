/**
 * One AMQP client process of `ringmq bench amqp`, forked by amqp.bench.ts
 * (protocol in amqp-protocol.ts). It uses amqplib, the same client for every
 * broker, so the figures compare brokers, not clients.
 *
 * Payloads carry a sequence number (u32 LE in the first 4 bytes): a consumer
 * checks that each queue delivers 0, 1, 2, ... with the published size, so a
 * broker that loses, duplicates or reorders messages fails the bench instead
 * of printing a figure.
 */
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { FromClient, Job, ToClient } from './amqp-protocol.js';
import { PROGRESS_MS } from './amqp-protocol.js';

/** To the parent; once it is gone (killed, Ctrl-C) there is nobody to work for: exit quietly. */
const send = (m: FromClient): void => {
  if (!process.connected) process.exit(0);
  process.send!(m, undefined, {}, (err: Error | null) => {
    if (err) process.exit(0);
  });
};
const now = (): number => performance.timeOrigin + performance.now();
const yieldNow = (): Promise<void> => new Promise((r) => setImmediate(r));

let conn: ChannelModel | undefined;
/** Counter reported by `mark` (consumed, published, or round trips). */
let count = 0;
let recording = false;
let latencies: number[] = [];
let errors = 0;
let stopRequested = false;
let stopDone: (() => void) | undefined;
let go!: () => void;
const started = new Promise<void>((r) => { go = r; });
/** Publisher: slowest queue's consumed count, relayed by the parent. */
let consumed = 0;
let consumedWake: (() => void) | undefined;

function fail(err: unknown): void {
  send({ type: 'error', message: (err as Error)?.stack ?? String(err) });
  setTimeout(() => process.exit(1), 100);
}

async function connect(url: string): Promise<ChannelModel> {
  let amqp: typeof import('amqplib');
  try {
    amqp = await import('amqplib');
  } catch {
    throw new Error('amqplib is not installed (a dev dependency of ringmq): run `npm install` in the ringmq checkout');
  }
  const c = await amqp.connect(url);
  c.on('error', (err: Error) => fail(new Error(`connection error: ${err.message}`)));
  c.on('close', () => {
    if (!closing) fail(new Error('connection closed by the broker'));
  });
  return c;
}
let closing = false;

function watchChannel(ch: Channel): void {
  ch.on('error', (err: Error) => fail(new Error(`channel error: ${err.message}`)));
}

async function consume(job: Extract<Job, { role: 'consume' }>): Promise<void> {
  conn = await connect(job.url);
  const ch = await conn.createChannel();
  watchChannel(ch);
  if (!job.noAck) await ch.prefetch(job.prefetch);
  let expected = 0;
  const onMessage = (m: ConsumeMessage | null): void => {
    if (m === null) {
      fail(new Error(`consumer of ${job.queue} cancelled by the broker`));
      return;
    }
    const body = m.content;
    if (body.length !== job.payload || body.readUInt32LE(0) !== expected) errors++;
    expected = body.length >= 4 ? body.readUInt32LE(0) + 1 : expected + 1;
    count++;
    if (!job.noAck) ch.ack(m);
  };
  await ch.consume(job.queue, onMessage, { noAck: job.noAck });
  const timer = setInterval(() => send({ type: 'progress', count }), PROGRESS_MS);
  send({ type: 'ready' });
  await new Promise<void>((r) => { stopDone = r; });
  clearInterval(timer);
  send({ type: 'stopped', count, errors });
}

async function publish(job: Extract<Job, { role: 'publish' }>): Promise<void> {
  conn = await connect(job.url);
  const confirms = job.confirmWindow > 0;
  const ch: Channel | ConfirmChannel = confirms ? await conn.createConfirmChannel() : await conn.createChannel();
  watchChannel(ch);
  let drainWake: (() => void) | undefined;
  ch.on('drain', () => drainWake?.());
  const options = { persistent: job.persistent, deliveryMode: job.persistent ? 2 : 1 };
  send({ type: 'ready' });
  await started;
  const timer = setInterval(() => send({ type: 'progress', count }), PROGRESS_MS);

  // Bodies are reused: amqplib copies the content into its frame buffer
  // before publish() returns, so the next message may overwrite the bytes.
  const body = Buffer.alloc(job.payload, 0x5a);
  let outstanding = 0;
  let windowWake: (() => void) | undefined;
  let nacked = 0;
  while (!stopRequested) {
    if (count - consumed >= job.maxBacklog) {
      await new Promise<void>((r) => { consumedWake = r; });
      consumedWake = undefined;
      continue;
    }
    if (confirms && outstanding >= job.confirmWindow) {
      await new Promise<void>((r) => { windowWake = r; });
      windowWake = undefined;
      continue;
    }
    // A burst per event-loop turn, so IPC (mark, consumed, stop) gets in.
    let burst = 256;
    let more = true;
    while (burst-- > 0 && more && count - consumed < job.maxBacklog && (!confirms || outstanding < job.confirmWindow)) {
      body.writeUInt32LE(count, 0);
      if (confirms) {
        outstanding++;
        const t0 = recording ? performance.now() : -1;
        more = (ch as ConfirmChannel).publish(job.exchange, job.routingKey, body, options, (err) => {
          if (err) nacked++;
          else if (t0 >= 0 && recording) latencies.push((performance.now() - t0) * 1000);
          outstanding--;
          windowWake?.();
        });
      } else {
        more = ch.publish(job.exchange, job.routingKey, body, options);
      }
      count++;
    }
    if (!more) await new Promise<void>((r) => { drainWake = r; });
    else await yieldNow();
    drainWake = undefined;
  }
  clearInterval(timer);
  if (confirms) await (ch as ConfirmChannel).waitForConfirms();
  if (nacked) throw new Error(`${nacked} publishes nacked by the broker`);
  send({ type: 'stopped', count, errors: 0, ...(confirms ? { latencies_us: Float64Array.from(latencies) } : {}) });
}

async function rpcServer(job: Extract<Job, { role: 'rpc-server' }>): Promise<void> {
  conn = await connect(job.url);
  const ch = await conn.createChannel();
  watchChannel(ch);
  await ch.consume(
    job.queue,
    (m) => {
      if (m === null) return fail(new Error('rpc server consumer cancelled by the broker'));
      ch.sendToQueue(m.properties.replyTo as string, m.content, { correlationId: m.properties.correlationId as string });
      count++;
    },
    { noAck: true },
  );
  send({ type: 'ready' });
  await new Promise<void>((r) => { stopDone = r; });
  send({ type: 'stopped', count, errors });
}

async function rpcClient(job: Extract<Job, { role: 'rpc-client' }>): Promise<void> {
  conn = await connect(job.url);
  const ch = await conn.createChannel();
  watchChannel(ch);
  const { queue: replyTo } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
  let pending: { id: string; resolve: (m: ConsumeMessage) => void } | undefined;
  await ch.consume(
    replyTo,
    (m) => {
      if (m === null) return fail(new Error('rpc reply consumer cancelled by the broker'));
      if (!pending || m.properties.correlationId !== pending.id) {
        errors++; // a reply nobody waits for: wrong or duplicated correlation id
        return;
      }
      const p = pending;
      pending = undefined;
      p.resolve(m);
    },
    { noAck: true },
  );
  send({ type: 'ready' });
  await started;
  const body = Buffer.alloc(job.payload, 0x33);
  while (!stopRequested) {
    const id = String(count);
    const t0 = performance.now();
    const reply = new Promise<ConsumeMessage>((resolve) => { pending = { id, resolve }; });
    ch.sendToQueue(job.queue, body, { replyTo, correlationId: id });
    const m = await reply;
    if (recording) latencies.push((performance.now() - t0) * 1000);
    if (m.content.length !== job.payload) errors++;
    count++;
  }
  send({ type: 'stopped', count, errors, latencies_us: Float64Array.from(latencies) });
}

process.on('message', (m: ToClient) => {
  switch (m.type) {
    case 'job': {
      const j = m.job;
      const run = j.role === 'consume' ? consume(j) : j.role === 'publish' ? publish(j) : j.role === 'rpc-server' ? rpcServer(j) : rpcClient(j);
      run.catch(fail);
      break;
    }
    case 'go':
      go();
      break;
    case 'mark':
      // Latencies count from the first mark (the end of the warm-up) on.
      if (!recording) { recording = true; latencies = []; }
      send({ type: 'mark', count, t: now() });
      break;
    case 'consumed':
      consumed = m.count;
      consumedWake?.();
      break;
    case 'stop':
      stopRequested = true;
      // Consumers and the rpc server stop at once; publishers and the rpc
      // client finish their loop iteration first and then report.
      consumedWake?.();
      stopDone?.();
      break;
    case 'close':
      closing = true;
      void (conn?.close() ?? Promise.resolve())
        .catch(() => {})
        .finally(() => process.exit(0));
      break;
  }
});
process.on('disconnect', () => process.exit(0));
