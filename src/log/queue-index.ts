/**
 * The unsettled messages of one queue, in log (publish) order, as a
 * struct of typed arrays: 20 bytes per message (id f64, segment, offset,
 * length), no object per message, so a deep queue costs no GC work. Measured on the append path: a Map of one
 * object per message took ~45% of `append-never` at 1 KiB (0.6–1 µs per
 * message, mostly scavenges of long-lived objects); this table costs ~0.
 *
 * Lookup by message id: the engine hands out increasing ids, so while every
 * new id in a queue is greater than the last one the ids column is sorted
 * (holes keep their id) and a slot is found without a hash: first the guess
 * `head + id - ids[head]` (exact when ids are consecutive), else a binary
 * search. The first id out of order switches the queue to a Map from id to
 * slot, for good. Slots of settled messages are holes
 * (`segs[slot] === FREE`) skipped by iteration; `head` skips leading holes,
 * and when the table is full it is packed before it is grown (doubling).
 *
 * Delivery counts are sparse: only messages that were delivered (a
 * DeliveryCount record) have one, so they live in a side table keyed by
 * message id (count, and where the latest count record is), sized by the
 * messages in flight rather than by the queue's depth. A deep queue at rest
 * pays nothing for them (measured: 32 -> 20 bytes per message at rest).
 */
import type { Segment } from './segment.js';

export const FREE = 0xffffffff;
export const NONE = 0xffffffff;

/** Snapshot of one unsettled message: ids, delivery count and where its record is. Allocated on demand. */
export class MessageEntry {
  readonly queueId: number;
  readonly messageId: number;
  readonly deliveryCount: number;
  /** Segment base sequence and byte offset of the enqueue record at the time of the snapshot (compaction may move it). */
  readonly segmentBase: number;
  readonly offset: number;
  /** Total record size, header included. */
  readonly length: number;
  constructor(queueId: number, messageId: number, deliveryCount: number, segmentBase: number, offset: number, length: number) {
    this.queueId = queueId;
    this.messageId = messageId;
    this.deliveryCount = deliveryCount;
    this.segmentBase = segmentBase;
    this.offset = offset;
    this.length = length;
  }
}

/** Read-only view of a queue's unsettled messages (a Map-like over message ids, in publish order). */
export interface QueueView extends Iterable<[number, MessageEntry]> {
  readonly size: number;
  get(messageId: number): MessageEntry | undefined;
  has(messageId: number): boolean;
  keys(): IterableIterator<number>;
  values(): IterableIterator<MessageEntry>;
}

function growU32(a: Uint32Array, n: number): Uint32Array {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}

export class QueueIndex implements QueueView {
  readonly queueId: number;
  ids: Float64Array;
  /** Segment id (Segment.id) of the enqueue record, or FREE for a hole. */
  segs: Uint32Array;
  offs: Uint32Array;
  lens: Uint32Array;
  head = 0;
  tail = 0;
  live = 0;
  /** Map mode (after an out-of-order id): id → slot. */
  byId: Map<number, number> | null = null;
  /** Delivery counts: message id -> entry of the pool below (count, segment id and offset of the latest DeliveryCount record). */
  private readonly countOf = new Map<number, number>();
  private cCount: Uint32Array = new Uint32Array(0);
  private cSeg: Uint32Array = new Uint32Array(0);
  private cOff: Uint32Array = new Uint32Array(0);
  private readonly cFree: number[] = [];
  private cUsed = 0;
  /** Resolves segment ids for snapshots. */
  private readonly segmentById: (id: number) => Segment | undefined;

  constructor(queueId: number, segmentById: (id: number) => Segment | undefined, capacity = 16) {
    this.queueId = queueId;
    this.segmentById = segmentById;
    this.ids = new Float64Array(capacity);
    this.segs = new Uint32Array(capacity);
    this.offs = new Uint32Array(capacity);
    this.lens = new Uint32Array(capacity);
  }

  /** Delivery count of the message in `slot` (0 if it never had a DeliveryCount record). */
  count(slot: number): number {
    const c = this.countOf.get(this.ids[slot]!);
    return c === undefined ? 0 : this.cCount[c]!;
  }

  /** Segment id of the message's latest DeliveryCount record, or NONE. */
  countSeg(slot: number): number {
    const c = this.countOf.get(this.ids[slot]!);
    return c === undefined ? NONE : this.cSeg[c]!;
  }

  countOffset(slot: number): number {
    const c = this.countOf.get(this.ids[slot]!);
    return c === undefined ? 0 : this.cOff[c]!;
  }

  /** Records the message's latest DeliveryCount record. */
  setCount(slot: number, count: number, segId: number, offset: number): void {
    const id = this.ids[slot]!;
    let c = this.countOf.get(id);
    if (c === undefined) {
      c = this.cFree.length > 0 ? this.cFree.pop()! : this.cUsed++;
      if (c >= this.cCount.length) {
        const n = Math.max(16, this.cCount.length * 2);
        this.cCount = growU32(this.cCount, n);
        this.cSeg = growU32(this.cSeg, n);
        this.cOff = growU32(this.cOff, n);
      }
      this.countOf.set(id, c);
    }
    this.cCount[c] = count;
    this.cSeg[c] = segId;
    this.cOff[c] = offset;
  }

