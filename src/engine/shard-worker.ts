/**
 * A shard worker: owns a set of queues (src/queue/, pure semantics) and one
 * segmented log (src/log/), and is reached only through two rings
 * (src/engine/channel.ts). Its loop: drain every record the I/O thread
 * published, apply them to the queues and the log, then dispatch to
 * consumers, send the confirms whose records are durable, and publish the
 * outbound ring once. When its inbound ring is empty it polls it briefly
 * (spinUs), then sleeps: in Atomics.wait for up to 1 ms if nothing of the log
 * waits for the event loop, then in Atomics.waitAsync (the event loop stays
 * free for the log's fdatasync callbacks), until the next queue deadline
 * (TTL, delayed message, ack timeout).
 *
 * Persistence rule: a persistent message routed to a durable queue is
 * appended to the log (its body too) and confirmed when the fsync policy says
 * the record is durable; everything else lives in memory only. Settles
 * (ack, dead-letter, expiry, drop) and delivery counts are appended; they
 * need no fsync to be answered (G5: only acks not yet on disk can be undone
 * by a crash, and then G2 applies).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { SegmentedLog } from '../log/segmented-log.js';
import { SettleReason, type SettleReasonValue } from '../log/records.js';
import { GetResult, Queue, type QueueCounters, type RemoveReason } from '../queue/queue.js';
import { Inbox, Outbox, type Handler } from './channel.js';
import {
  CONFIRM_ENTRY_SIZE, CONFIRM_FIXED_SIZE, CONFIRM_REJECTS_OFFSET, CONFIRM_THROUGH_OFFSET, DLV_COUNT_OFFSET, DLV_CONSUMER_OFFSET, DLV_FIXED_SIZE, DLV_FLAG_REDELIVERED, DLV_FLAGS_OFFSET,
  DLV_META_LEN_OFFSET, DLV_MSG_OFFSET, DLV_QUEUE_OFFSET, DL_COUNT_OFFSET, DL_FIXED_SIZE, DL_META_LEN_OFFSET, DL_MSG_OFFSET,
  DL_NEEDS_DONE_OFFSET, DL_QUEUE_OFFSET, DL_REASON_OFFSET, DL_REASONS, DL_TIME_OFFSET, EV_CONFIRM, EV_CTRL_REPLY, EV_DEAD_LETTER,
  EV_DELIVER, EV_EVENT, EV_GOT, GOT_COUNT_OFFSET, GOT_FIXED_SIZE, GOT_FLAGS_OFFSET, GOT_META_LEN_OFFSET, GOT_MSG_OFFSET,
  GOT_QUEUE_OFFSET, GOT_REMAINING_OFFSET, GOT_REQ_OFFSET, META_EXPIRES_OFFSET, META_PUBLISHED_OFFSET, META_LENGTH_OFFSET, META_READY_OFFSET, OP_CTRL, OP_DL_DONE, OP_PUBLISH,
  OP_SETTLE, PUB_FLAG_PERSISTENT, PUB_FLAGS_OFFSET, PUB_FIXED_SIZE, PUB_META_LEN_OFFSET, PUB_QUEUE_OFFSET,
  SETTLE_KIND_OFFSET, SETTLE_MSG_OFFSET, SETTLE_MULTIPLE_OFFSET, SETTLE_OWNER_OFFSET, SETTLE_QUEUE_OFFSET, SETTLE_REQUEUE_OFFSET,
  SettleKind, readU32, readU64, writeU32, writeU64,
} from './ops.js';
import type { QueueDecl, ShardInit } from './shard-types.js';
import { manualClock, systemClock, type Clock } from './clock.js';
import { metaProperties } from './meta.js';
import { cpuYield } from './cpu-yield.js';
import { PayloadStore } from './payload-store.js';
import { copyBytes } from '../ring/ring.js';

/** Longest synchronous sleep of an idle shard (its event loop does not turn meanwhile). */
const SYNC_SLEEP_MS = 1;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A queue as the shard holds it. */
class ShardQueue {
  readonly queue: Queue;
  dirty = false;
  constructor(readonly decl: QueueDecl, shard: Shard) {
    const id = decl.id;
    this.queue = new Queue(decl.args, {
      deliver: (consumer, msgId, count, redelivered, payload) => shard.onDeliver(this, consumer, msgId, count, redelivered, payload),
      remove: (msgId, reason, count, payload) => shard.onRemove(this, msgId, reason, count, payload),
      returned: (msgId, count) => shard.onReturned(this, msgId, count),
      consumerTimedOut: (consumer) => shard.event({ type: 'consumer-timeout', queueId: id, consumer }),
    }, { u32Payloads: true }); // payload-store references (or null: body on disk)
  }
  get id(): number {
    return this.decl.id;
  }
}

