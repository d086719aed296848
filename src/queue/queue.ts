/**
 * One queue's semantics, pure: no threads, no files, no clock of its own
 * (time comes in as `now`, ms). A shard worker owns one Queue per queue,
 * assigns message ids, keeps bodies and the log; the Queue decides what
 * happens and says so through QueueEvents.
 *
 * Storage: an arena of message slots in publish order. A message's position
 * `pos` is a free-running number (its slot is `pos & mask`); messages are
 * appended at `tail` and the arena is reclaimed from `head` as the oldest
 * messages leave. Every per-message field is a column (typed arrays, one
 * `payload` array): no object per message, nothing allocated per message in
 * steady state. A message keeps its position for life, so:
 *  - a returned (nacked, cancelled, timed-out) message goes back to its own
 *    place, ahead of later ones (G4), by flipping its state to ready;
 *  - dispatch takes the lowest ready position: a cursor `firstReady` only
 *    moves forward, and back when a message before it becomes ready again;
 *  - ids grow with positions, so an id is found by binary search.
 * Holes (messages that left out of order) stay until `head` passes them;
 * an old unacked message therefore keeps the arena from shrinking behind it.
 *
 * Deadlines (per-message expiry, delayed and backed-off messages, ack
 * timeouts) are min-heaps of (time, pos) with lazy deletion: a popped entry
 * is checked against the slot's current state and time and dropped if stale.
 *
 * Invariants: head <= firstReady <= tail; every ready message has
 * pos >= firstReady; state[slot(pos)] is FREE for every pos < head;
 * counters satisfy routed = acked + ready + unacked + rejected +
 * deliveryLimit + expired + maxlen + purged + deleted (G6).
 */
import { PairHeap } from './heap.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';

export interface QueueArgs {
  /** ms; a message expires messageTtl after enqueue (x-message-ttl). */
  messageTtl?: number;
  /** Max READY messages (as RabbitMQ: only ready ones count). */
  maxLength?: number;
  /** Max sum of `size` of READY messages. */
  maxLengthBytes?: number;
  /** Default 'drop-head'. */
  overflow?: Overflow;
  /** A message returned more than this many times is dead-lettered ('delivery_limit'), as RabbitMQ quorum queues. */
  deliveryLimit?: number;
  /** ms; ack timeout per delivery. */
  consumerTimeout?: number;
  /** ms; a returned message is ready again only after this delay. */
  redeliveryDelay?: number;
}

export type RemoveReason = 'acked' | 'rejected' | 'expired' | 'maxlen' | 'delivery_limit' | 'purged' | 'deleted';

export interface QueueEvents {
  deliver(consumer: number, id: number, deliveryCount: number, redelivered: boolean, payload: unknown): void;
  remove(id: number, reason: RemoveReason, deliveryCount: number, payload: unknown): void;
  returned(id: number, deliveryCount: number): void;
  consumerTimedOut(consumer: number): void;
}

export interface EnqueueOptions {
  expiresAt?: number | undefined;
  readyAt?: number | undefined;
  deliveryCount?: number;
  redelivered?: boolean;
  /** Rebuilt by recovery, not published: no overflow rule applies (it was applied at publish; a restart drops nothing). */
  recovered?: boolean;
}

export const EnqueueResult = { Ok: 0, Rejected: 1, RejectedDeadLetter: 2 } as const;

export interface GetResult { id: number; deliveryCount: number; redelivered: boolean; payload: unknown; remaining: number }

export interface QueueCounters {
  routed: number;
  delivered: number;
  redelivered: number;
  acked: number;
  rejected: number;
  deliveryLimit: number;
  expired: number;
  maxlen: number;
  purged: number;
  deleted: number;
  returned: number;
  rejectedPublishes: number;
}

// Slot states.
const FREE = 0;
const READY = 1;
const DELAYED = 2; // counted as ready, not deliverable before time[slot]
const UNACKED = 3;

const FLAG_REDELIVERED = 1;

interface ConsumerState { tag: number; prefetch: number; exclusive: boolean }

