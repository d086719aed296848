/**
 * Known histories for `ringmq fuzz --self-check` and the checker's tests:
 * known-bad ones (at least one per guarantee G1–G10 the checker checks),
 * each of which must be rejected with exactly the guarantee it breaks, and
 * known-good ones (failures handled as promised) that must pass. They are
 * written by hand, small enough to read: the proof that the checker can fail,
 * and that it does not fail on what the guarantees allow.
 */
import { bodyCrc, historyOf, makeBody, type HistoryEventBody, type QueueSpec, type QueueStatsSnapshot } from './history.js';
import type { History } from './history.js';
import type { Guarantee } from './checker.js';

export interface KnownHistory {
  name: string;
  /** The guarantee it must be rejected with (null: it must pass). */
  expect: Guarantee | null;
  history: History;
}

type Ev = HistoryEventBody;
const LEN = 12;
const crcOf = (m: number, len = LEN): number => bodyCrc(makeBody(m, len));

const start = (o: { ringBytes?: number; fsync?: string; network?: boolean } = {}): Ev[] => [
  { k: 'run', seed: 0, target: 'selfcheck', fsync: o.fsync ?? 'always', shards: 1, ringBytes: o.ringBytes ?? 1 << 20, segmentBytes: 1 << 20, faults: [], replay: 'ringmq fuzz --self-check', ...(o.network ? { orderedDeliveries: false } : {}) },
  { k: 'restart' },
  { k: 'stats', phase: 'baseline', clean: true, queues: {} },
];
const queue = (q: string, spec: Partial<QueueSpec> = {}): Ev => ({ k: 'queue', q, spec: { name: q, durable: true, ...spec } });
const pub = (m: number, key: string, o: Partial<Extract<Ev, { k: 'publish' }>> = {}): Ev => ({
  k: 'publish', m, p: 0, x: '', key, persistent: true, mandatory: false, confirm: true, len: LEN, crc: crcOf(m, o.len ?? LEN), ...o,
});
const ok = (m: number): Ev => ({ k: 'confirm', m, ok: true });
const nacked = (m: number): Ev => ({ k: 'confirm', m, ok: false, code: 'ERR_REJECTED' });
const dlv = (m: number, q: string, c: string, tag: number, o: Partial<Extract<Ev, { k: 'deliver' }>> = {}): Ev => ({
  k: 'deliver', m, q, c, tag, red: false, count: 0, crc: crcOf(m), len: LEN, ...o,
});
const ack = (tag: number): Ev => ({ k: 'settle', tag, kind: 'ack', requeue: false });
const nack = (tag: number, requeue: boolean): Ev => ({ k: 'settle', tag, kind: 'nack', requeue });
const reject = (tag: number): Ev => ({ k: 'settle', tag, kind: 'reject', requeue: false });
const consume = (c: string, q: string, prefetch = 0): Ev => ({ k: 'consume', c, q, prefetch, noAck: false, owner: 1 });
const kill: Ev = { k: 'kill' };
const restart: Ev = { k: 'restart' };
const close: Ev = { k: 'close' };
const drained: Ev = { k: 'drained' };
const baseline = (queues: Record<string, QueueStatsSnapshot> = {}): Ev => ({ k: 'stats', phase: 'baseline', clean: true, queues });
const counters = (c: Partial<Record<string, number>>): Record<string, number> => ({
  routed: 0, delivered: 0, redelivered: 0, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0, deleted: 0, returned: 0, rejectedPublishes: 0, ...c,
} as Record<string, number>);
const death = (queue: string, reason: string, o: Partial<Extract<Ev, { k: 'deliver' }>['death'] & object> = {}) => ({
  queue, reason, count: 1, exchange: '', keys: [queue], time: true, firstReason: reason, firstQueue: queue, ...o,
});
const DLX: Ev[] = [
  { k: 'exchange', x: 'dlx', type: 'fanout', durable: true },
  queue('dlq'),
  { k: 'bind', q: 'dlq', x: 'dlx', key: '' },
];