class Shard {
  readonly init: ShardInit;
  readonly out: Outbox;
  readonly inbox: Inbox;
  log!: SegmentedLog;
  readonly queues = new Map<number, ShardQueue>();
  nextMsgId = 1;
  /** Bytes of message payloads held in memory; above the budget, persistent bodies stay on disk only. */
  memBytes = 0;
  readonly store = new PayloadStore();
  readonly memBudget: number;
  /** Scratch for outbound records (grown in 64 KiB steps, never shrunk). */
  scratch = new Uint8Array(1 << 16);
  // Confirms are in publish order per shard: `pubSeq` counts OP_PUBLISH records received; the shard
  // tells the I/O thread "every publish through N is settled" plus the rejected ones by sequence.
  pubSeq = 0;
  confirmedThrough = 0;
  /** Logged publishes not yet durable: their publish sequence and log sequence (a deque). */
  cfPub: number[] = [];
  cfLog: number[] = [];
  cfHead = 0;
  /** Publish sequences refused (overflow reject-publish), not yet reported. */
  rejects: number[] = [];
  waitingDurable = false;
  readonly dirtyQueues: ShardQueue[] = [];
  stopping = false;
  now: number;
  readonly clock: Clock;
  /** ms an idle shard polls its inbound ring before sleeping (ShardInit.spinUs). */
  private readonly spinMs: number;
  readonly getOut = new GetResult();
  /** Recovered messages over their queue's delivery limit: dead-lettered once the loop runs. */
  recoveredOverLimit: { sq: ShardQueue; id: number; count: number }[] = [];
  /** Messages dead-lettered and not yet confirmed by the I/O thread (queueId:msgId) -> still unsettled in the log. */
  readonly dlPending = new Set<string>();

  constructor(init: ShardInit) {
    this.init = init;
    this.out = new Outbox(init.fromShard);
    this.inbox = new Inbox(init.toShard);
    this.memBudget = init.memoryBudget;
    this.spinMs = (init.spinUs ?? 0) / 1000;
    this.clock = init.clock ? manualClock(init.clock) : systemClock;
    this.now = this.clock();
  }

  async start(): Promise<unknown> {
    let last = 0;
    this.log = await SegmentedLog.open(this.init.dir, {
      fsync: this.init.fsync, intervalMs: this.init.intervalMs, segmentBytes: this.init.segmentBytes,
      recovery: {
        // At most ten progress messages a second (ringmq serve shows them on a TTY).
        onProgress: (done, total) => {
          const now = performance.now();
          if (done < total && now - last < 100) return;
          last = now;
          parentPort!.postMessage({ type: 'recovery-progress', done, total });
        },
      },
    });
    return this.recover();
  }

  /** Rebuilds the durable queues from the log; settles messages of queues that no longer exist. */
  private recover(): unknown {
    const log = this.log;
    // Test only (`ringmq fuzz --self-check`): a planted bug that loses the first recovered message. Off unless the variable is set.
    let plantedDrop = process.env.RINGMQ_PLANT_BUG === 'drop-confirmed-on-recovery';
    let maxId = 0;
    let messages = 0;
    let dropped = 0;
    for (const decl of this.init.queues) this.queues.set(decl.id, new ShardQueue(decl, this));
    for (const [queueId, view] of log.index.queues) {
      const sq = this.queues.get(queueId);
      // Snapshot ids first: settling while iterating would disturb the view.
      const entries: { id: number; count: number }[] = [];
      for (const [msgId, e] of view) {
        entries.push({ id: msgId, count: e.deliveryCount });
        if (msgId > maxId) maxId = msgId;
      }
      if (sq === undefined) {
        for (const e of entries) log.appendSettle(queueId, e.id, SettleReason.Dropped);
        dropped += entries.length;
        continue;
      }
      for (const e of entries) {
        const m = log.readMessage({ queueId, messageId: e.id });
        const expiresAt = readU64(m.properties, META_EXPIRES_OFFSET);
        const readyAt = readU64(m.properties, META_READY_OFFSET);
        const publishedAt = readU64(m.properties, META_PUBLISHED_OFFSET);
        const limit = sq.decl.args.deliveryLimit;
        if (plantedDrop) {
          plantedDrop = false;
          continue;
        }
        if (limit !== undefined && e.count > limit) {
          // Its last delivery failed by the crash and that was one too many: dead-letter it now (G2).
          this.recoveredOverLimit.push({ sq, id: e.id, count: e.count });
          continue;
        }
        // A message recovered after a crash may have been delivered: flag it redelivered (as RabbitMQ does).
        sq.queue.enqueue(e.id, m.body.length, this.now, null, {
          expiresAt: expiresAt === 0 ? undefined : expiresAt, readyAt: readyAt === 0 ? undefined : readyAt,
          deliveryCount: e.count, redelivered: true, recovered: true,
          // The queue's TTL counts from the publish, not from the restart.
          enqueuedAt: publishedAt === 0 ? undefined : publishedAt,
        });
        messages++;
      }
      sq.dirty = true;
      this.dirtyQueues.push(sq);
    }
    this.nextMsgId = maxId + 1;
    const r = log.recovery;
    return { ...r, messages, dropped };
  }

