/**
 * The log's in-memory state, rebuilt by recovery and kept current by every
 * append: per queue the unsettled messages (a small position each, never the
 * body), their delivery counts, the topology, and per segment how many bytes
 * are still live. Appends and recovery go through the same `on*` methods, so
 * the state after recovery is the state before the crash (minus the torn tail).
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
import { decodeRecordBody, RecordType, type ExchangeKindValue, type TopologyRecord } from './records.js';
import { PendingSettle, type Segment } from './segment.js';

/** Where an unsettled message lives. Mutable: compaction moves it (same object, new offset). */
export class MessageEntry {
  readonly queueId: number;
  readonly messageId: number;
  segment: Segment;
  offset: number;
  /** Total record size, header included. */
  length: number;
  deliveryCount = 0;
  countSegment: Segment | null = null;
  countOffset = 0;
  countLength = 0;
  constructor(queueId: number, messageId: number, segment: Segment, offset: number, length: number) {
    this.queueId = queueId;
    this.messageId = messageId;
    this.segment = segment;
    this.offset = offset;
    this.length = length;
  }
}

export interface QueueInfo { name: string; arguments: Uint8Array }
export interface ExchangeInfo { kind: ExchangeKindValue; arguments: Uint8Array }
export interface BindingInfo { exchange: string; queueId: number; routingKey: string; arguments: Uint8Array }

export class LiveIndex {
  /** queue id → message id → entry, in log (publish) order. */
  readonly queues = new Map<number, Map<number, MessageEntry>>();
  readonly declaredQueues = new Map<number, QueueInfo>();
  readonly exchanges = new Map<string, ExchangeInfo>();
  /** Key: exchange \0 queue id \0 routing key. */
  readonly bindings = new Map<string, BindingInfo>();
  liveMessages = 0;

  queue(queueId: number): Map<number, MessageEntry> {
    let q = this.queues.get(queueId);
    if (q === undefined) {
      q = new Map();
      this.queues.set(queueId, q);
    }
    return q;
  }

  find(queueId: number, messageId: number): MessageEntry | undefined {
    return this.queues.get(queueId)?.get(messageId);
  }

  /** Allocates the entry (the one unavoidable allocation per enqueued message). */
  onEnqueue(seg: Segment, offset: number, length: number, queueId: number, messageId: number): MessageEntry {
    const q = this.queue(queueId);
    const old = q.get(messageId);
    // A duplicate id replaces the earlier message (the engine never reuses ids; this keeps the accounting exact if it does).
    if (old !== undefined) this.drop(old, null, 0, 0), q.delete(messageId);
    const entry = new MessageEntry(queueId, messageId, seg, offset, length);
    q.set(messageId, entry);
    seg.liveBytes += length;
    this.liveMessages++;
    return entry;
  }

  /** Returns false when no such message is live (then the settle record is dead at once). */
  onSettle(seg: Segment, offset: number, length: number, queueId: number, messageId: number): boolean {
    const q = this.queues.get(queueId);
    const entry = q?.get(messageId);
    if (entry === undefined) return false;
    q!.delete(messageId);
    this.drop(entry, seg, offset, length);
    return true;
  }

  onDeliveryCount(seg: Segment, offset: number, length: number, queueId: number, messageId: number, count: number): boolean {
    const entry = this.find(queueId, messageId);
    if (entry === undefined) return false;
    if (entry.countSegment !== null) entry.countSegment.liveBytes -= entry.countLength;
    entry.deliveryCount = count;
    entry.countSegment = seg;
    entry.countOffset = offset;
    entry.countLength = length;
    seg.liveBytes += length;
    return true;
  }

  /** Topology and unknown types. `body` null for an unknown type (kept, never interpreted). */
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
        if (q !== undefined) for (const entry of q.values()) this.drop(entry, null, 0, 0);
        this.queues.delete(record.queueId);
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
        const key = `${record.exchange}\0${record.queueId}\0${record.routingKey}`;
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
  private drop(entry: MessageEntry, settleSeg: Segment | null, settleOffset: number, settleLength: number): void {
    entry.segment.liveBytes -= entry.length;
    if (entry.countSegment !== null) {
      entry.countSegment.liveBytes -= entry.countLength;
      entry.countSegment = null;
    }
    if (settleSeg !== null && settleSeg !== entry.segment) {
      settleSeg.liveBytes += settleLength;
      entry.segment.settledElsewhere.push(new PendingSettle(settleSeg, settleOffset, settleLength));
    }
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
