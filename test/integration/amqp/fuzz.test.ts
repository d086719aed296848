/**
 * G11 on the wire: random and mutated byte streams over raw sockets never
 * crash `ringmq serve`, never raise an internal error, and do not disturb a
 * healthy amqplib connection doing confirmed round trips all along.
 *
 * Seeded: RINGMQ_SEED=<n> replays a run (the seed is in the test name).
 * RINGMQ_FUZZ_CONNECTIONS sets how many hostile connections (default 150).
 *
 * Streams: pure noise; a valid protocol header then noise; a valid handshake
 * then valid frames (channel.open, declares, publishes with content, acks,
 * consumes, gets, closes) with byte flips, cuts, insertions, duplications;
 * frames declaring huge sizes; truncated frames; handshakes with lying
 * start-ok / tune-ok fields. Each is written in random chunks with random
 * pauses, then the socket is ended or dropped.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type * as amqp from 'amqplib';
import { PROTOCOL_HEADER } from '../../../src/amqp/codec/constants.js';
import { encodeContent, encodeMethodFrame } from '../../../src/amqp/codec/frames.js';
import { method, type Method } from '../../../src/amqp/codec/methods.js';
import { rng } from '../../helpers/log-tmp.js';
import { connect, startServer, type ServerHandle } from '../../helpers/amqp-server.js';

const seed = Number(process.env.RINGMQ_SEED ?? Date.now() % 1_000_000);
const CONNECTIONS = Number(process.env.RINGMQ_FUZZ_CONNECTIONS ?? 150);

type Rand = () => number;
const int = (r: Rand, n: number): number => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const noise = (r: Rand, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(r, 256)));

function handshake(r: Rand): Buffer[] {
  const startOk = method('ConnectionStartOk', {
    clientProperties: { product: 'fuzz', capabilities: { authentication_failure_close: true } },
    mechanism: r() < 0.9 ? 'PLAIN' : pick(r, ['AMQPLAIN', 'EXTERNAL', '', 'plain']),
    response: r() < 0.9 ? Buffer.from('\0guest\0guest') : noise(r, int(r, 40)),
    locale: 'en_US',
  });
  const tuneOk = method('ConnectionTuneOk', {
    channelMax: r() < 0.8 ? 0 : int(r, 70000) & 0xffff,
    frameMax: r() < 0.8 ? 131072 : pick(r, [0, 1, 4095, 4096, 131073, 0xffffffff]),
    heartbeat: r() < 0.9 ? 0 : int(r, 3),
  });
  return [PROTOCOL_HEADER, encodeMethodFrame(0, startOk), encodeMethodFrame(0, tuneOk), encodeMethodFrame(0, method('ConnectionOpen', { virtualHost: r() < 0.95 ? '/' : 'x' }))];
}

function someFrames(r: Rand): Buffer[] {
  const out: Buffer[] = [];
  const ch = r() < 0.8 ? 1 + int(r, 3) : int(r, 70000) & 0xffff;
  out.push(encodeMethodFrame(ch, method('ChannelOpen', {})));
  const q = pick(r, ['fz-a', 'fz-b', '', 'amq.nope', 'witness']);
  const ms: Method[] = [];
  const n = 1 + int(r, 12);
  for (let i = 0; i < n; i++) {
    switch (int(r, 12)) {
      case 0: ms.push(method('QueueDeclare', { queue: q, passive: r() < 0.3, durable: false, exclusive: r() < 0.5, autoDelete: r() < 0.5, nowait: r() < 0.3, arguments: r() < 0.5 ? {} : { 'x-message-ttl': int(r, 100) - 10, 'x-max-length': 'x' } })); break;
      case 1: ms.push(method('BasicConsume', { queue: q, consumerTag: r() < 0.5 ? '' : 'c', noLocal: false, noAck: r() < 0.5, exclusive: r() < 0.3, nowait: r() < 0.3, arguments: {} })); break;
      case 2: ms.push(method('BasicAck', { deliveryTag: int(r, 5), multiple: r() < 0.5 })); break;
      case 3: ms.push(method('BasicNack', { deliveryTag: int(r, 5), multiple: r() < 0.5, requeue: r() < 0.5 })); break;
      case 4: ms.push(method('BasicGet', { queue: q, noAck: r() < 0.5 })); break;
      case 5: ms.push(method('ConfirmSelect', { nowait: r() < 0.5 })); break;
      case 6: ms.push(method('TxSelect', {})); break;
      case 7: ms.push(method('ExchangeDeclare', { exchange: pick(r, ['fz-x', 'amq.direct', '']), type: pick(r, ['fanout', 'topic', 'bogus']), passive: r() < 0.2, durable: false, autoDelete: r() < 0.5, internal: r() < 0.2, nowait: false, arguments: {} })); break;
      case 8: ms.push(method('ChannelClose', { replyCode: 200, replyText: 'x', classId: 0, methodId: 0 })); break;
      case 9: ms.push(method('BasicQos', { prefetchSize: r() < 0.9 ? 0 : 7, prefetchCount: int(r, 5), global: r() < 0.5 })); break;
      default: {
        // a publish with content: handled below
        const body = noise(r, r() < 0.7 ? int(r, 200) : int(r, 20000));
        out.push(encodeContent(ch, method('BasicPublish', { exchange: pick(r, ['', 'amq.fanout', 'fz-x', 'nope']), routingKey: q, mandatory: r() < 0.5, immediate: r() < 0.05 }),
          { headers: { n: i, s: 'x' }, deliveryMode: pick(r, [1, 2]), expiration: r() < 0.1 ? pick(r, ['10', 'abc', '-1']) : undefined as unknown as string, replyTo: r() < 0.1 ? 'amq.rabbitmq.reply-to' : undefined as unknown as string },
          body, 4096));
      }
    }
    for (const m of ms.splice(0)) out.push(encodeMethodFrame(ch, m));
  }
  return out;
}

/** Byte-level damage to a valid stream. */
function mutate(r: Rand, b: Buffer): Buffer {
  const x = Buffer.from(b);
  const k = int(r, 4);
  if (k === 0) {
    for (let i = 0, n = 1 + int(r, 4); i < n && x.length > 0; i++) x[int(r, x.length)] = int(r, 256);
    return x;
  }
  if (k === 1) return x.subarray(0, int(r, x.length + 1)); // cut
  if (k === 2) { const at = int(r, x.length + 1); return Buffer.concat([x.subarray(0, at), noise(r, 1 + int(r, 16)), x.subarray(at)]); }
  const at = int(r, x.length + 1); // a lying size: rewrite 4 bytes somewhere as a huge length
  if (at + 4 <= x.length) x.writeUInt32BE(pick(r, [0xffffffff, 0x7fffffff, 0x10000000, 131065, 4089]), at);
  return x;
}