  // ---- the loop -------------------------------------------------------------

  async run(): Promise<void> {
    const handler = this.handle;
    for (const r of this.recoveredOverLimit) this.onRemove(r.sq, r.id, 'delivery_limit', r.count, null);
    this.recoveredOverLimit = [];
    // One ref'd handle for the loop's life keeps this thread alive while it
    // sleeps in waitAsync (which holds none), instead of a timer per sleep.
    const alive = setInterval(noop, 0x7fffffff);
    try {
      await this.loop(handler);
    } finally {
      clearInterval(alive);
    }
  }

  private async loop(handler: Handler): Promise<void> {
    for (;;) {
      const n = this.inbox.drain(handler, 4096);
      if (this.stopping) return;
      this.now = this.clock();
      this.afterBatch();
      if (n > 0 || this.dirtyQueues.length > 0) {
        // Let I/O callbacks (fdatasync completions) run between busy batches.
        await new Promise<void>((r) => setImmediate(r));
      } else {
        // Poll a little before sleeping: a request-response peer often sends again within tens of µs,
        // and a wake through Atomics.waitAsync and this thread's event loop costs more than that.
        if (this.spinMs > 0 && this.spin()) continue;
        const deadline = this.nextDeadline();
        let wait = Math.max(0, Math.min(deadline - this.clock(), 200));
        if (wait > 0 && this.log.quiet) {
          // Nothing of the log waits for the event loop: sleep the first slice in Atomics.wait (a
          // futex wake, cheaper than waitAsync's task through the event loop), then in waitAsync.
          const slice = Math.min(wait, SYNC_SLEEP_MS);
          if (this.inbox.ring.waitSync(slice)) continue;
          wait -= slice;
        }
        if (wait > 0) await this.inbox.ring.wait(wait, false);
      }
    }
  }

  /** Polls the inbound ring for up to spinMs; true if a record came. */
  private spin(): boolean {
    const ring = this.inbox.ring;
    const end = performance.now() + this.spinMs;
    do {
      // performance.now() allocates a heap number: read the clock once per 64 polls.
      for (let i = 0; i < 64; i++) if (ring.available()) return true;
      // A thread waiting for this core (the I/O thread with the next record, a client) goes first.
      cpuYield();
    } while (performance.now() < end);
    return false;
  }

  private afterBatch(): void {
    // Ask for the fdatasync the batch's persistent publishes wait for and
    // start it now: it runs (on the thread pool) while this thread
    // dispatches, instead of after.
    this.sendConfirms();
    this.log.syncNow();
    const now = this.now;
    for (const sq of this.queues.values()) {
      if (sq.queue.nextDeadline() <= now) {
        sq.queue.tick(now);
        if (!sq.dirty) { sq.dirty = true; this.dirtyQueues.push(sq); }
      }
    }
    // Dispatch in bounded slices, and not while the outbound ring spills
    // (backpressure from the I/O thread): a queue with more to give stays dirty.
    const dq = this.dirtyQueues;
    const n = dq.length;
    if (!this.out.spilled) {
      for (let i = 0; i < n; i++) {
        const sq = dq[i]!;
        sq.dirty = false;
        const sent = sq.queue.dispatch(now, DISPATCH_SLICE);
        if (sent === DISPATCH_SLICE) this.markDirty(sq);
      }
      dq.splice(0, n);
    }
    this.sendConfirms();
    // Write what the dispatch logged (delivery counts) before the deliveries
    // leave: a kill after a consumer saw one must find its count raised (G2).
    this.log.syncNow();
    this.out.publish();
  }

  private nextDeadline(): number {
    let d = Infinity;
    for (const sq of this.queues.values()) {
      const t = sq.queue.nextDeadline();
      if (t < d) d = t;
    }
    return d;
  }

