/**
 * Queue: one test per rule. Events are recorded as arrays
 * (test/helpers/queue-model.ts) and compared exactly, in order.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EnqueueResult, GetResult, Queue, type QueueArgs } from '../../../src/queue/queue.js';
import { recordEvents, type QueueEvent } from '../../helpers/queue-model.js';

function setup(args: QueueArgs = {}) {
  const events: QueueEvent[] = [];
  const q = new Queue(args, recordEvents(events));
  /** Events since the last call. */
  const take = () => events.splice(0);
  return { q, take };
}

/** Enqueues ids lo..hi (size 1, payload 'p<id>') at `now`. */
function fill(q: Queue, lo: number, hi: number, now = 0): void {
  for (let id = lo; id <= hi; id++) assert.is(q.enqueue(id, 1, now, `p${id}`), EnqueueResult.Ok);
}

const delivered = (ev: QueueEvent[]) => ev.filter((e) => e[0] === 'deliver').map((e) => e[2]);
const removed = (ev: QueueEvent[], reason?: string) => ev.filter((e) => e[0] === 'remove' && (!reason || e[2] === reason)).map((e) => e[1]);

function g6(q: Queue): void {
  const c = q.counters;
  assert.is(c.routed, c.acked + q.ready + q.unacked + c.rejected + c.deliveryLimit + c.expired + c.maxlen + c.purged + c.deleted, 'G6 conservation');
}

test('dispatch delivers in publish order with the event fields', () => {
  const { q, take } = setup();
  fill(q, 1, 3);
  q.addConsumer(7, 0);
  assert.is(q.dispatch(0), 3);
  assert.equal(take(), [['deliver', 7, 1, 0, false, 'p1'], ['deliver', 7, 2, 0, false, 'p2'], ['deliver', 7, 3, 0, false, 'p3']]);
  assert.is(q.ready, 0);
  assert.is(q.unacked, 3);
  assert.is(q.counters.delivered, 3);
  g6(q);
});

test('enqueue rejects ids that do not increase', () => {
  const { q } = setup();
  fill(q, 5, 5);
  assert.throws(() => q.enqueue(5, 1, 0, null), RangeError);
  assert.throws(() => q.enqueue(4, 1, 0, null), RangeError);
});

test('G4: a requeued message goes back to its original place, ahead of later ones', () => {
  const { q, take } = setup();
  fill(q, 1, 5);
  q.addConsumer(1, 2);
  q.dispatch(0);
  assert.equal(delivered(take()), [1, 2]);
  assert.ok(q.nack(2, true, 0));
  assert.equal(take(), [['returned', 2, 1]]);
  assert.ok(q.ack(1));
  take();
  q.dispatch(0);
  assert.equal(take(), [['deliver', 1, 2, 1, true, 'p2'], ['deliver', 1, 3, 0, false, 'p3']]);
  assert.ok(q.nack(3, true, 0));
  assert.ok(q.nack(2, true, 0));
  take();
  q.dispatch(0);
  assert.equal(delivered(take()), [2, 3], 'lowest id first, whatever the order of the returns');
  assert.is(q.counters.redelivered, 3);
  g6(q);
});

test('prefetch: credit frees on ack, nack and return', () => {
  const { q, take } = setup();
  fill(q, 1, 6);
  q.addConsumer(1, 2);
  assert.is(q.dispatch(0), 2);
  assert.is(q.dispatch(0), 0, 'no credit');
  q.ack(1);
  assert.is(q.dispatch(0), 1);
  q.nack(2, false, 0);
  assert.is(q.dispatch(0), 1);
  q.nack(3, true, 0);
  assert.is(q.dispatch(0), 1);
  assert.equal(delivered(take()), [1, 2, 3, 4, 3]);
  assert.is(q.unacked, 2);
});

test('dispatch max bounds the number of deliveries', () => {
  const { q, take } = setup();
  fill(q, 1, 5);
  q.addConsumer(1, 0);
  assert.is(q.dispatch(0, 2), 2);
  assert.equal(delivered(take()), [1, 2]);
  assert.is(q.dispatch(0, 0), 0);
});

test('round-robin: one message each in turn, skipping consumers without credit', () => {
  const { q, take } = setup();
  fill(q, 1, 8);
  q.addConsumer(10, 0);
  q.addConsumer(20, 1);
  q.addConsumer(30, 0);
  q.dispatch(0);
  const ev = take().filter((e) => e[0] === 'deliver');
  assert.equal(ev.map((e) => [e[1], e[2]]), [[10, 1], [20, 2], [30, 3], [10, 4], [30, 5], [10, 6], [30, 7], [10, 8]]);
});