export class Queue {
  readonly args: QueueArgs;
  private readonly events: QueueEvents;
  readonly counters: QueueCounters = {
    routed: 0, delivered: 0, redelivered: 0, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0, deleted: 0,
    returned: 0, rejectedPublishes: 0,
  };

  // ---- the arena (columns) ----
  private cap = 0;
  private mask = 0;
  private ids = new Float64Array(0);
  /** Expiry (ms), Infinity for none. */
  private expires = new Float64Array(0);
  /** DELAYED: ready-at; UNACKED: delivered-at. */
  private time = new Float64Array(0);
  private sizes = new Uint32Array(0);
  private counts = new Uint32Array(0);
  private owners = new Uint32Array(0);
  private state = new Uint8Array(0);
  private flags = new Uint8Array(0);
  private payloads: unknown[] = [];
  private head = 0;
  private tail = 0;
  private firstReady = 0;

  private readyCount = 0;
  private unackedCount = 0;
  private readyBytesSum = 0;

  private readonly expiryHeap = new PairHeap();
  private readonly delayHeap = new PairHeap();
  private readonly timeoutHeap = new PairHeap();

  private readonly consumers: ConsumerState[] = [];
  private rr = 0;
  /** Unacked messages per owner (consumer tag or get owner). */
  private readonly unackedBy = new Map<number, number>();

  constructor(args: QueueArgs, events: QueueEvents) {
    this.args = args;
    this.events = events;
    this.grow(16);
  }

  get ready(): number {
    return this.readyCount;
  }
  get unacked(): number {
    return this.unackedCount;
  }
  get readyBytes(): number {
    return this.readyBytesSum;
  }
  get consumerCount(): number {
    return this.consumers.length;
  }

  // ---- arena ----------------------------------------------------------------

  private grow(cap: number): void {
    const old = { ids: this.ids, expires: this.expires, time: this.time, sizes: this.sizes, counts: this.counts, owners: this.owners, state: this.state, flags: this.flags, payloads: this.payloads, mask: this.mask };
    this.cap = cap;
    this.mask = cap - 1;
    this.ids = new Float64Array(cap);
    this.expires = new Float64Array(cap);
    this.time = new Float64Array(cap);
    this.sizes = new Uint32Array(cap);
    this.counts = new Uint32Array(cap);
    this.owners = new Uint32Array(cap);
    this.state = new Uint8Array(cap);
    this.flags = new Uint8Array(cap);
    this.payloads = new Array<unknown>(cap).fill(null);
    for (let pos = this.head; pos < this.tail; pos++) {
      const a = pos & old.mask;
      const b = pos & this.mask;
      this.ids[b] = old.ids[a]!;
      this.expires[b] = old.expires[a]!;
      this.time[b] = old.time[a]!;
      this.sizes[b] = old.sizes[a]!;
      this.counts[b] = old.counts[a]!;
      this.owners[b] = old.owners[a]!;
      this.state[b] = old.state[a]!;
      this.flags[b] = old.flags[a]!;
      this.payloads[b] = old.payloads[a];
    }
  }