  private markDirty(sq: ShardQueue): void {
    if (!sq.dirty) {
      sq.dirty = true;
      this.dirtyQueues.push(sq);
    }
  }

  readonly handle = (type: number, b: Uint8Array, o: number, len: number): void => {
    switch (type) {
      case OP_PUBLISH: return this.publish(b, o, len);
      case OP_SETTLE: return this.settle(b, o);
      case OP_DL_DONE: return this.dlDone(readU32(b, o), readU64(b, o + 4));
      case OP_CTRL: return this.ctrl(readU32(b, o), fromUtf8.decode(b.subarray(o + 4, o + len)));
      default: throw new Error(`shard ${this.init.index}: unknown op ${type}`);
    }
  };

  // ---- publish & confirms -----------------------------------------------------

  private publish(b: Uint8Array, o: number, len: number): void {
    const queueId = readU32(b, o + PUB_QUEUE_OFFSET);
    const pubSeq = ++this.pubSeq;
    const flags = readU32(b, o + PUB_FLAGS_OFFSET);
    const metaLen = readU32(b, o + PUB_META_LEN_OFFSET);
    const metaAt = o + PUB_FIXED_SIZE;
    const bodyAt = metaAt + metaLen;
    const bodyLen = o + len - bodyAt;
    const sq = this.queues.get(queueId);
    if (sq === undefined) {
      // The queue was deleted after routing: the message is unroutable now; it is confirmed (in order), as RabbitMQ confirms unroutable messages.
      return;
    }
    const persist = sq.decl.durable && (flags & PUB_FLAG_PERSISTENT) !== 0;
    const id = this.nextMsgId++;
    const expiresAt = readU64(b, metaAt + META_EXPIRES_OFFSET);
    const readyAt = readU64(b, metaAt + META_READY_OFFSET);
    // One copy of meta+body into memory unless the message is persistent and memory is over budget.
    // One copy of meta+body into the payload store, unless the message is persistent and memory is over budget.
    let payload: number | null = null;
    if (!persist || this.memBytes < this.memBudget) {
      payload = this.store.put(b, metaAt, o + len);
      this.memBytes += o + len - metaAt;
    }
    const opts = this.enqOpts;
    opts.expiresAt = expiresAt === 0 ? undefined : expiresAt;
    opts.readyAt = readyAt === 0 ? undefined : readyAt;
    const r = sq.queue.enqueue(id, bodyLen, this.now, payload, opts);
    if (r === 0) {
      let seq = 0;
      if (persist) {
        seq = this.log.appendEnqueue(queueId, id, b.subarray(metaAt, bodyAt), b.subarray(bodyAt, o + len));
        this.cfPub.push(pubSeq);
        this.cfLog.push(seq);
      }
      this.markDirty(sq);
      return;
    }
    if (payload !== null) this.dropPayload(payload);
    this.rejects.push(pubSeq);
    if (r === 2 && sq.decl.deadLetterExchange !== undefined) {
      this.sendDeadLetter(sq, id, 'maxlen', 0, b, metaAt, metaLen, bodyAt, bodyLen, false);
    }
  }
  private readonly enqOpts: { expiresAt?: number; readyAt?: number } = {};

  /**
   * Sends one EV_CONFIRM when the confirmed prefix moved or publishes were
   * rejected: every publish up to the first logged one not yet durable is
   * settled. Group commit: one durable() wait covers every logged publish
   * pending when it starts.
   */
  private sendConfirms(): void {
    const durable = this.log.confirmableSequence;
    while (this.cfHead < this.cfLog.length && this.cfLog[this.cfHead]! <= durable) this.cfHead++;
    const pending = this.cfHead < this.cfLog.length;
    const through = pending ? this.cfPub[this.cfHead]! - 1 : this.pubSeq;
    if (through > this.confirmedThrough || this.rejects.length > 0) {
      const n = this.rejects.length;
      const size = CONFIRM_FIXED_SIZE + n * CONFIRM_ENTRY_SIZE;
      const s = this.scratchFor(size);
      writeU64(s, CONFIRM_THROUGH_OFFSET, through);
      writeU32(s, CONFIRM_REJECTS_OFFSET, n);
      for (let i = 0; i < n; i++) writeU64(s, CONFIRM_FIXED_SIZE + i * CONFIRM_ENTRY_SIZE, this.rejects[i]!);
      this.rejects.length = 0;
      this.out.write(EV_CONFIRM, s, 0, size);
      this.confirmedThrough = through;
    }
    if (!pending) {
      this.cfPub.length = this.cfLog.length = 0;
      this.cfHead = 0;
    } else {
      if (this.cfHead > 4096 && this.cfHead * 2 > this.cfLog.length) {
        this.cfPub.splice(0, this.cfHead);
        this.cfLog.splice(0, this.cfHead);
        this.cfHead = 0;
      }
      if (!this.waitingDurable) {
        this.waitingDurable = true;
        this.log.durable(this.cfLog[this.cfLog.length - 1]!).then(
          () => { this.waitingDurable = false; this.sendConfirms(); this.out.publish(); },
          (e: unknown) => this.fatal(e),
        );
      }
    }
  }