test('round-robin continues where it stopped across dispatch calls and consumer removal', () => {
  const { q, take } = setup();
  q.addConsumer(1, 0);
  q.addConsumer(2, 0);
  q.addConsumer(3, 0);
  fill(q, 1, 1);
  q.dispatch(0);
  fill(q, 2, 2);
  q.dispatch(0);
  q.cancelConsumer(3, false, 0); // next in turn was 3; the turn passes to 1
  fill(q, 3, 4);
  q.dispatch(0);
  assert.equal(take().filter((e) => e[0] === 'deliver').map((e) => e[1]), [1, 2, 1, 2]);
});

test('overflow drop-head: maxLength counts ready messages only, drops the oldest ready with reason maxlen', () => {
  const { q, take } = setup({ maxLength: 2 });
  fill(q, 1, 2);
  q.addConsumer(1, 1);
  q.dispatch(0); // 1 unacked: does not count
  take();
  fill(q, 3, 3);
  assert.equal(take(), []);
  fill(q, 4, 4);
  assert.equal(take(), [['remove', 2, 'maxlen', 0, 'p2']]);
  assert.is(q.ready, 2);
  assert.is(q.counters.maxlen, 1);
  assert.is(q.counters.routed, 4);
  g6(q);
});

test('overflow drop-head by bytes; a message larger than the limit is dropped itself', () => {
  const { q, take } = setup({ maxLengthBytes: 10 });
  q.enqueue(1, 4, 0, 'a');
  q.enqueue(2, 4, 0, 'b');
  q.enqueue(3, 4, 0, 'c');
  assert.equal(take(), [['remove', 1, 'maxlen', 0, 'a']]);
  assert.is(q.readyBytes, 8);
  assert.is(q.enqueue(4, 11, 0, 'd'), EnqueueResult.Ok);
  assert.equal(removed(take(), 'maxlen'), [2, 3, 4]);
  assert.is(q.ready, 0);
  assert.is(q.readyBytes, 0);
  g6(q);
});

test('overflow drop-head drops a returned message at its original place first', () => {
  const { q, take } = setup({ maxLength: 3 });
  fill(q, 1, 3);
  q.addConsumer(1, 1);
  q.dispatch(0);
  q.cancelConsumer(1, true, 0); // 1 back at the head
  take();
  fill(q, 4, 4);
  assert.equal(removed(take(), 'maxlen'), [1]);
});

test('overflow reject-publish and reject-publish-dlx: not queued, not routed', () => {
  for (const [overflow, want] of [['reject-publish', EnqueueResult.Rejected], ['reject-publish-dlx', EnqueueResult.RejectedDeadLetter]] as const) {
    const { q, take } = setup({ maxLength: 1, maxLengthBytes: 5, overflow });
    assert.is(q.enqueue(1, 3, 0, 'a'), EnqueueResult.Ok);
    assert.is(q.enqueue(2, 1, 0, 'b'), want, 'maxLength');
    q.addConsumer(1, 0);
    q.dispatch(0);
    assert.is(q.enqueue(3, 6, 0, 'c'), want, 'maxLengthBytes');
    assert.is(q.enqueue(4, 5, 0, 'd'), EnqueueResult.Ok);
    assert.equal(take(), [['deliver', 1, 1, 0, false, 'a']]);
    assert.is(q.counters.routed, 2);
    assert.is(q.counters.rejectedPublishes, 2);
    g6(q);
  }
});

test('messageTtl: expires at enqueue + ttl (inclusive), every expired ready message, not only the head', () => {
  const { q, take } = setup({ messageTtl: 10 });
  q.enqueue(1, 1, 0, 'a');
  q.enqueue(2, 1, 5, 'b');
  q.enqueue(3, 1, 20, 'c');
  q.addConsumer(1, 1);
  q.dispatch(0); // 1 unacked: never expires
  take();
  q.tick(14);
  assert.equal(take(), []);
  assert.is(q.nextDeadline(), 15);
  q.tick(15);
  assert.equal(take(), [['remove', 2, 'expired', 0, 'b']]);
  q.tick(1000);
  assert.equal(take(), [['remove', 3, 'expired', 0, 'c']]);
  assert.ok(q.isUnacked(1));
  assert.is(q.counters.expired, 2);
  g6(q);
});

