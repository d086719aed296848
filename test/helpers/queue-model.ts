/**
 * A reference model of src/queue/queue.ts for property tests: the same rules
 * written the obvious way — one array of message objects in id order, linear
 * scans, sorting — with no attention to speed. Every event is recorded as an
 * array so a run can be compared with the real Queue's, in order.
 */
import type { QueueArgs, QueueCounters, QueueEvents, RemoveReason } from '../../src/queue/queue.js';

export type QueueEvent =
  | ['deliver', number, number, number, boolean, unknown]
  | ['remove', number, RemoveReason, number, unknown]
  | ['returned', number, number]
  | ['timeout', number];

export interface MMsg {
  id: number;
  size: number;
  payload: unknown;
  expiry: number;
  readyAt: number;
  count: number;
  redelivered: boolean;
  unacked: boolean;
  owner: number;
  deliveredAt: number;
}

/** QueueEvents that append each event to `events` as a QueueEvent. */
export function recordEvents(events: QueueEvent[]): QueueEvents {
  return {
    deliver: (c, id, n, r, p) => void events.push(['deliver', c, id, n, r, p]),
    remove: (id, reason, n, p) => void events.push(['remove', id, reason, n, p]),
    returned: (id, n) => void events.push(['returned', id, n]),
    consumerTimedOut: (c) => void events.push(['timeout', c]),
  };
}

interface MOwner { consumer: boolean; prefetch: number; exclusive: boolean; list: MMsg[] }

export function newCounters(): QueueCounters {
  return { routed: 0, delivered: 0, redelivered: 0, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0, deleted: 0, returned: 0, rejectedPublishes: 0 };
}

export class QueueModel {
  readonly events: QueueEvent[] = [];
  readonly counters = newCounters();
  /** Live messages (ready and unacked), in id order. */
  msgs: MMsg[] = [];
  readonly owners = new Map<number, MOwner>();
  /** Consumer numbers in round-robin order. */
  consumers: number[] = [];
  rr = 0;
  now = 0;

  constructor(readonly args: QueueArgs) {}

  get ready(): number { return this.msgs.filter((m) => !m.unacked).length; }
  get unacked(): number { return this.msgs.filter((m) => m.unacked).length; }
  get readyBytes(): number { return this.msgs.filter((m) => !m.unacked).reduce((s, m) => s + m.size, 0); }

  private leave(m: MMsg, reason: RemoveReason, count: number): void {
    this.msgs = this.msgs.filter((x) => x !== m);
    const key = ({ acked: 'acked', rejected: 'rejected', expired: 'expired', maxlen: 'maxlen', delivery_limit: 'deliveryLimit', purged: 'purged', deleted: 'deleted' } as const)[reason];
    this.counters[key]++;
    this.events.push(['remove', m.id, reason, count, m.payload]);
  }

  private unlink(m: MMsg): MOwner {
    const o = this.owners.get(m.owner)!;
    o.list = o.list.filter((x) => x !== m);
    m.unacked = false;
    return o;
  }

  private forgetIfIdle(num: number): void {
    const o = this.owners.get(num);
    if (o && !o.consumer && o.list.length === 0) this.owners.delete(num);
  }

  enqueue(id: number, size: number, now: number, payload: unknown, opts: { expiresAt?: number; readyAt?: number; deliveryCount?: number; redelivered?: boolean } = {}): number {
    this.now = now;
    const a = this.args;
    const maxLen = a.maxLength ?? Infinity, maxBytes = a.maxLengthBytes ?? Infinity;
    const overflow = a.overflow ?? 'drop-head';
    if (overflow !== 'drop-head' && (this.ready + 1 > maxLen || this.readyBytes + size > maxBytes)) {
      this.counters.rejectedPublishes++;
      return overflow === 'reject-publish' ? 1 : 2;
    }
    const expiry = Math.min(opts.expiresAt ?? Infinity, a.messageTtl !== undefined ? now + a.messageTtl : Infinity);
    const count = opts.deliveryCount ?? 0;
    this.msgs.push({ id, size, payload, expiry, readyAt: opts.readyAt ?? -Infinity, count, redelivered: count > 0 || opts.redelivered === true, unacked: false, owner: -1, deliveredAt: 0 });
    this.counters.routed++;
    while (this.ready > maxLen || this.readyBytes > maxBytes) {
      const head = this.msgs.find((m) => !m.unacked)!;
      this.leave(head, 'maxlen', head.count);
    }
    return 0;
  }