  // ---- deliveries, settles ----------------------------------------------------

  private scratchFor(size: number): Uint8Array {
    if (size > this.scratch.length) this.scratch = new Uint8Array((size + 0xffff) & ~0xffff);
    return this.scratch;
  }

  onDeliver(sq: ShardQueue, consumer: number, msgId: number, count: number, redelivered: boolean, payload: unknown): void {
    const size = this.prepareMessage(sq, msgId, payload, DLV_FIXED_SIZE, DLV_META_LEN_OFFSET);
    const s = this.scratch;
    writeU32(s, DLV_CONSUMER_OFFSET, consumer);
    writeU32(s, DLV_QUEUE_OFFSET, sq.id);
    writeU64(s, DLV_MSG_OFFSET, msgId);
    writeU32(s, DLV_COUNT_OFFSET, count);
    writeU32(s, DLV_FLAGS_OFFSET, redelivered ? DLV_FLAG_REDELIVERED : 0);
    this.out.write(EV_DELIVER, s, 0, size);
    this.logDelivery(sq, msgId, count);
  }

  /**
   * A logged message being delivered: persist the count it will have if this
   * delivery fails by a crash or a restart, so it comes back with its count
   * raised (G2) and the delivery limit holds across restarts. One small
   * record per delivery, no fsync (an ack that follows settles it anyway).
   */
  private logDelivery(sq: ShardQueue, msgId: number, count: number): void {
    if (this.isLogged(sq, msgId)) this.log.appendDeliveryCount(sq.id, msgId, count + 1);
  }

  private isLogged(sq: ShardQueue, msgId: number): boolean {
    if (!sq.decl.durable) return false;
    const v = this.log.index.queues.get(sq.id);
    return v !== undefined && v.slotOf(msgId) >= 0;
  }

  /**
   * Puts the message's meta and body (from the payload store or read back
   * from the log) into the scratch buffer after `fixed` bytes, writes the
   * meta length at `metaLenOffset`, and returns the record size. The caller
   * fills the rest of the fixed part and writes the record. No allocation
   * for in-memory messages.
   */
  private prepareMessage(sq: ShardQueue, msgId: number, payload: unknown, fixed: number, metaLenOffset: number): number {
    let metaLen: number;
    let size: number;
    let s: Uint8Array;
    if (payload !== null) {
      const ref = payload as number;
      const chunk = this.store.chunk(ref);
      const off = this.store.offset(ref);
      const len = this.store.length(ref);
      metaLen = readU32(chunk, off + META_LENGTH_OFFSET);
      size = fixed + len;
      s = this.scratchFor(size);
      copyBytes(s, fixed, chunk, off, len);
    } else {
      const m = this.log.readMessage({ queueId: sq.id, messageId: msgId });
      metaLen = m.properties.length;
      size = fixed + metaLen + m.body.length;
      s = this.scratchFor(size);
      s.set(m.properties, fixed);
      s.set(m.body, fixed + metaLen);
    }
    writeU32(s, metaLenOffset, metaLen);
    return size;
  }

  private dropPayload(ref: number): void {
    this.memBytes -= this.store.length(ref);
    this.store.drop(ref);
  }