const h = (...evs: (Ev | Ev[])[]): History => historyOf(evs.flat());

export const BAD_HISTORIES: KnownHistory[] = [
  // ---- G1 ----
  { name: 'a confirmed persistent message is missing after a SIGKILL', expect: 'G1',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), kill, restart, baseline(), drained) },
  { name: 'a confirmed message is missing after a clean restart', expect: 'G1',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), close, restart, baseline(), drained) },
  { name: 'a torn tail took a confirmed message (cut past the durable point only)', expect: 'G1',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), pub(2, 'q'), kill, { k: 'torn', shard: 0, file: 'shard-0/x.seg', durableSeq: 1, cutAt: 100, size: 200 }, restart, baseline(), dlv(2, 'q', 'get:9', 1, { red: true }), ack(1), drained) },
  { name: 'a recovered message comes back with a different body', expect: 'G1',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), kill, restart, baseline(), dlv(1, 'q', 'get:9', 1, { red: true, crc: 12345 }), ack(1), drained) },
  // ---- G2 ----
  { name: 'a nacked (requeue) message is never delivered again', expect: 'G2',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), nack(1, true), drained) },
  { name: 'a message unacked at a crash comes back without the redelivered flag', expect: 'G2',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), kill, restart, baseline(), dlv(1, 'q', 'get:9', 1, { count: 1 }), ack(1), drained) },
  { name: 'a message returned by a cancel comes back with its count not raised', expect: 'G2',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), { k: 'cancel', c: 'c1' }, dlv(1, 'q', 'get:9', 2, { red: true, count: 0 }), ack(2), drained) },
  { name: 'a message is delivered with a count over the delivery limit', expect: 'G2',
    history: h(start(), queue('q', { deliveryLimit: 1 }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), nack(1, true),
      dlv(1, 'q', 'c1', 2, { red: true, count: 1 }), nack(2, true), dlv(1, 'q', 'c1', 3, { red: true, count: 2 }), ack(3), drained) },
  { name: 'over a network, a message returned by a close comes back unflagged (its dead letter had been seen while it was held)', expect: 'G2',
    history: h(start({ network: true }), DLX, queue('q', { deadLetterExchange: 'dlx', deliveryLimit: 0 }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'delivery_limit') }), ack(2), { k: 'disconnect', owner: 1 }, dlv(1, 'q', 'get:9', 3), ack(3), drained) },
  { name: 'over a network, an unflagged second delivery with no ack timeout of its consumer to explain it', expect: 'G3',
    history: h(start({ network: true }), queue('q', { consumerTimeout: 100 }), consume('c1', 'q'), consume('c2', 'q'), pub(1, 'q'), ok(1),
      dlv(1, 'q', 'c2', 2, { red: true, count: 1 }), ack(2), dlv(1, 'q', 'c1', 1), ack(1), drained) },
  { name: 'a message held past the ack timeout never comes back', expect: 'G2',
    history: h(start(), queue('q', { consumerTimeout: 100 }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), { k: 'timeout', c: 'c1' }, drained) },
  // ---- G3 ----
  { name: 'an acked message is delivered again with no failure', expect: 'G3',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), ack(1), dlv(1, 'q', 'c1', 2), ack(2), drained) },
  { name: 'a message is delivered to two consumers at once', expect: 'G3',
    history: h(start(), queue('q'), consume('c1', 'q'), consume('c2', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), dlv(1, 'q', 'c2', 2), ack(1), ack(2), drained) },
  { name: 'a routed message is never delivered (no failure at all)', expect: 'G3',
    history: h(start(), queue('q'), pub(1, 'q', { confirm: false }), drained) },
  { name: 'an acked message is delivered again after a clean restart (G5)', expect: 'G3',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), ack(1), close, restart, baseline(), dlv(1, 'q', 'get:9', 1, { red: true }), ack(1), drained) },
  // ---- G4 ----
  { name: 'two messages of one publisher are delivered in the wrong order', expect: 'G4',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), pub(2, 'q'), ok(1), ok(2), dlv(2, 'q', 'c1', 1), dlv(1, 'q', 'c1', 2), ack(1), ack(2), drained) },
  { name: 'a requeued message does not go back to its place (only consumer, prefetch 1)', expect: 'G4',
    history: h(start(), queue('q'), consume('c1', 'q', 1), pub(1, 'q'), pub(2, 'q'), ok(1), ok(2), dlv(1, 'q', 'c1', 1), nack(1, true),
      dlv(2, 'q', 'c1', 2), ack(2), dlv(1, 'q', 'c1', 3, { red: true, count: 1 }), ack(3), drained) },
  // ---- G6 ----
  { name: 'the counters do not add up (routed != acked + ready + ...)', expect: 'G6',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), pub(2, 'q'), ok(2), pub(3, 'q'), ok(3),
      { k: 'stats', phase: 'quiet', clean: false, queues: { q: { ready: 1, unacked: 0, consumers: 0, counters: counters({ routed: 3, acked: 1 }) } } },
      dlv(1, 'q', 'get:9', 1), ack(1), dlv(2, 'q', 'get:9', 2), ack(2), dlv(3, 'q', 'get:9', 3), ack(3), drained) },
  { name: 'the broker reports no unacked message while one is delivered and not settled', expect: 'G6',
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1),
      { k: 'stats', phase: 'quiet', clean: true, queues: { q: { ready: 1, unacked: 0, consumers: 1, counters: counters({ routed: 1, delivered: 1 }) } } },
      ack(1), drained) },
  { name: 'the broker counted fewer routed messages than were routed', expect: 'G6',
    history: h(start(), queue('q'), pub(1, 'q'), ok(1), pub(2, 'q'), ok(2),
      { k: 'stats', phase: 'quiet', clean: true, queues: { q: { ready: 1, unacked: 0, consumers: 0, counters: counters({ routed: 1 }) } } },
      dlv(1, 'q', 'get:9', 1), ack(1), dlv(2, 'q', 'get:9', 2), ack(2), drained) },
  // ---- G7 ----
  { name: 'a rejected message is dead-lettered with reason expired (no TTL anywhere)', expect: 'G7',
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx' }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), reject(1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'expired') }), ack(2), drained) },
  { name: 'a dead letter loses its body', expect: 'G7',
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx' }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), reject(1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'rejected'), len: 0, crc: 0 }), ack(2), drained) },
  { name: 'a dead letter has a wrong x-death exchange and no time', expect: 'G7',
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx' }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), reject(1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'rejected', { exchange: 'amq.direct', time: false }) }), ack(2), drained) },
  { name: 'a rejected message never arrives in the dead-letter queue', expect: 'G7',
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx' }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), reject(1), drained) },
  { name: 'delivery_limit before the limit was reached', expect: 'G7',
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx', deliveryLimit: 3 }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), nack(1, true),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'delivery_limit') }), ack(2), drained) },
  // ---- G8 ----
  { name: 'a fan-out misses one bound queue', expect: 'G8',
    history: h(start(), queue('q1'), queue('q2'), { k: 'exchange', x: 'f', type: 'fanout', durable: true }, { k: 'bind', q: 'q1', x: 'f', key: '' }, { k: 'bind', q: 'q2', x: 'f', key: '' },
      pub(1, '', { x: 'f' }), ok(1), dlv(1, 'q1', 'get:9', 1), ack(1), drained) },
  { name: 'a message reaches a queue its routing key does not match (topic)', expect: 'G8',
    history: h(start(), queue('q1'), queue('q2'), { k: 'exchange', x: 't', type: 'topic', durable: true }, { k: 'bind', q: 'q1', x: 't', key: 'a.*' }, { k: 'bind', q: 'q2', x: 't', key: 'b.#' },
      pub(1, 'a.b', { x: 't' }), ok(1), dlv(1, 'q1', 'get:9', 1), ack(1), dlv(1, 'q2', 'get:9', 2), ack(2), drained) },
  { name: 'a routable message is returned as unroutable', expect: 'G8',
    history: h(start(), queue('q'), pub(1, 'q', { mandatory: true }), { k: 'return', m: 1 }, ok(1), dlv(1, 'q', 'get:9', 1), ack(1), drained) },
  // ---- G9 ----
  { name: 'a request gets the reply of another request', expect: 'G9',
    history: h(start(), queue('rpc', { durable: false }), { k: 'rpc-request', r: 1, q: 'rpc', timeout: 100 }, { k: 'rpc-request', r: 2, q: 'rpc', timeout: 100 },
      { k: 'rpc-reply', r: 1, body: 're:rq:2' }, { k: 'rpc-reply', r: 2, body: 're:rq:2' }, drained) },
  { name: 'a request never ends (no reply, no timeout)', expect: 'G9',
    history: h(start(), queue('rpc', { durable: false }), { k: 'rpc-request', r: 1, q: 'rpc', timeout: 100 }, drained) },
  { name: 'a request ends twice (a reply after its timeout)', expect: 'G9',
    history: h(start(), queue('rpc', { durable: false }), { k: 'rpc-request', r: 1, q: 'rpc', timeout: 100 }, { k: 'rpc-timeout', r: 1 }, { k: 'rpc-reply', r: 1, body: 're:rq:1' }, drained) },
  // ---- G10 ----
  { name: 'a confirmed message published under backpressure (full ring) is dropped', expect: 'G10',
    history: h(start(), queue('q'), pub(1, 'q'), { k: 'backpressure', m: 1 }, pub(2, 'q'), ok(1), ok(2), dlv(2, 'q', 'get:9', 1), ack(1), drained) },
  { name: 'a reject-publish queue drops a message it confirmed', expect: 'G10',
    history: h(start(), queue('q', { maxLength: 1, overflow: 'reject-publish' }), pub(1, 'q'), ok(1), pub(2, 'q'), nacked(2), drained) },
];

export const GOOD_HISTORIES: KnownHistory[] = [
  { name: 'publish, confirm, deliver, ack', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), ack(1), drained) },
  { name: 'an unacked message comes back after a kill, flagged, count raised', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), kill, restart, baseline(), dlv(1, 'q', 'get:9', 1, { red: true, count: 1 }), ack(1), drained) },
  { name: 'an ack the kill undid: the message comes back redelivered', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), ack(1), kill, restart, baseline(), dlv(1, 'q', 'get:9', 1, { red: true, count: 1 }), ack(1), drained) },
  { name: 'a torn tail lost the delivery count record: not raised, but flagged', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), kill, { k: 'torn', shard: 0, file: 'shard-0/x.seg', durableSeq: 1, cutAt: 40, size: 60 }, restart, baseline(), dlv(1, 'q', 'get:9', 1, { red: true, count: 0 }), ack(1), drained) },
  { name: 'unconfirmed and transient messages may vanish at a kill; non-durable queues at a restart', expect: null,
    history: h(start(), queue('q'), queue('t', { durable: false }), pub(1, 'q'), pub(2, 'q', { persistent: false }), ok(2), pub(3, 't'), ok(3), kill, restart, baseline(), queue('t', { durable: false }), drained) },
  { name: 'purged and deleted queues take their messages', expect: null,
    history: h(start(), queue('q'), queue('r'), pub(1, 'q'), ok(1), pub(2, 'r'), ok(2), { k: 'purge', q: 'q', count: 1 }, { k: 'delete', q: 'r', count: 1 }, drained) },
  { name: 'nack with requeue: back in its place, flagged, count raised', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q', 1), pub(1, 'q'), pub(2, 'q'), ok(1), ok(2), dlv(1, 'q', 'c1', 1), nack(1, true),
      dlv(1, 'q', 'c1', 2, { red: true, count: 1 }), ack(2), dlv(2, 'q', 'c1', 3), ack(3), drained) },
  { name: 'dead letters with the right reasons (rejected, expired, maxlen, delivery_limit)', expect: null,
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx', deliveryLimit: 0, messageTtl: 50, maxLength: 5 }), consume('c1', 'q'),
      pub(1, 'q'), ok(1), pub(2, 'q'), ok(2), pub(3, 'q'), ok(3), pub(4, 'q'), ok(4),
      dlv(1, 'q', 'c1', 1), reject(1), dlv(2, 'q', 'c1', 2), nack(2, true),
      dlv(1, 'dlq', 'get:9', 3, { death: death('q', 'rejected') }), ack(3),
      dlv(2, 'dlq', 'get:9', 4, { death: death('q', 'delivery_limit') }), ack(4),
      dlv(3, 'dlq', 'get:9', 5, { death: death('q', 'expired') }), ack(5),
      dlv(4, 'dlq', 'get:9', 6, { death: death('q', 'maxlen') }), ack(6), drained) },
  { name: 'a fan-out reaches every bound queue once; a mandatory unroutable message is returned', expect: null,
    history: h(start(), queue('q1'), queue('q2'), { k: 'exchange', x: 'f', type: 'fanout', durable: true }, { k: 'bind', q: 'q1', x: 'f', key: '' }, { k: 'bind', q: 'q2', x: 'f', key: '' },
      pub(1, '', { x: 'f' }), ok(1), pub(2, 'nowhere', { mandatory: true }), { k: 'return', m: 2 }, ok(2),
      dlv(1, 'q1', 'get:9', 1), ack(1), dlv(1, 'q2', 'get:9', 2), ack(2), drained) },
  { name: 'requests end with their own reply or a timeout', expect: null,
    history: h(start(), queue('rpc', { durable: false }), { k: 'rpc-request', r: 1, q: 'rpc', timeout: 100 }, { k: 'rpc-request', r: 2, q: 'rpc', timeout: 100 },
      { k: 'rpc-reply', r: 2, body: 're:rq:2' }, { k: 'rpc-timeout', r: 1 }, drained) },
  { name: 'counters that add up and agree with the history', expect: null,
    history: h(start(), queue('q'), consume('c1', 'q'), pub(1, 'q'), ok(1), pub(2, 'q'), ok(2), dlv(1, 'q', 'c1', 1), ack(1), dlv(2, 'q', 'c1', 2),
      { k: 'stats', phase: 'quiet', clean: true, queues: { q: { ready: 0, unacked: 1, consumers: 1, counters: counters({ routed: 2, delivered: 2, acked: 1 }) } } },
      ack(2), drained) },
  { name: 'reject-publish refuses with a nack: nothing confirmed is missing', expect: null,
    history: h(start(), queue('q', { maxLength: 1, overflow: 'reject-publish' }), pub(1, 'q'), ok(1), pub(2, 'q'), nacked(2), dlv(1, 'q', 'get:9', 1), ack(1), drained) },
  { name: 'over a network, the dead letter of a return (delivery_limit) is seen before the close that returned it', expect: null,
    history: h(start({ network: true }), DLX, queue('q', { deadLetterExchange: 'dlx', deliveryLimit: 0 }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'delivery_limit') }), ack(2), { k: 'disconnect', owner: 1 }, drained) },
  { name: 'over a network, a delivery reported after the redelivery that its consumer\'s ack timeout (reported later still) caused', expect: null,
    history: h(start({ network: true }), queue('q', { consumerTimeout: 100 }), consume('c1', 'q'), consume('c2', 'q'), pub(1, 'q'), ok(1),
      dlv(1, 'q', 'c2', 2, { red: true, count: 1 }), ack(2), dlv(1, 'q', 'c1', 1), nack(1, true), { k: 'timeout', c: 'c1' }, drained) },
  { name: 'a dead letter duplicated by a kill (at-least-once dead-lettering)', expect: null,
    history: h(start(), DLX, queue('q', { deadLetterExchange: 'dlx' }), consume('c1', 'q'), pub(1, 'q'), ok(1), dlv(1, 'q', 'c1', 1), reject(1),
      dlv(1, 'dlq', 'get:9', 2, { death: death('q', 'rejected') }), ack(2), kill, restart, baseline(),
      dlv(1, 'dlq', 'get:9', 1, { death: death('q', 'rejected') }), ack(1), drained) },
];