test('per-message expiration: effective expiry is min(expiresAt, now + ttl); out-of-order expiries all expire exactly', () => {
  const { q, take } = setup({ messageTtl: 100 });
  q.enqueue(1, 1, 0, 'a', { expiresAt: 50 });
  q.enqueue(2, 1, 0, 'b', { expiresAt: 500 }); // ttl wins: 100
  q.enqueue(3, 1, 0, 'c', { expiresAt: 30 });
  q.enqueue(4, 1, 0, 'd');
  q.enqueue(5, 1, 0, 'e', { expiresAt: 30 });
  assert.is(q.nextDeadline(), 30);
  q.tick(30);
  assert.equal(take(), [['remove', 3, 'expired', 0, 'c'], ['remove', 5, 'expired', 0, 'e']]);
  q.tick(99);
  assert.equal(removed(take()), [1]);
  q.tick(100);
  assert.equal(removed(take()), [2, 4]);
  assert.is(q.nextDeadline(), Infinity);
});

test('a message is never delivered after its expiry: dispatch and get remove expired ones met on the way', () => {
  const { q, take } = setup();
  q.enqueue(1, 1, 0, 'a', { expiresAt: 5 });
  q.enqueue(2, 1, 0, 'b');
  q.addConsumer(1, 0);
  q.dispatch(5);
  assert.equal(take(), [['remove', 1, 'expired', 0, 'a'], ['deliver', 1, 2, 0, false, 'b']]);
  q.enqueue(3, 1, 6, 'c', { expiresAt: 7 });
  q.cancelConsumer(1, false, 7);
  const out = new GetResult();
  assert.not.ok(q.get(7, null, out));
  assert.equal(take(), [['remove', 3, 'expired', 0, 'c']]);
  assert.is(out.id, -1);
});

test('expiry does not apply to unacked messages; a requeued message past its expiry expires instead of returning', () => {
  const { q, take } = setup({ messageTtl: 10 });
  fill(q, 1, 2);
  q.addConsumer(1, 0);
  q.dispatch(0);
  take();
  q.tick(50);
  assert.equal(take(), []);
  assert.ok(q.nack(1, true, 50));
  assert.equal(take(), [['remove', 1, 'expired', 1, 'p1']]);
  assert.is(q.counters.returned, 0);
  q.releaseOwner(1, 50);
  assert.equal(take(), [['remove', 2, 'expired', 1, 'p2']]);
  g6(q);
});

test('delayed publish: skipped while not due (later ones pass), then delivered in id order', () => {
  const { q, take } = setup();
  q.enqueue(1, 1, 0, 'a', { readyAt: 10 });
  q.enqueue(2, 1, 0, 'b');
  q.enqueue(3, 1, 0, 'c', { readyAt: 10 });
  q.addConsumer(1, 1);
  assert.is(q.ready, 3, 'delayed messages count as ready');
  q.dispatch(0);
  assert.equal(delivered(take()), [2]);
  assert.is(q.nextDeadline(), 10);
  q.ack(2);
  q.dispatch(9);
  assert.equal(delivered(take()), []);
  q.enqueue(4, 1, 9, 'd');
  q.dispatch(10);
  assert.equal(delivered(take()), [1]);
  q.ack(1);
  q.dispatch(10);
  assert.equal(delivered(take()), [3]);
});

test('redelivery delay: a returned message waits, others pass, then it takes its place again', () => {
  const { q, take } = setup({ redeliveryDelay: 100 });
  fill(q, 1, 3);
  q.addConsumer(1, 1);
  q.dispatch(0);
  q.nack(1, true, 0);
  assert.equal(take(), [['deliver', 1, 1, 0, false, 'p1'], ['returned', 1, 1]]);
  assert.is(q.nextDeadline(), 100);
  q.dispatch(50);
  assert.equal(delivered(take()), [2]);
  q.ack(2);
  q.tick(100);
  q.dispatch(100);
  assert.equal(take(), [['remove', 2, 'acked', 0, 'p2'], ['deliver', 1, 1, 1, true, 'p1']]);
});