  onRemove(sq: ShardQueue, msgId: number, reason: RemoveReason, count: number, payload: unknown): void {
    const logged = this.isLogged(sq, msgId);
    const isDl = reason === 'rejected' || reason === 'expired' || reason === 'maxlen' || reason === 'delivery_limit';
    if (isDl && sq.decl.deadLetterExchange !== undefined) {
      const size = this.prepareMessage(sq, msgId, payload, DL_FIXED_SIZE, DL_META_LEN_OFFSET);
      const s = this.scratch;
      writeU32(s, DL_QUEUE_OFFSET, sq.id);
      writeU64(s, DL_MSG_OFFSET, msgId);
      s[DL_REASON_OFFSET] = DL_REASONS.indexOf(reason as (typeof DL_REASONS)[number]);
      s[DL_NEEDS_DONE_OFFSET] = logged ? 1 : 0;
      s[DL_REASON_OFFSET + 2] = 0;
      s[DL_REASON_OFFSET + 3] = 0;
      writeU32(s, DL_COUNT_OFFSET, count);
      writeU64(s, DL_TIME_OFFSET, this.now);
      this.out.write(EV_DEAD_LETTER, s, 0, size);
      // A logged message stays unsettled until its dead-lettered copies are confirmed (OP_DL_DONE): a crash in between recovers it here.
      if (logged) this.dlPending.add(`${sq.id}:${msgId}`);
    } else if (logged) {
      this.log.appendSettle(sq.id, msgId, settleReasonOf(reason));
    }
    if (payload !== null) this.dropPayload(payload as number);
  }

  private sendDeadLetter(sq: ShardQueue, msgId: number, reason: (typeof DL_REASONS)[number], count: number,
    b: Uint8Array, metaAt: number, metaLen: number, bodyAt: number, bodyLen: number, needsDone: boolean): void {
    const size = DL_FIXED_SIZE + metaLen + bodyLen;
    const s = this.scratchFor(size);
    s.fill(0, 0, DL_FIXED_SIZE);
    writeU32(s, DL_QUEUE_OFFSET, sq.id);
    writeU64(s, DL_MSG_OFFSET, msgId);
    s[DL_REASON_OFFSET] = DL_REASONS.indexOf(reason);
    s[DL_NEEDS_DONE_OFFSET] = needsDone ? 1 : 0;
    writeU32(s, DL_COUNT_OFFSET, count);
    writeU64(s, DL_TIME_OFFSET, this.now);
    writeU32(s, DL_META_LEN_OFFSET, metaLen);
    s.set(b.subarray(metaAt, metaAt + metaLen), DL_FIXED_SIZE);
    s.set(b.subarray(bodyAt, bodyAt + bodyLen), DL_FIXED_SIZE + metaLen);
    this.out.write(EV_DEAD_LETTER, s, 0, size);
  }

  private dlDone(queueId: number, msgId: number): void {
    const key = `${queueId}:${msgId}`;
    if (!this.dlPending.delete(key)) return;
    const v = this.log.index.queues.get(queueId);
    if (v !== undefined && v.slotOf(msgId) >= 0) this.log.appendSettle(queueId, msgId, SettleReason.DeadLettered);
  }

  onReturned(sq: ShardQueue, msgId: number, count: number): void {
    if (this.isLogged(sq, msgId)) this.log.appendDeliveryCount(sq.id, msgId, count);
  }

  private settle(b: Uint8Array, o: number): void {
    const sq = this.queues.get(readU32(b, o + SETTLE_QUEUE_OFFSET));
    if (sq === undefined) return; // queue deleted: its messages are gone already
    const owner = readU32(b, o + SETTLE_OWNER_OFFSET);
    const msgId = readU64(b, o + SETTLE_MSG_OFFSET);
    const kind = b[o + SETTLE_KIND_OFFSET]!;
    const requeue = b[o + SETTLE_REQUEUE_OFFSET] === 1;
    const multiple = b[o + SETTLE_MULTIPLE_OFFSET] === 1;
    const q = sq.queue;
    let ok: boolean;
    // Only the holder settles: a settle from a delivery that a timeout or cancel returned is refused.
    if (kind === SettleKind.Ack) ok = multiple ? q.ackUpTo(owner, msgId) > 0 : q.ackBy(owner, msgId);
    else ok = multiple ? q.nackUpTo(owner, msgId, requeue, this.now) > 0 : q.nackBy(owner, msgId, requeue, this.now);
    if (!ok) this.event({ type: 'unknown-delivery', queueId: sq.id, msgId, owner });
    this.markDirty(sq);
  }

  // ---- control plane ------------------------------------------------------------

  event(e: object): void {
    const bytes = utf8.encode(JSON.stringify(e));
    this.out.write(EV_EVENT, bytes, 0, bytes.length);
  }

  private reply(reqId: number, ok: boolean, value: unknown): void {
    const json = utf8.encode(JSON.stringify(value ?? null));
    const s = new Uint8Array(8 + json.length);
    writeU32(s, 0, reqId);
    writeU32(s, 4, ok ? 1 : 0);
    s.set(json, 8);
    this.out.write(EV_CTRL_REPLY, s, 0, s.length);
  }

