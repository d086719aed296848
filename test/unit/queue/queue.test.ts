/**
 * The pure queue semantics (src/queue/queue.ts), without threads or files:
 * order, prefetch, round-robin, returns to the original place, each overflow
 * mode, TTL (per queue, per message, exact), delayed messages, redelivery
 * backoff, delivery limit, ack timeout, exclusive consumers, get, multiple
 * acks, purge, delete, and G6 conservation after every step.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EnqueueResult, Queue, type GetResult, type QueueArgs, type RemoveReason } from '../../../src/queue/queue.js';

interface Ev { t: string; c?: number; id: number; n?: number; r?: boolean; reason?: RemoveReason }

function make(args: QueueArgs = {}): { q: Queue; ev: Ev[]; timedOut: number[] } {
  const ev: Ev[] = [];
  const timedOut: number[] = [];
  const q = new Queue(args, {
    deliver: (c, id, n, r) => ev.push({ t: 'deliver', c, id, n, r }),
    remove: (id, reason, n) => ev.push({ t: 'remove', id, reason, n }),
    returned: (id, n) => ev.push({ t: 'returned', id, n }),
    consumerTimedOut: (c) => timedOut.push(c),
  });
  return { q, ev, timedOut };
}

function g6(q: Queue): void {
  const c = q.counters;
  assert.is(c.routed, c.acked + q.ready + q.unacked + c.rejected + c.deliveryLimit + c.expired + c.maxlen + c.purged + c.deleted, 'G6 conservation');
}

const delivered = (ev: Ev[]): number[] => ev.filter((e) => e.t === 'deliver').map((e) => e.id);
const out = (): GetResult => ({ id: -1, deliveryCount: 0, redelivered: false, payload: null, remaining: 0 });

test('delivers in publish order to one consumer; acks remove', () => {
  const { q, ev } = make();
  for (let i = 1; i <= 5; i++) q.enqueue(i, 10, 0, null);
  q.addConsumer(7, 0);
  assert.is(q.dispatch(0), 5);
  assert.equal(delivered(ev), [1, 2, 3, 4, 5]);
  assert.is(q.unacked, 5);
  for (let i = 1; i <= 5; i++) assert.ok(q.ack(i));
  assert.not.ok(q.ack(3), 'double ack refused');
  assert.is(q.unacked, 0);
  g6(q);
});

test('prefetch limits unacked per consumer; an ack frees credit', () => {
  const { q, ev } = make();
  for (let i = 1; i <= 10; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 3);
  assert.is(q.dispatch(0), 3);
  assert.is(q.dispatch(0), 0);
  q.ack(2);
  assert.is(q.dispatch(0), 1);
  assert.equal(delivered(ev), [1, 2, 3, 4]);
  g6(q);
});

test('round-robin between consumers with credit', () => {
  const { q, ev } = make();
  for (let i = 1; i <= 6; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 0);
  q.addConsumer(2, 1);
  q.dispatch(0);
  const byC = ev.filter((e) => e.t === 'deliver').map((e) => `${e.c}:${e.id}`);
  assert.equal(byC, ['1:1', '2:2', '1:3', '1:4', '1:5', '1:6']);
});

test('nack with requeue returns a message to its original place, redelivered, count raised (G2, G4)', () => {
  const { q, ev } = make();
  for (let i = 1; i <= 4; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 2);
  q.dispatch(0); // 1, 2
  q.nack(2, true, 0);
  q.nack(1, true, 0);
  ev.length = 0;
  q.dispatch(0);
  assert.equal(ev.filter((e) => e.t === 'deliver').map((e) => [e.id, e.n, e.r]), [[1, 1, true], [2, 1, true]]);
  g6(q);
});

test('nack without requeue removes as rejected', () => {
  const { q, ev } = make();
  q.enqueue(1, 1, 0, null);
  q.addConsumer(1, 0);
  q.dispatch(0);
  q.nack(1, false, 0);
  assert.equal(ev.at(-1), { t: 'remove', id: 1, reason: 'rejected', n: 0 });
  assert.is(q.counters.rejected, 1);
  g6(q);
});

test('cancel with requeue returns its unacked; without, they stay ackable', () => {
  const { q } = make();
  for (let i = 1; i <= 3; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 0);
  q.dispatch(0);
  q.cancelConsumer(1, false, 0);
  assert.is(q.unacked, 3);
  assert.ok(q.ack(1));
  q.addConsumer(2, 0);
  q.releaseOwner(1, 0);
  assert.is(q.unacked, 0);
  assert.is(q.ready, 2);
  g6(q);
});

test('overflow drop-head drops the oldest ready message (maxlen), counting ready only', () => {
  const { q, ev } = make({ maxLength: 2 });
  q.addConsumer(1, 1);
  q.enqueue(1, 1, 0, null);
  q.dispatch(0); // 1 unacked: not counted
  q.enqueue(2, 1, 0, null);
  q.enqueue(3, 1, 0, null);
  q.enqueue(4, 1, 0, null);
  assert.equal(ev.filter((e) => e.t === 'remove').map((e) => [e.id, e.reason]), [[2, 'maxlen']]);
  assert.is(q.ready, 2);
  g6(q);
});

test('overflow by bytes, reject-publish and reject-publish-dlx', () => {
  const a = make({ maxLengthBytes: 10, overflow: 'reject-publish' });
  assert.is(a.q.enqueue(1, 6, 0, null), EnqueueResult.Ok);
  assert.is(a.q.enqueue(2, 6, 0, null), EnqueueResult.Rejected);
  assert.is(a.q.counters.rejectedPublishes, 1);
  g6(a.q);
  const b = make({ maxLength: 1, overflow: 'reject-publish-dlx' });
  b.q.enqueue(1, 1, 0, null);
  assert.is(b.q.enqueue(2, 1, 0, null), EnqueueResult.RejectedDeadLetter);
  assert.is(b.q.ready, 1);
  g6(b.q);
});

test('TTL: per queue and per message, exact (not only at the head); never delivered after expiry', () => {
  const { q, ev } = make({ messageTtl: 100 });
  q.enqueue(1, 1, 0, null); // expires 100
  q.enqueue(2, 1, 0, null, { expiresAt: 10 });
  q.enqueue(3, 1, 50, null); // expires 150
  assert.is(q.nextDeadline(), 10);
  q.tick(10);
  assert.equal(ev.map((e) => [e.id, e.reason]), [[2, 'expired']]);
  q.tick(120);
  assert.equal(ev.map((e) => [e.id, e.reason]), [[2, 'expired'], [1, 'expired']]);
  q.addConsumer(1, 0);
  assert.is(q.dispatch(200), 0, 'expired at dispatch time: not delivered');
  assert.equal(ev.at(-1), { t: 'remove', id: 3, reason: 'expired', n: 0 });
  g6(q);
});

test('an unacked message does not expire; returned after its expiry, it expires instead of being delivered', () => {
  const { q, ev } = make({ messageTtl: 10 });
  q.enqueue(1, 1, 0, null);
  q.addConsumer(1, 0);
  q.dispatch(0);
  q.tick(50);
  assert.is(q.unacked, 1);
  q.nack(1, true, 50);
  q.dispatch(50);
  assert.equal(ev.at(-1), { t: 'remove', id: 1, reason: 'expired', n: 1 });
  g6(q);
});

test('delayed messages are skipped until due, then take their place by id', () => {
  const { q, ev } = make();
  q.enqueue(1, 1, 0, null, { readyAt: 100 });
  q.enqueue(2, 1, 0, null);
  q.addConsumer(1, 0);
  q.dispatch(0);
  assert.equal(delivered(ev), [2]);
  assert.is(q.nextDeadline(), 100);
  q.tick(100);
  q.dispatch(100);
  assert.equal(delivered(ev), [2, 1]);
});

test('redelivery backoff: a returned message is ready only after the delay', () => {
  const { q, ev } = make({ redeliveryDelay: 30 });
  q.enqueue(1, 1, 0, null);
  q.addConsumer(1, 0);
  q.dispatch(0);
  q.nack(1, true, 5);
  assert.is(q.dispatch(20), 0);
  assert.is(q.nextDeadline(), 35);
  assert.is(q.dispatch(35), 1);
  assert.equal(delivered(ev), [1, 1]);
});

test('delivery limit: returned more than the limit -> dead-lettered (delivery_limit)', () => {
  const { q, ev } = make({ deliveryLimit: 2 });
  q.enqueue(1, 1, 0, null);
  q.addConsumer(1, 0);
  for (let i = 0; i < 2; i++) { q.dispatch(0); q.nack(1, true, 0); }
  assert.is(q.ready, 1);
  q.dispatch(0);
  q.nack(1, true, 0);
  assert.equal(ev.at(-1), { t: 'remove', id: 1, reason: 'delivery_limit', n: 3 });
  g6(q);
});

test('ack timeout: the consumer is timed out and its messages returned', () => {
  const { q, timedOut } = make({ consumerTimeout: 100 });
  q.enqueue(1, 1, 0, null);
  q.enqueue(2, 1, 0, null);
  q.addConsumer(9, 0);
  q.dispatch(0);
  q.ack(2);
  assert.is(q.nextDeadline(), 100);
  q.tick(99);
  assert.equal(timedOut, []);
  q.tick(100);
  assert.equal(timedOut, [9]);
  assert.is(q.consumerCount, 0);
  assert.is(q.ready, 1);
  g6(q);
});

test('exclusive consumer locks the queue', () => {
  const { q } = make();
  assert.is(q.addConsumer(1, 0, true), 'ok');
  assert.is(q.addConsumer(2, 0), 'exclusive-locked');
  const r = make();
  r.q.addConsumer(1, 0);
  assert.is(r.q.addConsumer(2, 0, true), 'exclusive-locked');
});

test('get: auto-ack and with an owner; releaseOwner returns', () => {
  const { q } = make();
  for (let i = 1; i <= 3; i++) q.enqueue(i, 1, 0, `p${i}`);
  const o = out();
  assert.ok(q.get(0, null, o));
  assert.equal([o.id, o.payload, o.remaining], [1, 'p1', 2]);
  assert.ok(q.get(0, 42, o));
  assert.is(o.id, 2);
  assert.is(q.unacked, 1);
  assert.is(q.releaseOwner(42, 0), 1);
  assert.ok(q.get(0, null, o));
  assert.equal([o.id, o.redelivered, o.deliveryCount], [2, true, 1]);
  g6(q);
});

test('ackUpTo / nackUpTo settle only the owner\'s messages up to the id', () => {
  const { q } = make();
  for (let i = 1; i <= 6; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 0);
  q.addConsumer(2, 0);
  q.dispatch(0); // 1:1 2:2 1:3 2:4 1:5 2:6
  assert.is(q.ackUpTo(1, 4), 2); // 1, 3
  assert.is(q.nackUpTo(2, 6, true, 0), 3); // 2, 4, 6 back
  assert.is(q.unacked, 1); // 5
  assert.is(q.ready, 3);
  g6(q);
});

test('purge removes ready only; deleteAll removes everything', () => {
  const { q } = make();
  for (let i = 1; i <= 4; i++) q.enqueue(i, 1, 0, null);
  q.addConsumer(1, 1);
  q.dispatch(0);
  assert.is(q.purge(), 3);
  assert.is(q.unacked, 1);
  q.enqueue(5, 1, 0, null);
  assert.is(q.deleteAll(), 2);
  g6(q);
});

test('recovered messages skip overflow (a restart drops nothing)', () => {
  const { q } = make({ maxLength: 1 });
  q.enqueue(1, 1, 0, null, { recovered: true });
  q.enqueue(2, 1, 0, null, { recovered: true });
  assert.is(q.ready, 2);
});

test('a long run through the arena (growth, wrap, holes) keeps order and G6', () => {
  const { q, ev } = make();
  q.addConsumer(1, 64);
  let id = 1;
  let expect = 1;
  for (let round = 0; round < 2000; round++) {
    for (let i = 0; i < 50; i++) q.enqueue(id++, 1, 0, null);
    ev.length = 0;
    q.dispatch(0);
    for (const id2 of delivered(ev)) {
      assert.is(id2, expect++);
      q.ack(id2);
    }
  }
  q.dispatch(0);
  g6(q);
});

test.run();