function stream(r: Rand): Buffer {
  switch (int(r, 6)) {
    case 0: return noise(r, 1 + int(r, 2000));
    case 1: return Buffer.concat([PROTOCOL_HEADER, noise(r, int(r, 2000))]);
    case 2: { // huge declared frame sizes right after a handshake
      const hdr = Buffer.from([pick(r, [1, 2, 3, 8, 9]), 0, int(r, 3), 0, 0, 0, 0]);
      hdr.writeUInt32BE(pick(r, [0xffffffff, 0xfffffff0, 131065, 1 << 30]), 3);
      return Buffer.concat([...handshake(r), hdr, noise(r, int(r, 500))]);
    }
    case 3: { // truncated: a valid stream cut anywhere
      const all = Buffer.concat([...handshake(r), ...someFrames(r)]);
      return all.subarray(0, int(r, all.length));
    }
    default: { // valid handshake + frames with damage in one place
      const parts = [...handshake(r), ...someFrames(r)];
      if (r() < 0.85) {
        const i = int(r, parts.length);
        parts[i] = mutate(r, parts[i]!);
      }
      if (r() < 0.2) parts.push(parts[int(r, parts.length)]!); // a duplicated frame
      return Buffer.concat(parts);
    }
  }
}

function hostile(port: number, r: Rand, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s: Socket = netConnect({ host: '127.0.0.1', port });
    let done = false;
    const finish = (): void => { if (!done) { done = true; s.destroy(); resolve(); } };
    s.on('error', finish);
    s.on('close', finish);
    s.on('data', () => {});
    s.on('connect', async () => {
      let at = 0;
      while (at < bytes.length && !s.destroyed) {
        const n = 1 + int(r, r() < 0.5 ? 64 : 4096);
        s.write(bytes.subarray(at, at + n));
        at += n;
        if (r() < 0.2) await new Promise((res) => setTimeout(res, int(r, 5)));
      }
      if (r() < 0.5) s.end(); // half-close: the server must notice
      setTimeout(finish, 30 + int(r, 150));
    });
  });
}

test(`random and mutated byte streams never crash the server nor disturb a healthy connection (seed ${seed})`, async () => {
  const server: ServerHandle = await startServer();
  let healthy: amqp.ChannelModel | null = null;
  try {
    healthy = await connect(server);
    const ch = await healthy.createConfirmChannel();
    // Its own server-named exclusive queue: no hostile stream can consume from it.
    const { queue: witnessQ } = await ch.assertQueue('', { exclusive: true });
    // The healthy client: confirmed publishes and gets, checked one by one, while the fuzz runs.
    let rounds = 0;
    let stop = false;
    const witness = (async () => {
      while (!stop) {
        const tag = `w${rounds}`;
        ch.sendToQueue(witnessQ, Buffer.from(tag), { messageId: tag });
        await ch.waitForConfirms();
        const m = await ch.get(witnessQ, { noAck: true });
        assert.ok(m !== false && m.properties.messageId === tag && m.content.toString() === tag, `healthy round trip ${rounds} completed`);
        rounds++;
      }
    })();
    const r = rng(seed);
    const parallel = 4;
    for (let i = 0; i < CONNECTIONS; i += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, CONNECTIONS - i) }, () => {
        const sub = rng(int(r, 2 ** 31));
        return hostile(server.port, sub, stream(sub));
      }));
    }
    stop = true;
    await witness;
    assert.ok(rounds > 10, `the healthy connection kept working (${rounds} round trips)`);
    assert.is(server.proc.exitCode, null, 'the server is alive');
    assert.not.match(server.stderr(), /internal error/i, 'no internal error (a thrown bug) in the server log');
    // A fresh connection works too.
    const fresh = await connect(server);
    const fc = await fresh.createChannel();
    await fc.assertQueue('', { exclusive: true });
    await fresh.close();
  } finally {
    await healthy?.close().catch(() => {});
    const code = await server.stop();
    await server.dispose();
    if (process.env.RINGMQ_FUZZ_LOG) process.stdout.write(server.stderr());
    assert.is(code, 0, `clean exit after the fuzz (seed ${seed}); stderr tail: ${server.stderr().slice(-2000)}`);
  }
});

test.run();