  private ctrl(reqId: number, json: string): void {
    let req: { op: string; [k: string]: unknown };
    try {
      req = JSON.parse(json);
      const r = this.ctrlOp(reqId, req);
      if (r !== NO_REPLY) this.reply(reqId, true, r);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      this.reply(reqId, false, { code: err.code ?? 'ERR_SHARD_FAILED', message: err.message ?? String(e) });
    }
  }

  private queueOf(id: unknown): ShardQueue {
    const sq = this.queues.get(id as number);
    if (sq === undefined) throw Object.assign(new Error(`queue id ${String(id)} is not on shard ${this.init.index}`), { code: 'ERR_NOT_FOUND' });
    return sq;
  }

  private ctrlOp(reqId: number, r: { op: string; [k: string]: unknown }): unknown {
    switch (r.op) {
      case 'declare': {
        const decl = r.decl as QueueDecl;
        if (!this.queues.has(decl.id)) this.queues.set(decl.id, new ShardQueue(decl, this));
        return this.info(this.queues.get(decl.id)!);
      }
      case 'info': return this.info(this.queueOf(r.queueId));
      case 'delete': {
        const sq = this.queueOf(r.queueId);
        const n = sq.queue.ready + sq.queue.unacked;
        sq.queue.deleteAll();
        this.queues.delete(sq.id);
        return { messageCount: n };
      }
      case 'purge': {
        const sq = this.queueOf(r.queueId);
        return { messageCount: sq.queue.purge() };
      }
      case 'consume': {
        const sq = this.queueOf(r.queueId);
        const res = sq.queue.addConsumer(r.consumer as number, r.prefetch as number, r.exclusive === true);
        if (res !== 'ok') throw Object.assign(new Error(`queue '${sq.decl.name}' has an exclusive consumer (or exclusive was asked while others consume)`), { code: 'ERR_RESOURCE_LOCKED' });
        this.markDirty(sq);
        return null;
      }
      case 'cancel': {
        const sq = this.queueOf(r.queueId);
        sq.queue.cancelConsumer(r.consumer as number, r.requeue !== false, this.now);
        this.markDirty(sq);
        return null;
      }
      case 'release': {
        const sq = this.queues.get(r.queueId as number);
        if (sq === undefined) return 0;
        const n = sq.queue.releaseOwner(r.owner as number, this.now);
        this.markDirty(sq);
        return n;
      }
      case 'get': {
        const sq = this.queueOf(r.queueId);
        const g = this.getOut;
        this.now = this.clock();
        sq.queue.tick(this.now);
        // A no-ack get takes the message under a transient owner and acks it once written: its body may have to be read from the log first.
        const owner = (r.owner as number | null) ?? null;
        if (!sq.queue.get(this.now, owner ?? NO_ACK_OWNER, g)) return { empty: true };
        const size = this.prepareMessage(sq, g.id, g.payload, GOT_FIXED_SIZE, GOT_META_LEN_OFFSET);
        const s = this.scratch;
        writeU32(s, GOT_REQ_OFFSET, reqId);
        writeU32(s, GOT_QUEUE_OFFSET, sq.id);
        writeU64(s, GOT_MSG_OFFSET, g.id);
        writeU32(s, GOT_COUNT_OFFSET, g.deliveryCount);
        writeU32(s, GOT_FLAGS_OFFSET, g.redelivered ? DLV_FLAG_REDELIVERED : 0);
        writeU32(s, GOT_REMAINING_OFFSET, g.remaining);
        this.out.write(EV_GOT, s, 0, size);
        if (owner === null) sq.queue.ack(g.id);
        else this.logDelivery(sq, g.id, g.deliveryCount);
        return NO_REPLY;
      }
      case 'inspect': {
        // Diagnostics and tests: every message with its state and body (UTF-8, from memory or the log).
        const sq = this.queueOf(r.queueId);
        return sq.queue.snapshot().map((m) => {
          let body: Uint8Array;
          let meta: Uint8Array;
          if (m.payload !== null) {
            const ref = m.payload as number;
            const all = this.store.chunk(ref).subarray(this.store.offset(ref), this.store.offset(ref) + this.store.length(ref));
            meta = all.subarray(0, readU32(all, META_LENGTH_OFFSET));
            body = all.subarray(meta.length);
          } else {
            const stored = this.log.readMessage({ queueId: sq.id, messageId: m.id });
            meta = stored.properties;
            body = stored.body;
          }
          const deaths = metaProperties(meta, 0).headers?.['x-death'];
          const reason = Array.isArray(deaths) && deaths.length > 0 ? (deaths[0] as Record<string, unknown>).reason : undefined;
          return { id: m.id, state: m.state, deliveryCount: m.deliveryCount, redelivered: m.redelivered, body: fromUtf8.decode(body), ...(typeof reason === 'string' ? { deathReason: reason } : {}) };
        });
      }
      case 'stats': {
        const queues: Record<number, ReturnType<Shard['info']>> = {};
        for (const sq of this.queues.values()) queues[sq.id] = this.info(sq);
        const d = this.log.durabilityStats;
        return {
          queues, log: this.log.stats, memBytes: this.memBytes, diskBytes: this.log.diskBytes(), ringSpilled: this.out.spilledRecords,
          segments: this.log.segments.length, fsyncBuckets: Array.from(d.buckets), fsyncSeconds: d.seconds,
          // The shard's ends of the rings: records and batches it took from the I/O thread and wrote to it.
          inRecords: this.inbox.ring.records, inBatches: this.inbox.ring.batches, outRecords: this.out.ring.records, outBatches: this.out.ring.batches,
        };
      }
      case 'memory': {
        // Bytes this shard's isolate holds (heap + array buffers), after a full GC when asked.
        // Twice: array buffers freed by a collection are swept concurrently and still counted until the next one finishes the sweep.
        if (r.gc === true) { collectGarbage(); collectGarbage(); }
        const m = process.memoryUsage();
        return { heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, external: m.external };
      }
      case 'reclaim': {
        this.log.reclaim().then(() => this.reply(reqId, true, null), (e: unknown) => this.reply(reqId, false, { code: 'ERR_SHARD_FAILED', message: String(e) }));
        return NO_REPLY;
      }
      case 'tick': {
        // Apply time and dispatch now (not after the batch), so the reply comes after every delivery it caused.
        this.now = this.clock();
        this.afterBatch();
        return null;
      }
      case 'sync': {
        const seq = this.log.lastSequence;
        this.log.durable(seq).then(() => this.reply(reqId, true, null), (e: unknown) => this.reply(reqId, false, { code: 'ERR_SHARD_FAILED', message: String(e) }));
        return NO_REPLY;
      }
      case 'close': {
        this.stopping = true;
        for (const sq of this.queues.values()) sq.queue.dispatch(this.now, 0);
        this.log.close().then(() => {
          this.reply(reqId, true, null);
          this.out.publish();
          // The CLOSE record wakes the I/O thread's reader, which then stops.
          void this.out.ring.close();
        }, (e: unknown) => this.fatal(e));
        return NO_REPLY;
      }
      case 'crash': {
        // Test only: drop everything as a killed process would (no flush, no fsync).
        this.stopping = true;
        this.log.abandon();
        process.exit(0);
      }
      // eslint-disable-next-line no-fallthrough
      default:
        throw Object.assign(new Error(`unknown control op ${r.op}`), { code: 'ERR_INVALID_ARGUMENT' });
    }
  }