test('delivery limit boundary: returned up to the limit, dead-lettered on the return that exceeds it', () => {
  const { q, take } = setup({ deliveryLimit: 2 });
  fill(q, 1, 1);
  q.addConsumer(1, 0);
  for (let r = 1; r <= 2; r++) {
    q.dispatch(0);
    q.nack(1, true, 0);
    assert.equal(take(), [['deliver', 1, 1, r - 1, r > 1, 'p1'], ['returned', 1, r]]);
  }
  q.dispatch(0);
  q.nack(1, true, 0);
  assert.equal(take(), [['deliver', 1, 1, 2, true, 'p1'], ['remove', 1, 'delivery_limit', 3, 'p1']]);
  assert.is(q.counters.deliveryLimit, 1);
  assert.is(q.counters.returned, 2);
  g6(q);
});

test('delivery limit 0: the first return dead-letters; recovered counts apply', () => {
  const { q, take } = setup({ deliveryLimit: 0 });
  fill(q, 1, 1);
  q.addConsumer(1, 0);
  q.dispatch(0);
  q.releaseOwner(1, 0);
  assert.equal(take().slice(1), [['remove', 1, 'delivery_limit', 1, 'p1']]);
  const r = setup({ deliveryLimit: 3 });
  r.q.enqueue(9, 1, 0, 'x', { deliveryCount: 3 });
  r.q.addConsumer(1, 0);
  r.q.dispatch(0);
  r.q.nack(9, true, 0);
  assert.equal(r.take(), [['deliver', 1, 9, 3, true, 'x'], ['remove', 9, 'delivery_limit', 4, 'x']]);
});

test('recovery: redelivered flag without a count', () => {
  const { q, take } = setup();
  q.enqueue(1, 1, 0, 'a', { redelivered: true });
  q.addConsumer(1, 0);
  q.dispatch(0);
  assert.equal(take(), [['deliver', 1, 1, 0, true, 'a']]);
  assert.is(q.counters.redelivered, 1);
});

test('consumer timeout: the oldest unacked delivery decides; all its messages return, then the event', () => {
  const { q, take } = setup({ consumerTimeout: 30 });
  fill(q, 1, 4);
  q.addConsumer(1, 2);
  q.addConsumer(2, 2);
  q.dispatch(0); // 1→c1, 2→c2, 3→c1, 4→c2
  take();
  q.ack(2);
  q.ack(4);
  fill(q, 5, 5, 20);
  q.dispatch(20); // 5→c2 at 20
  take();
  assert.is(q.nextDeadline(), 30);
  q.tick(29);
  assert.equal(take(), []);
  q.tick(30);
  assert.equal(take(), [['returned', 1, 1], ['returned', 3, 1], ['timeout', 1]]);
  assert.is(q.consumerCount, 1);
  assert.is(q.nextDeadline(), 50);
  q.tick(50);
  assert.equal(take(), [['returned', 5, 1], ['timeout', 2]]);
  assert.is(q.consumerCount, 0);
  assert.is(q.ready, 3);
  g6(q);
});

test('consumer timeout resets when the old delivery is acked', () => {
  const { q, take } = setup({ consumerTimeout: 30 });
  fill(q, 1, 1, 0);
  q.addConsumer(1, 0);
  q.dispatch(0);
  fill(q, 2, 2, 25);
  q.dispatch(25);
  q.ack(1);
  take();
  q.tick(40);
  assert.equal(take(), []);
  assert.is(q.nextDeadline(), 55);
});

test('exclusive consumers', () => {
  const { q } = setup();
  assert.is(q.addConsumer(1, 0, true), 'ok');
  assert.is(q.addConsumer(2, 0), 'exclusive-locked');
  assert.is(q.addConsumer(3, 0, true), 'exclusive-locked');
  q.cancelConsumer(1, true, 0);
  assert.is(q.addConsumer(2, 0), 'ok');
  assert.is(q.addConsumer(3, 0, true), 'exclusive-locked', 'exclusive requested while others exist');
  assert.throws(() => q.addConsumer(2, 0), /already exists/);
});

test('get without owner auto-acks; with an owner the message is unacked under it', () => {
  const { q, take } = setup();
  fill(q, 1, 3);
  const out = new GetResult();
  assert.ok(q.get(0, null, out));
  assert.equal({ ...out }, { id: 1, deliveryCount: 0, redelivered: false, payload: 'p1', remaining: 2 });
  assert.equal(take(), [['remove', 1, 'acked', 0, 'p1']]);
  assert.ok(q.get(0, 42, out));
  assert.is(out.id, 2);
  assert.is(out.remaining, 1);
  assert.ok(q.isUnacked(2));
  assert.equal(take(), [], 'get emits no deliver event');
  q.nack(2, true, 0);
  assert.ok(q.get(0, 42, out));
  assert.equal({ ...out }, { id: 2, deliveryCount: 1, redelivered: true, payload: 'p2', remaining: 1 });
  assert.is(q.counters.delivered, 3);
  assert.is(q.counters.redelivered, 1);
  assert.is(q.releaseOwner(42, 0), 1);
  assert.is(q.ready, 2);
  g6(q);
});