  /** Compaction moved the message's latest DeliveryCount record within its segment. */
  moveCount(slot: number, offset: number): void {
    const c = this.countOf.get(this.ids[slot]!);
    if (c !== undefined) this.cOff[c] = offset;
  }

  get size(): number {
    return this.live;
  }

  /** Slot of a live message, or -1. */
  slotOf(messageId: number): number {
    if (this.byId !== null) return this.byId.get(messageId) ?? -1;
    const ids = this.ids;
    let lo = this.head;
    let hi = this.tail - 1;
    if (lo > hi) return -1;
    const guess = lo + (messageId - ids[lo]!);
    let slot = -1;
    if (guess >= lo && guess <= hi && ids[guess] === messageId) slot = guess;
    else {
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const v = ids[mid]!;
        if (v < messageId) lo = mid + 1;
        else if (v > messageId) hi = mid - 1;
        else {
          slot = mid;
          break;
        }
      }
    }
    return slot >= 0 && this.segs[slot] !== FREE ? slot : -1;
  }

  /** Appends a message; returns its slot. The caller has removed any live message with the same id. */
  add(messageId: number, segId: number, offset: number, length: number): number {
    if (this.tail === this.ids.length) this.makeRoom();
    const slot = this.tail;
    if (this.byId === null && slot > this.head && !(messageId > this.ids[slot - 1]!)) this.toMapMode();
    if (this.byId !== null) this.byId.set(messageId, slot);
    return this.add2(slot, messageId, segId, offset, length);
  }

  private add2(slot: number, messageId: number, segId: number, offset: number, length: number): number {
    this.ids[slot] = messageId;
    this.segs[slot] = segId;
    this.offs[slot] = offset;
    this.lens[slot] = length;
    this.tail = slot + 1;
    this.live++;
    return slot;
  }

  /** Frees a slot (the message is settled). */
  remove(slot: number): void {
    this.segs[slot] = FREE;
    this.live--;
    const id = this.ids[slot]!;
    if (this.byId !== null) this.byId.delete(id);
    if (this.countOf.size > 0) {
      const c = this.countOf.get(id);
      if (c !== undefined) {
        this.countOf.delete(id);
        this.cFree.push(c);
      }
    }
    while (this.head < this.tail && this.segs[this.head] === FREE) this.head++;
    if (this.head === this.tail) this.head = this.tail = 0;
  }

  private toMapMode(): void {
    const m = new Map<number, number>();
    for (let s = this.head; s < this.tail; s++) if (this.segs[s] !== FREE) m.set(this.ids[s]!, s);
    this.byId = m;
  }

  /** Packs live slots to the front when that frees at least half, else doubles the arrays. */
  private makeRoom(): void {
    const cap = this.ids.length;
    if (this.live <= cap >> 1) {
      let w = 0;
      for (let r = this.head; r < this.tail; r++) {
        if (this.segs[r] === FREE) continue;
        if (w !== r) {
          this.ids[w] = this.ids[r]!;
          this.segs[w] = this.segs[r]!;
          this.offs[w] = this.offs[r]!;
          this.lens[w] = this.lens[r]!;
        }
        w++;
      }
      this.head = 0;
      this.tail = w;
      if (this.byId !== null) {
        this.byId.clear();
        for (let slot = 0; slot < w; slot++) this.byId.set(this.ids[slot]!, slot);
      }
      if (this.tail < cap) return;
    }
    const n = cap * 2;
    const ids = new Float64Array(n);
    ids.set(this.ids);
    this.ids = ids;
    this.segs = growU32(this.segs, n);
    this.offs = growU32(this.offs, n);
    this.lens = growU32(this.lens, n);
  }

  private snapshot(slot: number): MessageEntry {
    const seg = this.segmentById(this.segs[slot]!);
    return new MessageEntry(this.queueId, this.ids[slot]!, this.count(slot), seg ? seg.baseSeq : -1, this.offs[slot]!, this.lens[slot]!);
  }

  get(messageId: number): MessageEntry | undefined {
    const slot = this.slotOf(messageId);
    return slot < 0 ? undefined : this.snapshot(slot);
  }

  has(messageId: number): boolean {
    return this.slotOf(messageId) >= 0;
  }

  *keys(): IterableIterator<number> {
    for (let s = this.head; s < this.tail; s++) if (this.segs[s] !== FREE) yield this.ids[s]!;
  }

  *values(): IterableIterator<MessageEntry> {
    for (let s = this.head; s < this.tail; s++) if (this.segs[s] !== FREE) yield this.snapshot(s);
  }

  *[Symbol.iterator](): IterableIterator<[number, MessageEntry]> {
    for (let s = this.head; s < this.tail; s++) if (this.segs[s] !== FREE) yield [this.ids[s]!, this.snapshot(s)];
  }
}