  addConsumer(c: number, prefetch: number, exclusive = false): 'ok' | 'exclusive-locked' {
    const anyExclusive = this.consumers.some((n) => this.owners.get(n)!.exclusive);
    if (anyExclusive || (exclusive && this.consumers.length > 0)) return 'exclusive-locked';
    const o = this.owners.get(c) ?? { consumer: false, prefetch: 0, exclusive: false, list: [] };
    this.owners.set(c, o);
    o.consumer = true;
    o.prefetch = prefetch;
    o.exclusive = exclusive;
    this.consumers.push(c);
    return 'ok';
  }

  private dropConsumer(c: number): void {
    const at = this.consumers.indexOf(c);
    this.consumers.splice(at, 1);
    if (at < this.rr) this.rr--;
    if (this.rr >= this.consumers.length) this.rr = 0;
    const o = this.owners.get(c)!;
    o.consumer = false;
    o.exclusive = false;
    this.forgetIfIdle(c);
  }

  private giveBack(m: MMsg, now: number): void {
    this.unlink(m);
    const count = m.count + 1;
    if (count > (this.args.deliveryLimit ?? Infinity)) return this.leave(m, 'delivery_limit', count);
    if (m.expiry <= now) return this.leave(m, 'expired', count);
    m.count = count;
    m.redelivered = true;
    const delay = this.args.redeliveryDelay ?? 0;
    m.readyAt = delay > 0 ? now + delay : -Infinity;
    this.counters.returned++;
    this.events.push(['returned', m.id, count]);
  }

  private releaseAll(num: number, now: number): number {
    const o = this.owners.get(num);
    if (!o) return 0;
    const list = [...o.list];
    for (const m of list) this.giveBack(m, now);
    return list.length;
  }

  cancelConsumer(c: number, requeue: boolean, now: number): boolean {
    this.now = now;
    if (!this.owners.get(c)?.consumer) return false;
    if (requeue) this.releaseAll(c, now);
    this.dropConsumer(c);
    return true;
  }

  releaseOwner(owner: number, now: number): number {
    this.now = now;
    const o = this.owners.get(owner);
    if (!o) return 0;
    const n = this.releaseAll(owner, now);
    if (o.consumer) this.dropConsumer(owner);
    else this.forgetIfIdle(owner);
    return n;
  }

  /** The lowest-id ready, due message; expired ones met first are removed. */
  private take(now: number): MMsg | undefined {
    for (;;) {
      const m = this.msgs.find((x) => !x.unacked && x.readyAt <= now);
      if (!m) return undefined;
      if (m.expiry <= now) {
        this.leave(m, 'expired', m.count);
        continue;
      }
      return m;
    }
  }

  private deliverTo(num: number, m: MMsg, now: number): void {
    m.unacked = true;
    m.owner = num;
    m.deliveredAt = now;
    this.owners.get(num)!.list.push(m);
    this.counters.delivered++;
    if (m.redelivered) this.counters.redelivered++;
  }

  dispatch(now: number, max = Infinity): number {
    this.now = now;
    let n = 0;
    while (n < max) {
      let pick = -1;
      for (let t = 0; t < this.consumers.length; t++) {
        const j = (this.rr + t) % this.consumers.length;
        const o = this.owners.get(this.consumers[j]!)!;
        if (o.prefetch === 0 || o.list.length < o.prefetch) { pick = j; break; }
      }
      if (pick < 0) break;
      const m = this.take(now);
      if (!m) break;
      const c = this.consumers[pick]!;
      this.rr = (pick + 1) % this.consumers.length;
      this.deliverTo(c, m, now);
      this.events.push(['deliver', c, m.id, m.count, m.redelivered, m.payload]);
      n++;
    }
    return n;
  }