test('ack and nack return false for ids that are not unacked', () => {
  const { q, take } = setup();
  fill(q, 1, 2);
  assert.not.ok(q.ack(1), 'ready');
  assert.not.ok(q.ack(99), 'unknown');
  q.addConsumer(1, 1);
  q.dispatch(0);
  assert.ok(q.ack(1));
  assert.not.ok(q.ack(1), 'already acked');
  assert.not.ok(q.nack(1, true, 0));
  assert.not.ok(q.isUnacked(2));
  take();
  assert.equal(take(), []);
});

test('ackUpTo acks the owner\'s messages in delivery order through the given one, only that owner\'s', () => {
  const { q, take } = setup();
  fill(q, 1, 6);
  q.addConsumer(1, 0);
  q.addConsumer(2, 0);
  q.dispatch(0); // c1: 1 3 5, c2: 2 4 6
  q.nack(1, true, 0);
  assert.ok(q.get(0, 2, new GetResult())); // 1 → owner 2 (its list in delivery order: 2 4 6 1)
  take();
  assert.is(q.ackUpTo(2, 4), 2, 'through 4 in delivery order: 2 and 4, not 1 (delivered after)');
  assert.equal(take(), [['remove', 2, 'acked', 0, 'p2'], ['remove', 4, 'acked', 0, 'p4']]);
  assert.is(q.ackUpTo(2, 3), 0, '3 is not an unacked message of owner 2');
  assert.is(q.ackUpTo(1, 100), 0, 'no message 100');
  assert.is(q.ackUpTo(1, 5), 2);
  assert.equal(removed(take()), [3, 5]);
  assert.is(q.ackUpTo(9, 100), 0);
  assert.is(q.unacked, 2);
  assert.is(q.ackUpTo(2, 1), 2, 'through 1, the last delivery: 6 and 1');
  assert.equal(removed(take()), [6, 1]);
  g6(q);
});

test('nackUpTo with and without requeue', () => {
  const { q, take } = setup();
  fill(q, 1, 4);
  q.addConsumer(1, 0);
  q.dispatch(0);
  take();
  assert.is(q.nackUpTo(1, 2, false, 0), 2);
  assert.equal(take(), [['remove', 1, 'rejected', 0, 'p1'], ['remove', 2, 'rejected', 0, 'p2']]);
  assert.is(q.nackUpTo(1, 4, true, 0), 2);
  assert.equal(take(), [['returned', 3, 1], ['returned', 4, 1]]);
  assert.is(q.counters.rejected, 2);
  assert.is(q.counters.returned, 2);
  g6(q);
});

test('cancel without requeue: messages stay unacked, ackable by id and returned by releaseOwner', () => {
  const { q, take } = setup();
  fill(q, 1, 3);
  q.addConsumer(1, 0);
  q.dispatch(0);
  take();
  assert.ok(q.cancelConsumer(1, false, 0));
  assert.not.ok(q.cancelConsumer(1, false, 0));
  assert.is(q.consumerCount, 0);
  assert.is(q.unacked, 3);
  assert.ok(q.ack(2));
  assert.is(q.releaseOwner(1, 0), 2);
  assert.equal(take(), [['remove', 2, 'acked', 0, 'p2'], ['returned', 1, 1], ['returned', 3, 1]]);
  assert.is(q.releaseOwner(1, 0), 0);
});

test('cancel with requeue returns in place; releaseOwner removes the consumer', () => {
  const { q, take } = setup();
  fill(q, 1, 3);
  q.addConsumer(1, 2);
  q.addConsumer(2, 1);
  q.dispatch(0);
  take();
  assert.ok(q.cancelConsumer(1, true, 0));
  assert.equal(take(), [['returned', 1, 1], ['returned', 3, 1]]);
  assert.is(q.releaseOwner(2, 0), 1);
  assert.is(q.consumerCount, 0);
  q.addConsumer(3, 0);
  q.dispatch(0);
  assert.equal(delivered(take().slice(1)), [1, 2, 3]);
});