  /** Position of message `id`, or -1 (binary search: ids grow with positions). */
  private posOf(id: number): number {
    let lo = this.head;
    let hi = this.tail - 1;
    const ids = this.ids;
    const mask = this.mask;
    while (lo <= hi) {
      const mid = lo + ((hi - lo) >> 1);
      const v = ids[mid & mask]!;
      if (v === id) return this.state[mid & mask] === FREE ? -1 : mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Frees a slot; advances head past free slots. */
  private free(pos: number): void {
    const s = pos & this.mask;
    this.state[s] = FREE;
    this.payloads[s] = null;
    if (pos === this.head) {
      let h = this.head;
      while (h < this.tail && this.state[h & this.mask] === FREE) h++;
      this.head = h;
      if (this.firstReady < h) this.firstReady = h;
    }
  }

  // ---- enqueue ------------------------------------------------------------

  enqueue(id: number, size: number, now: number, payload: unknown, opts?: EnqueueOptions): number {
    const a = this.args;
    // Overflow: the new message must fit (ready count and bytes).
    if ((a.maxLength !== undefined || a.maxLengthBytes !== undefined) && opts?.recovered !== true) {
      const overflow = a.overflow ?? 'drop-head';
      const fits = (): boolean => (a.maxLength === undefined || this.readyCount + 1 <= a.maxLength)
        && (a.maxLengthBytes === undefined || this.readyBytesSum + size <= a.maxLengthBytes);
      if (!fits()) {
        if (overflow !== 'drop-head') {
          this.counters.rejectedPublishes++;
          return overflow === 'reject-publish' ? EnqueueResult.Rejected : EnqueueResult.RejectedDeadLetter;
        }
        while (!fits() && this.readyCount > 0) this.dropHead();
        if (!fits()) {
          // Larger than the whole queue may hold: drop-head drops the message itself, as RabbitMQ does.
          this.counters.routed++;
          this.counters.maxlen++;
          this.events.remove(id, 'maxlen', opts?.deliveryCount ?? 0, payload);
          return EnqueueResult.Ok;
        }
      }
    }
    if (this.tail - this.head === this.cap) this.grow(this.cap * 2);
    const pos = this.tail++;
    const s = pos & this.mask;
    this.ids[s] = id;
    let exp = opts?.expiresAt ?? Infinity;
    if (a.messageTtl !== undefined) exp = Math.min(exp, now + a.messageTtl);
    this.expires[s] = exp;
    this.sizes[s] = size;
    this.counts[s] = opts?.deliveryCount ?? 0;
    this.flags[s] = opts?.redelivered ? FLAG_REDELIVERED : 0;
    this.owners[s] = 0;
    this.payloads[s] = payload;
    this.counters.routed++;
    this.readyCount++;
    this.readyBytesSum += size;
    const readyAt = opts?.readyAt ?? 0;
    if (readyAt > now) {
      this.state[s] = DELAYED;
      this.time[s] = readyAt;
      this.delayHeap.push(readyAt, pos);
    } else {
      this.state[s] = READY;
      if (pos < this.firstReady) this.firstReady = pos;
    }
    if (exp !== Infinity) this.expiryHeap.push(exp, pos);
    return EnqueueResult.Ok;
  }

  /** Drops the oldest ready (or delayed) message with 'maxlen'. */
  private dropHead(): void {
    for (let pos = this.head; pos < this.tail; pos++) {
      const st = this.state[pos & this.mask];
      if (st === READY || st === DELAYED) {
        this.removeReady(pos, 'maxlen');
        return;
      }
    }
  }

  /** Removes a ready/delayed message for good. */
  private removeReady(pos: number, reason: RemoveReason): void {
    const s = pos & this.mask;
    this.readyCount--;
    this.readyBytesSum -= this.sizes[s]!;
    this.count(reason);
    const id = this.ids[s]!;
    const count = this.counts[s]!;
    const payload = this.payloads[s];
    this.free(pos);
    this.events.remove(id, reason, count, payload);
  }

  private removeUnacked(pos: number, reason: RemoveReason): void {
    const s = pos & this.mask;
    this.unackedCount--;
    this.decOwner(this.owners[s]!);
    this.count(reason);
    const id = this.ids[s]!;
    const count = this.counts[s]!;
    const payload = this.payloads[s];
    this.free(pos);
    this.events.remove(id, reason, count, payload);
  }

  private count(reason: RemoveReason): void {
    const c = this.counters;
    switch (reason) {
      case 'acked': c.acked++; break;
      case 'rejected': c.rejected++; break;
      case 'expired': c.expired++; break;
      case 'maxlen': c.maxlen++; break;
      case 'delivery_limit': c.deliveryLimit++; break;
      case 'purged': c.purged++; break;
      case 'deleted': c.deleted++; break;
    }
  }

  /** Entries stay at 0 while their owner lives (deleting and re-adding Map entries per message churns the table and allocates). */
  private decOwner(owner: number): void {
    const n = this.unackedBy.get(owner);
    if (n !== undefined && n > 0) this.unackedBy.set(owner, n - 1);
  }

  private forgetOwnerIfIdle(owner: number): void {
    if (this.unackedBy.get(owner) === 0) this.unackedBy.delete(owner);
  }

  // ---- consumers --------------------------------------------------------------

  addConsumer(consumer: number, prefetch: number, exclusive = false): 'ok' | 'exclusive-locked' {
    if (this.consumers.some((c) => c.exclusive) || (exclusive && this.consumers.length > 0)) return 'exclusive-locked';
    this.consumers.push({ tag: consumer, prefetch, exclusive });
    return 'ok';
  }

  cancelConsumer(consumer: number, requeue: boolean, now: number): boolean {
    const i = this.consumers.findIndex((c) => c.tag === consumer);
    if (i < 0) return false;
    this.consumers.splice(i, 1);
    if (this.rr > i) this.rr--;
    if (requeue) this.returnAllOf(consumer, now);
    this.forgetOwnerIfIdle(consumer);
    return true;
  }

  releaseOwner(owner: number, now: number): number {
    const i = this.consumers.findIndex((c) => c.tag === owner);
    if (i >= 0) {
      this.consumers.splice(i, 1);
      if (this.rr > i) this.rr--;
    }
    const n = this.returnAllOf(owner, now);
    this.forgetOwnerIfIdle(owner);
    return n;
  }

  private returnAllOf(owner: number, now: number): number {
    if ((this.unackedBy.get(owner) ?? 0) === 0) return 0;
    let n = 0;
    for (let pos = this.head; pos < this.tail; pos++) {
      const s = pos & this.mask;
      if (this.state[s] === UNACKED && this.owners[s] === owner) {
        this.returnMsg(pos, now);
        n++;
      }
    }
    return n;
  }

  /** Puts an unacked message back in its place (count+1, redelivered, backoff) or dead-letters it at the limit. */
  private returnMsg(pos: number, now: number): void {
    const s = pos & this.mask;
    const count = this.counts[s]! + 1;
    this.counts[s] = count;
    const limit = this.args.deliveryLimit;
    if (limit !== undefined && count > limit) {
      this.removeUnacked(pos, 'delivery_limit');
      return;
    }
    this.unackedCount--;
    this.decOwner(this.owners[s]!);
    this.flags[s] = this.flags[s]! | FLAG_REDELIVERED;
    this.counters.returned++;
    this.readyCount++;
    this.readyBytesSum += this.sizes[s]!;
    const delay = this.args.redeliveryDelay ?? 0;
    if (delay > 0) {
      this.state[s] = DELAYED;
      this.time[s] = now + delay;
      this.delayHeap.push(now + delay, pos);
    } else {
      this.state[s] = READY;
      if (pos < this.firstReady) this.firstReady = pos;
    }
    if (this.expires[s] !== Infinity) this.expiryHeap.push(this.expires[s]!, pos);
    this.events.returned(this.ids[s]!, count);
  }

  // ---- dispatch, get ----------------------------------------------------------

  /** Lowest ready position at or after firstReady, or -1. Expired ones met are removed. */
  private nextReady(now: number): number {
    const mask = this.mask;
    const state = this.state;
    let pos = this.firstReady;
    while (pos < this.tail) {
      const s = pos & mask;
      if (state[s] === READY) {
        if (this.expires[s]! <= now) {
          this.firstReady = pos + 1;
          this.removeReady(pos, 'expired');
          pos = this.firstReady;
          continue;
        }
        this.firstReady = pos;
        return pos;
      }
      pos++;
    }
    this.firstReady = pos;
    return -1;
  }

  private pickConsumer(): ConsumerState | null {
    const cs = this.consumers;
    const n = cs.length;
    for (let k = 0; k < n; k++) {
      const i = (this.rr + k) % n;
      const c = cs[i]!;
      if (c.prefetch === 0 || (this.unackedBy.get(c.tag) ?? 0) < c.prefetch) {
        this.rr = (i + 1) % n;
        return c;
      }
    }
    return null;
  }

  dispatch(now: number, max = Infinity): number {
    if (this.consumers.length === 0 || this.readyCount === 0) return 0;
    this.promoteDue(now);
    let n = 0;
    while (n < max) {
      const pos = this.nextReady(now);
      if (pos < 0) break;
      const c = this.pickConsumer();
      if (c === null) break;
      this.take(pos, c.tag, now);
      const s = pos & this.mask;
      const redelivered = (this.flags[s]! & FLAG_REDELIVERED) !== 0;
      if (redelivered) this.counters.redelivered++;
      this.counters.delivered++;
      n++;
      this.events.deliver(c.tag, this.ids[s]!, this.counts[s]!, redelivered, this.payloads[s]);
    }
    return n;
  }

  /** Ready -> unacked under `owner`. */
  private take(pos: number, owner: number, now: number): void {
    const s = pos & this.mask;
    this.state[s] = UNACKED;
    this.owners[s] = owner;
    this.time[s] = now;
    this.readyCount--;
    this.readyBytesSum -= this.sizes[s]!;
    this.unackedCount++;
    this.unackedBy.set(owner, (this.unackedBy.get(owner) ?? 0) + 1);
    this.firstReady = pos + 1;
    if (this.args.consumerTimeout !== undefined) this.timeoutHeap.push(now + this.args.consumerTimeout, pos);
  }

  get(now: number, owner: number | null, out: GetResult): boolean {
    this.promoteDue(now);
    const pos = this.nextReady(now);
    if (pos < 0) return false;
    const s = pos & this.mask;
    const redelivered = (this.flags[s]! & FLAG_REDELIVERED) !== 0;
    out.id = this.ids[s]!;
    out.deliveryCount = this.counts[s]!;
    out.redelivered = redelivered;
    out.payload = this.payloads[s];
    this.counters.delivered++;
    if (redelivered) this.counters.redelivered++;
    if (owner === null) {
      // Auto-ack: the message leaves now; the caller owns the payload reference it got.
      this.firstReady = pos + 1;
      this.removeReady(pos, 'acked');
    } else {
      this.take(pos, owner, now);
    }
    out.remaining = this.readyCount;
    return true;
  }

  // ---- settle -------------------------------------------------------------------

  isUnacked(id: number): boolean {
    const pos = this.posOf(id);
    return pos >= 0 && this.state[pos & this.mask] === UNACKED;
  }

  ack(id: number): boolean {
    const pos = this.posOf(id);
    if (pos < 0 || this.state[pos & this.mask] !== UNACKED) return false;
    this.removeUnacked(pos, 'acked');
    return true;
  }

  ackUpTo(owner: number, id: number): number {
    const last = this.lastPosAtOrBefore(id);
    let n = 0;
    for (let pos = this.head; pos <= last; pos++) {
      const s = pos & this.mask;
      if (this.state[s] === UNACKED && this.owners[s] === owner) {
        this.removeUnacked(pos, 'acked');
        n++;
      }
    }
    return n;
  }

  nack(id: number, requeue: boolean, now: number): boolean {
    const pos = this.posOf(id);
    if (pos < 0 || this.state[pos & this.mask] !== UNACKED) return false;
    if (requeue) this.returnMsg(pos, now);
    else this.removeUnacked(pos, 'rejected');
    return true;
  }

  nackUpTo(owner: number, id: number, requeue: boolean, now: number): number {
    const last = this.lastPosAtOrBefore(id);
    let n = 0;
    for (let pos = this.head; pos <= last; pos++) {
      const s = pos & this.mask;
      if (this.state[s] === UNACKED && this.owners[s] === owner) {
        if (requeue) this.returnMsg(pos, now);
        else this.removeUnacked(pos, 'rejected');
        n++;
      }
    }
    return n;
  }

  /** Highest position whose id <= id (the slot may be free), or head - 1. */
  private lastPosAtOrBefore(id: number): number {
    let lo = this.head;
    let hi = this.tail - 1;
    let best = this.head - 1;
    while (lo <= hi) {
      const mid = lo + ((hi - lo) >> 1);
      if (this.ids[mid & this.mask]! <= id) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  // ---- time --------------------------------------------------------------------

  /** Delayed messages whose time has come become ready. */
  private promoteDue(now: number): void {
    const h = this.delayHeap;
    while (h.size > 0 && h.minKey <= now) {
      const pos = h.minValue;
      const key = h.minKey;
      h.pop();
      if (pos < this.head) continue;
      const s = pos & this.mask;
      if (this.state[s] !== DELAYED || this.time[s] !== key) continue;
      this.state[s] = READY;
      if (pos < this.firstReady) this.firstReady = pos;
    }
  }

  tick(now: number): void {
    this.promoteDue(now);
    // Expiry: every ready (or delayed) message whose time has passed, not only the head.
    const eh = this.expiryHeap;
    while (eh.size > 0 && eh.minKey <= now) {
      const pos = eh.minValue;
      const key = eh.minKey;
      eh.pop();
      if (pos < this.head) continue;
      const s = pos & this.mask;
      const st = this.state[s];
      if ((st !== READY && st !== DELAYED) || this.expires[s] !== key) continue;
      this.removeReady(pos, 'expired');
    }
    // Ack timeouts: a consumer whose delivery is older than consumerTimeout loses all its unacked messages.
    const th = this.timeoutHeap;
    const timeout = this.args.consumerTimeout;
    while (timeout !== undefined && th.size > 0 && th.minKey <= now) {
      const pos = th.minValue;
      const key = th.minKey;
      th.pop();
      if (pos < this.head) continue;
      const s = pos & this.mask;
      if (this.state[s] !== UNACKED || this.time[s]! + timeout !== key) continue;
      const owner = this.owners[s]!;
      const isConsumer = this.consumers.some((c) => c.tag === owner);
      this.releaseOwner(owner, now);
      if (isConsumer) this.events.consumerTimedOut(owner);
    }
  }

  nextDeadline(): number {
    let d = this.delayHeap.minKey;
    if (this.expiryHeap.minKey < d) d = this.expiryHeap.minKey;
    if (this.timeoutHeap.minKey < d) d = this.timeoutHeap.minKey;
    return d;
  }

  // ---- inspection ------------------------------------------------------------------

  /**
   * Every message in the queue in position (publish) order with its state —
   * for diagnostics and tests, not the hot path. Allocates.
   */
  snapshot(): { id: number; state: 'ready' | 'delayed' | 'unacked'; deliveryCount: number; redelivered: boolean; owner: number; payload: unknown }[] {
    const out: { id: number; state: 'ready' | 'delayed' | 'unacked'; deliveryCount: number; redelivered: boolean; owner: number; payload: unknown }[] = [];
    for (let pos = this.head; pos < this.tail; pos++) {
      const s = pos & this.mask;
      const st = this.state[s];
      if (st === FREE) continue;
      out.push({
        id: this.ids[s]!, state: st === READY ? 'ready' : st === DELAYED ? 'delayed' : 'unacked', deliveryCount: this.counts[s]!,
        redelivered: (this.flags[s]! & FLAG_REDELIVERED) !== 0, owner: st === UNACKED ? this.owners[s]! : -1, payload: this.payloads[s],
      });
    }
    return out;
  }

  // ---- purge, delete -------------------------------------------------------------

  purge(): number {
    let n = 0;
    for (let pos = this.head; pos < this.tail; pos++) {
      const st = this.state[pos & this.mask];
      if (st === READY || st === DELAYED) {
        this.removeReady(pos, 'purged');
        n++;
      }
    }
    return n;
  }

  deleteAll(): number {
    let n = 0;
    for (let pos = this.head; pos < this.tail; pos++) {
      const st = this.state[pos & this.mask];
      if (st === READY || st === DELAYED) { this.removeReady(pos, 'deleted'); n++; }
      else if (st === UNACKED) { this.removeUnacked(pos, 'deleted'); n++; }
    }
    this.consumers.length = 0;
    return n;
  }
}
