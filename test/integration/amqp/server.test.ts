/**
 * The AMQP server in process (Broker + AmqpServer in the test's own
 * process), for what needs a hand on the broker: resource alarms
 * (connection.blocked / unblocked, publishers held, nothing lost), the
 * connection limit, the consumer ack timeout (channel closed with 406,
 * messages back), and a clean server close (320).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as amqp from 'amqplib';
import { Broker } from '../../../src/broker.js';
import { AmqpServer } from '../../../src/amqp/server.js';
import { openBroker, removeDir, tempDir, waitFor } from '../../helpers/broker-util.js';

async function withServer(fn: (url: string, broker: Broker, server: AmqpServer, logs: string[]) => Promise<void>, opts: { maxConnections?: number; loopSpinUs?: number } = {}): Promise<void> {
  const dir = tempDir('ringmq-amqp-inproc-');
  const broker = await openBroker({ dir, resourceCheckMs: 20 });
  const logs: string[] = [];
  let server: AmqpServer | undefined;
  try {
    server = new AmqpServer(broker, { port: 0, log: (l) => logs.push(l), ...opts });
    const { port } = await server.listen();
    await fn(`amqp://guest:guest@127.0.0.1:${port}`, broker, server, logs);
  } finally {
    await server?.close();
    await broker.close();
    removeDir(dir);
  }
}

test('loopSpinUs: socket data keeps the event loop turning (not sleeping) for that long, then it sleeps; 0 never spins', async () => {
  const prev = process.env['RINGMQ_LOOP_SPIN_US'];
  delete process.env['RINGMQ_LOOP_SPIN_US'];
  try {
    await withServer(async (url, _broker, server) => {
      assert.is(server.loopSpinUs, 8000);
      const conn = await amqp.connect(url); // socket data: the handshake
      await new Promise((r) => setTimeout(r, 40)); // the spin (8 ms) is over
      const before = server.spinner.turns;
      assert.ok(before > 0, 'the handshake started a spin');
      await new Promise((r) => setTimeout(r, 30));
      assert.is(server.spinner.turns, before, 'no socket data, no spin: the loop sleeps');
      const ch = await conn.createChannel(); // more data
      const t0 = performance.now();
      const start = server.spinner.turns;
      await new Promise((r) => setTimeout(r, 5));
      // A loop that slept would turn about once in 5 ms (the timer); a spinning one turns every few µs.
      assert.ok(server.spinner.turns - start >= 20, `${server.spinner.turns - start} turns in ${(performance.now() - t0).toFixed(1)} ms`);
      await ch.close();
      await conn.close();
    }, { loopSpinUs: 8000 });
    await withServer(async (url, _broker, server) => {
      const conn = await amqp.connect(url);
      await conn.close();
      assert.is(server.spinner.turns, 0, 'loopSpinUs 0: never spins');
    }, { loopSpinUs: 0 });
  } finally {
    if (prev !== undefined) process.env['RINGMQ_LOOP_SPIN_US'] = prev;
  }
});

test('a resource alarm: connection.blocked, publishes held (not refused, not lost), unblocked releases them in order (G10)', async () => {
  await withServer(async (url, broker) => {
    const conn = await amqp.connect(url);
    const events: string[] = [];
    conn.on('blocked', (reason: string) => events.push(`blocked:${reason}`));
    conn.on('unblocked', () => events.push('unblocked'));
    const ch = await conn.createConfirmChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    broker.setLimits({ memoryHighWater: 1024 }); // 1 KiB: the alarm is on
    await waitFor(() => events.length === 1, 'connection.blocked');
    assert.equal(events, ['blocked:memory']);
    const confirmed: number[] = [];
    for (let i = 0; i < 5; i++) ch.sendToQueue(queue, Buffer.from(String(i)), {}, (err: unknown) => { if (!err) confirmed.push(i); });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(confirmed, [], 'held while blocked');
    broker.setLimits({ memoryHighWater: 0.99 });
    await waitFor(() => confirmed.length === 5, 'confirms after unblocked');
    assert.equal(events, ['blocked:memory', 'unblocked']);
    const got: string[] = [];
    for (;;) {
      const m = await ch.get(queue, { noAck: true });
      if (m === false) break;
      got.push(m.content.toString());
    }
    assert.equal(got, ['0', '1', '2', '3', '4'], 'all there, in order');
    await conn.close();
  });
});

test('the connection limit: one more is refused at connection.open with 530; the others keep working', async () => {
  await withServer(async (url, _broker, server, logs) => {
    const a = await amqp.connect(url);
    const b = await amqp.connect(url);
    const refused = await amqp.connect(url).then(() => 'connected', (e: Error) => e.message);
    assert.match(refused, /ConnectionClose/);
    await waitFor(() => logs.some((l) => /530 NOT_ALLOWED - connection limit \(2\) is reached/.test(l)), 'the 530 in the log');
    assert.is(server.stats().connections, 2);
    const ch = await a.createChannel();
    await ch.assertQueue('', { exclusive: true });
    await b.close();
    await waitFor(() => server.stats().connections === 1, 'one fewer');
    const c = await amqp.connect(url);
    await c.close();
    await a.close();
  }, { maxConnections: 2 });
});

test('the consumer ack timeout (x-consumer-timeout) closes the channel with 406; its messages go to another consumer', async () => {
  await withServer(async (url) => {
    const conn = await amqp.connect(url);
    const ch = await conn.createChannel();
    const errors: Error[] = [];
    ch.on('error', (e: Error) => errors.push(e));
    await ch.assertQueue('slow', { durable: false, arguments: { 'x-consumer-timeout': 100 } });
    ch.sendToQueue('slow', Buffer.from('x'));
    await ch.consume('slow', () => {}); // never acks
    await waitFor(() => errors.length === 1, 'the channel error', 5000);
    assert.match(String(errors[0]), /406 .*delivery acknowledgement on channel \d+ timed out/);
    const ch2 = await conn.createChannel();
    let m: amqp.GetMessage | false = false;
    for (let k = 0; k < 100 && m === false; k++) {
      m = await ch2.get('slow', { noAck: true });
      if (m === false) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(m !== false && (m as amqp.GetMessage).fields.redelivered, 'back in the queue, redelivered');
    await conn.close();
  });
});

test('server.close(): clients get connection.close 320 CONNECTION_FORCED; their unacked messages stay in the broker', async () => {
  const dir = tempDir('ringmq-amqp-inproc-');
  const broker = await openBroker({ dir });
  const server = new AmqpServer(broker, { port: 0, log: () => {} });
  const { port } = await server.listen();
  const conn = await amqp.connect(`amqp://guest:guest@127.0.0.1:${port}`);
  let err = '';
  conn.on('error', () => {});
  conn.on('close', (e?: Error) => { err = String(e); });
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('kept', { durable: true });
  ch.sendToQueue('kept', Buffer.from('x'), { persistent: true });
  await ch.waitForConfirms();
  await ch.get('kept'); // unacked
  await server.close();
  await waitFor(() => err !== '', 'the close');
  assert.match(err, /320/);
  let again = await broker.get('kept', { noAck: true });
  for (let k = 0; k < 100 && again === null; k++) {
    await new Promise((r) => setTimeout(r, 10));
    again = await broker.get('kept', { noAck: true });
  }
  assert.ok(again && again.redelivered, 'the unacked message is back, redelivered');
  await broker.close();
  removeDir(dir);
});

test.run();