  get(now: number, owner: number | null): { id: number; deliveryCount: number; redelivered: boolean; payload: unknown; remaining: number } | null {
    this.now = now;
    const m = this.take(now);
    if (!m) return null;
    const r = { id: m.id, deliveryCount: m.count, redelivered: m.redelivered, payload: m.payload, remaining: 0 };
    if (owner === null) {
      this.counters.delivered++;
      if (m.redelivered) this.counters.redelivered++;
      this.leave(m, 'acked', m.count);
    } else {
      if (!this.owners.has(owner)) this.owners.set(owner, { consumer: false, prefetch: 0, exclusive: false, list: [] });
      this.deliverTo(owner, m, now);
    }
    r.remaining = this.ready;
    return r;
  }

  private unackedById(id: number): MMsg | undefined {
    return this.msgs.find((m) => m.id === id && m.unacked);
  }

  isUnacked(id: number): boolean { return this.unackedById(id) !== undefined; }

  private ackMsg(m: MMsg): void {
    this.unlink(m);
    this.leave(m, 'acked', m.count);
  }

  private rejectMsg(m: MMsg): void {
    this.unlink(m);
    this.leave(m, 'rejected', m.count);
  }

  ack(id: number): boolean {
    const m = this.unackedById(id);
    if (!m) return false;
    this.ackMsg(m);
    this.forgetIfIdle(m.owner);
    return true;
  }

  nack(id: number, requeue: boolean, now: number): boolean {
    this.now = now;
    const m = this.unackedById(id);
    if (!m) return false;
    if (requeue) this.giveBack(m, now);
    else this.rejectMsg(m);
    this.forgetIfIdle(m.owner);
    return true;
  }

  ackUpTo(owner: number, id: number): number {
    const o = this.owners.get(owner);
    if (!o) return 0;
    // Delivery order, through the message `id`, which must be one of the owner's (AMQP multiple).
    const at = o.list.findIndex((m) => m.id === id);
    if (at < 0) return 0;
    const hit = o.list.slice(0, at + 1);
    for (const m of hit) this.ackMsg(m);
    this.forgetIfIdle(owner);
    return hit.length;
  }

  nackUpTo(owner: number, id: number, requeue: boolean, now: number): number {
    this.now = now;
    const o = this.owners.get(owner);
    if (!o) return 0;
    const at = o.list.findIndex((m) => m.id === id);
    if (at < 0) return 0;
    const hit = o.list.slice(0, at + 1);
    for (const m of hit) {
      if (requeue) this.giveBack(m, now);
      else this.rejectMsg(m);
    }
    this.forgetIfIdle(owner);
    return hit.length;
  }

  tick(now: number): void {
    this.now = now;
    const due = this.msgs.filter((m) => !m.unacked && m.expiry <= now).sort((a, b) => a.expiry - b.expiry || a.id - b.id);
    for (const m of due) this.leave(m, 'expired', m.count);
    const timeout = this.args.consumerTimeout;
    if (timeout === undefined) return;
    for (const c of [...this.consumers]) {
      const o = this.owners.get(c)!;
      if (o.list.length > 0 && Math.min(...o.list.map((m) => m.deliveredAt)) + timeout <= now) {
        this.releaseAll(c, now);
        this.dropConsumer(c);
        this.events.push(['timeout', c]);
      }
    }
  }

  /** Earliest time after `now` at which something happens: an expiry, a delayed message becoming due, a consumer timeout. */
  nextDeadline(): number {
    let d = Infinity;
    for (const m of this.msgs) {
      if (m.unacked) continue;
      d = Math.min(d, m.expiry);
      if (m.readyAt > this.now) d = Math.min(d, m.readyAt);
    }
    const timeout = this.args.consumerTimeout;
    if (timeout !== undefined) {
      for (const c of this.consumers) {
        const o = this.owners.get(c)!;
        if (o.list.length > 0) d = Math.min(d, Math.min(...o.list.map((m) => m.deliveredAt)) + timeout);
      }
    }
    return d;
  }

  purge(): number {
    const ready = this.msgs.filter((m) => !m.unacked);
    for (const m of ready) this.leave(m, 'purged', m.count);
    return ready.length;
  }

  deleteAll(): number {
    const all = [...this.msgs];
    for (const m of all) {
      if (m.unacked) this.unlink(m);
      this.leave(m, 'deleted', m.count);
    }
    for (const num of [...this.owners.keys()]) this.forgetIfIdle(num);
    return all.length;
  }
}
