/**
 * The log's in-memory state, rebuilt by recovery and kept current by every
 * append: per queue the unsettled messages (queue-index.ts: a small position
 * each, never the body), their delivery counts, the topology, and per segment
 * how many bytes are still live. Appends and recovery go through the same
 * `on*` methods, so the state after recovery is the state before the crash
 * (minus the torn tail).
 *
 * Liveness (what reclamation may drop; docs/log-format.md, "Reclamation"):
 * - an enqueue is live while its message is unsettled;
 * - a delivery-count record is live while its message is unsettled and it is
 *   the latest count for it;
 * - a settle is live while the enqueue it settles is still on disk in an
 *   earlier segment (PendingSettle); a settle in the enqueue's own segment is
 *   dead at once, since both leave together;
 * - topology records (and types this version does not know) are always live.
 */
import { RECORD_HEADER_SIZE } from './format.js';
import { QueueIndex, NONE } from './queue-index.js';
import { decodeRecordBody, DELIVERY_COUNT_SIZE, RecordType, type ExchangeKindValue, type TopologyRecord } from './records.js';
import { PendingSettle, type Segment } from './segment.js';

/** Every DeliveryCount record has this size. */
const COUNT_RECORD_SIZE = RECORD_HEADER_SIZE + DELIVERY_COUNT_SIZE;

export interface QueueInfo { name: string; arguments: Uint8Array }
export interface ExchangeInfo { kind: ExchangeKindValue; arguments: Uint8Array }
export interface BindingInfo { exchange: string; queueId: number; routingKey: string; arguments: Uint8Array }

export class LiveIndex {
  /** queue id → its unsettled messages in log (publish) order. */
  readonly queues = new Map<number, QueueIndex>();
  readonly declaredQueues = new Map<number, QueueInfo>();
  readonly exchanges = new Map<string, ExchangeInfo>();
  /** Key: exchange \0 queue id \0 routing key. */
  readonly bindings = new Map<string, BindingInfo>();
  liveMessages = 0;
  private readonly segments = new Map<number, Segment>();
  private readonly segmentById = (id: number): Segment | undefined => this.segments.get(id);
  /** One-entry cache of the last queue touched (appends come in runs per queue). */
  private lastQueue: QueueIndex | null = null;

  addSegment(seg: Segment): void {
    this.segments.set(seg.id, seg);
  }

  removeSegment(seg: Segment): void {
    this.segments.delete(seg.id);
  }

  segment(id: number): Segment {
    return this.segments.get(id)!;
  }

  queue(queueId: number): QueueIndex {
    const last = this.lastQueue;
    if (last !== null && last.queueId === queueId) return last;
    let q = this.queues.get(queueId);
    if (q === undefined) {
      q = new QueueIndex(queueId, this.segmentById);
      this.queues.set(queueId, q);
    }
    this.lastQueue = q;
    return q;
  }

  /** No allocation (the queue's arrays grow by doubling). */
  onEnqueue(seg: Segment, offset: number, length: number, queueId: number, messageId: number): void {
    const q = this.queue(queueId);
    const old = q.slotOf(messageId);
    // A duplicate id replaces the earlier message (the engine never reuses ids; this keeps the accounting exact if it does).
    if (old >= 0) this.drop(q, old, null, 0, 0);
    q.add(messageId, seg.id, offset, length);
    seg.liveBytes += length;
    this.liveMessages++;
  }

  /** Returns false when no such message is live (then the settle record is dead at once). */
  onSettle(seg: Segment, offset: number, length: number, queueId: number, messageId: number): boolean {
    const q = this.queues.get(queueId);
    const slot = q === undefined ? -1 : q.slotOf(messageId);
    if (slot < 0) return false;
    this.drop(q!, slot, seg, offset, length);
    return true;
  }