  private info(sq: ShardQueue): { id: number; messageCount: number; consumerCount: number; unacked: number; readyBytes: number; counters: QueueCounters } {
    const q = sq.queue;
    return { id: sq.id, messageCount: q.ready, consumerCount: q.consumerCount, unacked: q.unacked, readyBytes: q.readyBytes, counters: q.counters };
  }

  fatal(e: unknown): void {
    parentPort!.postMessage({ type: 'fatal', message: e instanceof Error ? e.stack ?? e.message : String(e) });
    process.exit(1);
  }
}

const NO_REPLY = Symbol('no reply');

/** Owner of a message taken by a no-ack get for the instant before it is acked. */
const NO_ACK_OWNER = 0xffffffff;

/** A full GC in this isolate without --expose-gc (benchmarks measure memory at rest). */
function collectGarbage(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g();
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
/** Most messages one queue hands out per loop turn, so one busy queue cannot starve the rest or flood the outbound ring. */
const DISPATCH_SLICE = 1024;

function settleReasonOf(reason: RemoveReason): SettleReasonValue {
  switch (reason) {
    case 'acked': return SettleReason.Ack;
    case 'expired': return SettleReason.Expired;
    case 'rejected': case 'delivery_limit': return SettleReason.DeadLettered;
    default: return SettleReason.Dropped; // maxlen, purged, deleted
  }
}


const shard = new Shard(workerData as ShardInit);
shard.start().then(
  (recovery) => {
    parentPort!.postMessage({ type: 'ready', recovery });
    return shard.run();
  },
).then(
  () => { parentPort!.postMessage({ type: 'stopped' }); },
  (e: unknown) => shard.fatal(e),
);

function noop(): void {}