test('purge removes ready and delayed messages, not unacked ones', () => {
  const { q, take } = setup({ messageTtl: 100 });
  fill(q, 1, 3);
  q.enqueue(4, 1, 0, 'p4', { readyAt: 50 });
  q.enqueue(5, 1, 0, 'p5', { expiresAt: 20 });
  q.addConsumer(1, 1);
  q.dispatch(0);
  take();
  assert.is(q.purge(), 4);
  assert.equal(take(), [['remove', 2, 'purged', 0, 'p2'], ['remove', 3, 'purged', 0, 'p3'], ['remove', 4, 'purged', 0, 'p4'], ['remove', 5, 'purged', 0, 'p5']]);
  assert.is(q.ready, 0);
  assert.is(q.readyBytes, 0);
  assert.is(q.nextDeadline(), Infinity);
  q.tick(1000);
  assert.equal(take(), []);
  assert.ok(q.nack(1, true, 1000));
  assert.equal(take(), [['remove', 1, 'expired', 1, 'p1']]);
  g6(q);
});

test('deleteAll removes everything in id order with reason deleted', () => {
  const { q, take } = setup();
  fill(q, 1, 4);
  q.addConsumer(1, 2);
  q.dispatch(0);
  take();
  assert.is(q.deleteAll(), 4);
  assert.equal(take(), [1, 2, 3, 4].map((id) => ['remove', id, 'deleted', 0, `p${id}`]));
  assert.is(q.ready + q.unacked, 0);
  assert.not.ok(q.ack(1));
  assert.is(q.counters.deleted, 4);
  g6(q);
});

test('counters: every path counted once', () => {
  const { q } = setup({ maxLength: 3, deliveryLimit: 0, messageTtl: 10 });
  fill(q, 1, 5); // 1, 2 dropped
  q.addConsumer(1, 0);
  q.dispatch(0); // 3 4 5
  q.ack(3);
  q.nack(4, false, 0);
  q.nack(5, true, 0); // delivery_limit
  fill(q, 6, 7);
  q.tick(10); // both expired
  fill(q, 8, 8, 10);
  q.purge();
  assert.equal({ ...q.counters }, { routed: 8, delivered: 3, redelivered: 0, acked: 1, rejected: 1, deliveryLimit: 1, expired: 2, maxlen: 2, purged: 1, deleted: 0, returned: 0, rejectedPublishes: 0 });
  g6(q);
});

test('large ids (beyond 2^32) and sparse ids are found for ack', () => {
  const { q, take } = setup();
  const base = 2 ** 40;
  for (let k = 0; k < 100; k++) q.enqueue(base + k * 7, 1, 0, k);
  q.addConsumer(1, 0);
  q.dispatch(0);
  take();
  for (let k = 99; k >= 0; k -= 2) assert.ok(q.ack(base + k * 7));
  assert.not.ok(q.ack(base + 1));
  assert.is(q.unacked, 50);
});

test('a message held unacked at the head does not make the deque grow with throughput (compaction)', () => {
  const { q } = setup();
  q.addConsumer(1, 0);
  q.enqueue(1, 1, 0, null);
  q.dispatch(0); // 1 stays unacked for the whole test
  for (let id = 2; id < 200_000; id++) {
    q.enqueue(id, 1, 0, null);
    q.dispatch(0);
    q.ack(id);
  }
  const cap = (q as unknown as { cap: number }).cap;
  assert.ok(cap <= 64, `deque capacity ${cap}`);
  assert.ok(q.isUnacked(1));
  assert.ok(q.ack(1));
});

test('a deep queue grows and keeps order across growth with returns and delays interleaved', () => {
  const { q, take } = setup();
  for (let id = 1; id <= 5000; id++) q.enqueue(id, 1, 0, id, id % 97 === 0 ? { readyAt: 10 } : undefined);
  q.addConsumer(1, 0);
  q.dispatch(0, 100);
  for (let id = 1; id <= 100; id += 3) q.nack(id, true, 0);
  take();
  q.tick(10);
  q.dispatch(10);
  const ids = delivered(take());
  const sorted = [...ids].sort((a, b) => (a as number) - (b as number));
  assert.equal(ids, sorted);
  assert.is(q.ready, 0);
  assert.is(q.unacked, 5000);
});

test.run();