  onDeliveryCount(seg: Segment, offset: number, length: number, queueId: number, messageId: number, count: number): boolean {
    const q = this.queues.get(queueId);
    const slot = q === undefined ? -1 : q.slotOf(messageId);
    if (slot < 0) return false;
    const prev = q!.countSeg(slot);
    if (prev !== NONE) this.segment(prev).liveBytes -= COUNT_RECORD_SIZE;
    q!.setCount(slot, count, seg.id, offset);
    seg.liveBytes += length;
    return true;
  }

  /** Topology and unknown types (`record` null: kept, never interpreted). */
  onOther(seg: Segment, length: number, record: TopologyRecord | null): void {
    seg.liveBytes += length;
    if (record === null) return;
    switch (record.type) {
      case RecordType.QueueDeclared:
        this.declaredQueues.set(record.queueId, { name: record.name, arguments: record.arguments });
        break;
      case RecordType.QueueDeleted: {
        this.declaredQueues.delete(record.queueId);
        // The delete record is permanent (topology is always live), so it settles every message of the queue for good.
        const q = this.queues.get(record.queueId);
        if (q !== undefined) for (let s = q.head; s < q.tail; s++) if (q.isLive(s)) this.drop(q, s, null, 0, 0);
        this.queues.delete(record.queueId);
        if (this.lastQueue === q) this.lastQueue = null;
        for (const [k, b] of this.bindings) if (b.queueId === record.queueId) this.bindings.delete(k);
        break;
      }
      case RecordType.ExchangeDeclared:
        this.exchanges.set(record.name, { kind: record.kind, arguments: record.arguments });
        break;
      case RecordType.ExchangeDeleted:
        this.exchanges.delete(record.name);
        for (const [k, b] of this.bindings) if (b.exchange === record.name) this.bindings.delete(k);
        break;
      case RecordType.Bound:
      case RecordType.Unbound: {
        // A binding is (exchange, queue, routing key, arguments), as in AMQP: two headers bindings that differ
        // only in their arguments are two bindings (the Broker writes the arguments with sorted keys).
        const key = `${record.exchange}\0${record.queueId}\0${record.routingKey}\0${Buffer.from(record.arguments.buffer, record.arguments.byteOffset, record.arguments.byteLength).toString('latin1')}`;
        if (record.type === RecordType.Bound) this.bindings.set(key, { exchange: record.exchange, queueId: record.queueId, routingKey: record.routingKey, arguments: record.arguments });
        else this.bindings.delete(key);
        break;
      }
    }
  }

  /** Decodes a topology body read back by recovery; null for a type this version does not know. */
  static decodeOther(type: number, body: Uint8Array): TopologyRecord | null {
    if (type < RecordType.QueueDeclared || type > RecordType.Unbound) return null;
    return decodeRecordBody(type, body) as TopologyRecord;
  }

  /**
   * The message leaves the live set. Its enqueue and latest count become dead;
   * a settle record in a later segment stays live until the enqueue's segment
   * drops it (PendingSettle). settleSeg null: settled by a permanent record.
   */
  private drop(q: QueueIndex, slot: number, settleSeg: Segment | null, settleOffset: number, settleLength: number): void {
    const enqSeg = this.segment(q.segOf(slot));
    enqSeg.liveBytes -= q.lens[slot]!;
    const countSeg = q.countSeg(slot);
    if (countSeg !== NONE) this.segment(countSeg).liveBytes -= COUNT_RECORD_SIZE;
    if (settleSeg !== null && settleSeg !== enqSeg) {
      settleSeg.liveBytes += settleLength;
      enqSeg.settledElsewhere.push(new PendingSettle(settleSeg, settleOffset, settleLength));
    }
    q.remove(slot);
    this.liveMessages--;
  }

  /**
   * Call once the enqueues of `seg`'s settled messages are durably gone from
   * disk (file deleted or compacted, directory synced): their settles in later
   * segments are dead now.
   */
  releaseSettles(seg: Segment): void {
    for (const p of seg.settledElsewhere) p.segment.liveBytes -= p.length;
    seg.settledElsewhere = [];
  }
}
