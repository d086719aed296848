/**
 * The embedded broker: `import { Broker } from 'ringmq'`.
 *
 * The calling thread (the "I/O thread" of design.md) keeps the topology —
 * exchanges, bindings, which queue lives on which shard — in a Router and in
 * a small durable topology log (`<dir>/topology/`, fsync always), resolves
 * routing, and writes one record per target queue into that queue's shard
 * ring. Shard workers (src/engine/shard-worker.ts) own queue state and their
 * own log (`<dir>/shard-<i>/`); they send back deliveries, confirms, dead
 * letters and control replies.
 *
 * Confirms: a publish returns a `Confirm`, a thenable. It resolves when every
 * target queue has the message — after the fsync policy is met for a
 * persistent message to a durable queue — and rejects with ERR_REJECTED when
 * a queue refused it (reject-publish overflow). Nothing rejects unless the
 * confirm is awaited, so fire-and-forget is `publish` without awaiting.
 */
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BasicProperties } from './amqp/codec/properties.js';
import { Typed, fieldNumber, type FieldTable, type FieldValue } from './amqp/codec/field-table.js';
import { Writer } from './amqp/codec/writer.js';
import { BrokerError } from './errors.js';
import {
  CONFIRM_ENTRY_SIZE, CONFIRM_FIXED_SIZE, CONFIRM_REJECTS_OFFSET, CONFIRM_THROUGH_OFFSET, ConfirmStatus, DLV_COUNT_OFFSET, DLV_CONSUMER_OFFSET, DLV_FIXED_SIZE, DLV_FLAG_REDELIVERED, DLV_FLAGS_OFFSET,
  DLV_META_LEN_OFFSET, DLV_MSG_OFFSET, DLV_QUEUE_OFFSET, DL_COUNT_OFFSET, DL_FIXED_SIZE, DL_META_LEN_OFFSET, DL_MSG_OFFSET,
  DL_NEEDS_DONE_OFFSET, DL_QUEUE_OFFSET, DL_REASONS, DL_REASON_OFFSET, DL_TIME_OFFSET, DL_DONE_SIZE, EV_CONFIRM, EV_DEAD_LETTER,
  EV_DELIVER, EV_EVENT, EV_GOT, GOT_COUNT_OFFSET, GOT_FIXED_SIZE, GOT_FLAGS_OFFSET, GOT_META_LEN_OFFSET, GOT_MSG_OFFSET,
  GOT_QUEUE_OFFSET, GOT_REMAINING_OFFSET, GOT_REQ_OFFSET, OP_DL_DONE, OP_PUBLISH, OP_SETTLE, PUB_FIXED_SIZE, PUB_FLAG_PERSISTENT,
  PUB_FLAGS_OFFSET, PUB_META_LEN_OFFSET, PUB_QUEUE_OFFSET, PUB_RESERVED_OFFSET, SETTLE_KIND_OFFSET, SETTLE_MSG_OFFSET,
  SETTLE_MULTIPLE_OFFSET, SETTLE_OWNER_OFFSET, SETTLE_QUEUE_OFFSET, SETTLE_REQUEUE_OFFSET, SETTLE_SIZE, SettleKind,
  readU32, readU64, writeU32, writeU64, META_PUBLISHED_OFFSET,
} from './engine/ops.js';
import { metaExpiresAt, metaPersistent, metaProperties, metaPublishedAt, metaRoute, writeMeta } from './engine/meta.js';
import { Router, RouterError, withSortedKeys, type ExchangeDef, type ExchangeType } from './engine/router.js';
import { ShardHost } from './engine/shard-host.js';
import { microtask } from './engine/microtask.js';
import { cpuYield } from './engine/cpu-yield.js';
import { shardOf, spinSetting } from './engine/placement.js';
import { manualClock, systemClock, type Clock } from './engine/clock.js';
import type { QueueDecl } from './engine/shard-types.js';
import { SegmentedLog } from './log/segmented-log.js';
import { ExchangeKind, RecordType } from './log/records.js';
import { FSYNC_BUCKETS_S, type FsyncPolicy } from './log/fsync.js';
import { ringOccupancy } from './ring/index.js';
import type { Overflow, QueueArgs, QueueCounters } from './queue/queue.js';

export type { FsyncPolicy, Overflow, QueueCounters, ExchangeType };

// ---- options and public types ----------------------------------------------------

export interface BrokerOptions {
  /** Data directory (created if missing). One broker per directory (a lock file refuses a second). */
  dir: string;
  /** Shard workers. Default: min(4, available cores). Fixed for a data directory once queues exist on it (each queue remembers its shard). */
  shards?: number;
  /** When a persistent message is confirmed: after its group's fdatasync ('always', default), within intervalMs ('interval'), or after the write ('never'). */
  fsync?: FsyncPolicy;
  fsyncIntervalMs?: number;
  /** Log segment size. Default 64 MiB. */
  segmentBytes?: number;
  /** Bytes of each ring (one per direction per shard); a power of two. Default 4 MiB. */
  ringBytes?: number;
  /** Largest message body accepted. Default 128 MiB (as RabbitMQ's max_message_size). */
  maxMessageBytes?: number;
  /** Per shard: message bytes kept in memory; persistent bodies beyond it stay on disk only. Default 64 MiB. */
  memoryBudget?: number;
  /** Tests: a manual clock (ManualClock.sab) read by every thread instead of Date.now(). */
  clock?: SharedArrayBuffer;
  /**
   * µs an idle shard polls its inbound ring before it sleeps: saves the wake
   * (Atomics.waitAsync through the worker's event loop) when the next record
   * comes soon, as in request-response. Costs CPU while idle, but yields the
   * core (sched_yield) to any thread waiting for it. Default 50 when there
   * are 2 cores or more and every shard can have one (shards <= cores), else
   * 0; the environment variable RINGMQ_SHARD_SPIN_US overrides it.
   */
  spinUs?: number;
  /**
   * µs the calling thread waits, right after publishing, for the shards'
   * answers (deliveries, confirms) and handles them at once instead of
   * through the Atomics.waitAsync wake (a task on the event loop): shorter
   * request-response round trips, at the cost of blocking this thread's
   * event loop up to ioSpinUs per poll (adaptive: a poll that gets nothing
   * makes the next ones skip; it yields the core, sched_yield, to any thread
   * waiting for it). Only publishes the shard answers at once are
   * waited for (not persistent messages to durable queues under fsync
   * 'always', whose confirm waits for an fdatasync). Default 30 when there
   * are 2 cores or more and every shard can have one (shards <= cores), else
   * 0; RINGMQ_IO_SPIN_US overrides it.
   */
  ioSpinUs?: number;
  /**
   * Log recovery progress at open, per shard: bytes of segment files scanned
   * and in all (at most ten calls a second per shard, and one at the end).
   * `ringmq serve` draws it as a progress line on a TTY.
   */
  onRecoveryProgress?: (shard: number, bytesDone: number, bytesTotal: number) => void;
  /**
   * Memory alarm (G10): publishing is refused (ERR_BLOCKED, 'blocked' event)
   * while the process RSS is above this. Bytes, or a fraction of the machine's
   * memory when <= 1. Default 0.4 (RabbitMQ's vm_memory_high_watermark).
   */
  memoryHighWater?: number;
  /** Disk alarm (G10): publishing is refused while the data directory's file system has less than this free. Bytes; default 50 MB (RabbitMQ's disk_free_limit). */
  diskFreeLimit?: number;
  /** How often the alarms are checked, ms. Default 250. */
  resourceCheckMs?: number;
}

export interface QueueOptions {
  /** Survives restarts (with its persistent messages). Default true. */
  durable?: boolean;
  /** Only its owner may use it; deleted when the owner goes (or the broker closes). Never durable. */
  exclusive?: boolean;
  /** Deleted when its last consumer cancels (once it has had one). */
  autoDelete?: boolean;
  /** Check that the queue exists, create nothing (AMQP passive declare). */
  passive?: boolean;
  /** x-message-ttl, ms. */
  messageTtl?: number;
  /** x-max-length: ready messages. */
  maxLength?: number;
  /** x-max-length-bytes: body bytes of ready messages. */
  maxLengthBytes?: number;
  /** x-overflow. Default 'drop-head'. */
  overflow?: Overflow;
  /** x-dead-letter-exchange ('' = the default exchange). */
  deadLetterExchange?: string;
  /** x-dead-letter-routing-key (default: the message's own routing key). */
  deadLetterRoutingKey?: string;
  /** x-delivery-limit: a message returned more than this many times is dead-lettered ('delivery_limit'). */
  deliveryLimit?: number;
  /** Ack timeout per delivery, ms (RabbitMQ consumer_timeout): an overrun cancels the consumer and returns its messages. */
  consumerTimeout?: number;
  /** Delay, ms, before a returned (nacked, cancelled, timed-out) message is ready again. */
  redeliveryDelay?: number;
  /** Owner of an exclusive queue (see Broker.newOwner). Default 0, the embedding process. */
  owner?: number;
  /** x-expires, ms (>= 1): the queue is deleted once unused that long — no consumer, no get, no redeclare (RabbitMQ's meaning). The clock restarts when the broker does. */
  expires?: number;
}

export interface ExchangeOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  alternateExchange?: string;
  passive?: boolean;
  arguments?: Record<string, unknown>;
}

/** Message properties, as AMQP 0-9-1 basic properties (RabbitMQ clients see exactly these). */
export interface MessageProperties {
  contentType?: string;
  contentEncoding?: string;
  headers?: FieldTable;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  messageId?: string;
  /** Seconds since the epoch. */
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

export interface PublishOptions extends MessageProperties {
  /** Written to the log of a durable queue and confirmed after fsync. Default true. */
  persistent?: boolean;
  /** Unroutable messages are handed back ('return' event) instead of dropped. */
  mandatory?: boolean;
  /** Per-message TTL, ms (AMQP expiration). */
  expiration?: number;
  /** Deliver not before this many ms from now (delayed publish; survives restarts). */
  delay?: number;
  /**
   * AMQP basic properties kept exactly as given (the AMQP server passes what
   * the client sent, so every property and header round-trips, deliveryMode
   * and cluster-id included). When set, the MessageProperties fields above
   * are ignored and nothing is derived from `persistent`; `expiration` still
   * sets the TTL, and headers exchanges route on `properties.headers`.
   */
  properties?: BasicProperties;
}

export interface ConsumeOptions {
  /** Unacked messages this consumer may hold. 0 = unlimited. Default 0 (as AMQP without basic.qos). */
  prefetch?: number;
  /** Messages count as acked when delivered. */
  noAck?: boolean;
  exclusive?: boolean;
  owner?: number;
}

export interface QueueInfo {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

export interface QueueStats {
  ready: number;
  unacked: number;
  consumers: number;
  readyBytes: number;
  counters: QueueCounters;
  /** Per second since the previous stats() call. */
  rates: { published: number; delivered: number; acked: number };
}

export interface BrokerStats {
  queues: Record<string, QueueStats>;
  shards: ShardStats[];
}

/** Per shard worker (metrics: docs/metrics.md). Counters count since the broker opened. */
export interface ShardStats {
  index: number;
  /** Message bytes the shard holds in memory. */
  memBytes: number;
  /** Bytes of its log segments on disk, and how many segments. */
  diskBytes: number;
  segments: number;
  /** The log's counters: appends, writeSyscalls, bytesWritten, syncs, lastSeq, writtenSeq, durableSeq. */
  log: Record<string, number>;
  /** fdatasync latency: counts per bucket (upper bounds `fsyncBucketBounds`, seconds; last +Inf) and total seconds. */
  fsyncBuckets: number[];
  fsyncBucketBounds: readonly number[];
  fsyncSeconds: number;
  /** Records the shard's outbox had to hold back for ring space (backpressure). */
  ringSpilled: number;
  /** Ring I/O thread -> shard: records and batches (one index publication each), bytes waiting now, capacity. */
  toShard: RingStats;
  /** Ring shard -> I/O thread. */
  fromShard: RingStats;
  /** Log recovery at open: wall time, bytes scanned, records. */
  recovery: { ms: number; bytes: number; records: number };
}

export interface RingStats {
  records: number;
  batches: number;
  usedBytes: number;
  capacity: number;
}

export type MessageHandler = (msg: Message) => void | Promise<void>;

// ---- messages --------------------------------------------------------------------

/**
 * A delivered message. `body` is the message's own copy; `properties`,
 * `exchange` and `routingKey` are decoded on first access.
 */
export class Message {
  readonly queue: string;
  readonly redelivered: boolean;
  /** Times the message was returned to its queue before this delivery (x-delivery-count). */
  readonly deliveryCount: number;
  /** Messages left in the queue (get only; -1 otherwise). */
  readonly messageCount: number;
  /** @internal */ readonly queueId: number;
  /** @internal */ readonly msgId: number;
  /** @internal */ readonly owner: number;
  /** @internal */ settled: boolean;
  /** @internal */ readonly broker: Broker | null;
  /** The message's own copy of meta + body; views of it are made on first use. */
  private readonly raw: Buffer;
  private readonly metaLen: number;
  private bodyView: Buffer | null = null;
  private metaView: Buffer | null = null;
  private props: BasicProperties | null = null;
  private route: { exchange: string; routingKey: string } | null = null;

  constructor(broker: Broker | null, queue: string, queueId: number, msgId: number, owner: number, raw: Buffer, metaLen: number,
    redelivered: boolean, deliveryCount: number, messageCount: number, settled: boolean) {
    this.broker = broker;
    this.queue = queue;
    this.queueId = queueId;
    this.msgId = msgId;
    this.owner = owner;
    this.raw = raw;
    this.metaLen = metaLen;
    this.redelivered = redelivered;
    this.deliveryCount = deliveryCount;
    this.messageCount = messageCount;
    this.settled = settled;
  }

  /** The body (the message's own copy). */
  get body(): Buffer {
    return (this.bodyView ??= this.raw.subarray(this.metaLen));
  }
  /** @internal The engine's envelope (docs/log-format.md §4.1). */
  get meta(): Buffer {
    return (this.metaView ??= this.raw.subarray(0, this.metaLen));
  }

  get properties(): BasicProperties {
    return (this.props ??= metaProperties(this.meta, 0));
  }
  get exchange(): string {
    return (this.route ??= metaRoute(this.meta, 0)).exchange;
  }
  get routingKey(): string {
    return (this.route ??= metaRoute(this.meta, 0)).routingKey;
  }
  get persistent(): boolean {
    return metaPersistent(this.meta, 0);
  }
  /** When it was published (ms since the epoch). */
  get publishedAt(): number {
    return metaPublishedAt(this.meta, 0);
  }
  /**
   * The headers with plain JS values: AMQP integers and floats as numbers
   * (64-bit ones as bigint when unsafe), timestamps as Date. The exact AMQP
   * types are in `properties.headers`.
   */
  get headers(): Record<string, unknown> {
    return (this.plainHeaders ??= plainTable(this.properties.headers ?? {}));
  }
  private plainHeaders: Record<string, unknown> | null = null;
  /** The body as UTF-8 text. */
  text(): string {
    return this.body.toString('utf8');
  }
  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** Acknowledges this message (and, with multiple, every unacked one delivered before it to the same consumer: delivery order, as AMQP delivery tags). */
  ack(multiple = false): void {
    this.settle(SettleKind.Ack, false, multiple);
  }
  /** Negative acknowledgement: requeue (default) puts it back in its place, marked redelivered; otherwise it is dead-lettered ('rejected'). */
  nack(opts: { requeue?: boolean; multiple?: boolean } = {}): void {
    this.settle(SettleKind.Nack, opts.requeue !== false, opts.multiple === true);
  }
  /** As nack without multiple; requeue defaults to false (AMQP basic.reject as usually used). */
  reject(requeue = false): void {
    this.settle(SettleKind.Nack, requeue, false);
  }

  private settle(kind: number, requeue: boolean, multiple: boolean): void {
    if (this.settled) throw new BrokerError('ERR_PRECONDITION', `message ${this.msgId} of queue '${this.queue}' is already settled (or was delivered with noAck)`);
    if (this.broker === null) throw new BrokerError('ERR_PRECONDITION', 'message is not from a queue');
    this.settled = true;
    this.broker.settle(this, kind, requeue, multiple);
  }
}

/**
 * A publish's confirm: a thenable resolved when every target queue has the
 * message (persistent ones on disk per the fsync policy), rejected with
 * ERR_REJECTED if a queue refused it. Not awaiting it is fire-and-forget.
 */
export class Confirm implements PromiseLike<void> {
  /** Target queues still to answer. */
  /** @internal */ remaining: number;
  /** @internal */ error: BrokerError | null = null;
  /** @internal */ onSettled: (() => void) | null = null;
  private promise: Promise<void> | null = null;
  private resolveFn: (() => void) | null = null;
  private rejectFn: ((e: Error) => void) | null = null;
  /** False if the message waited for ring space (backpressure): slow down until Broker.drained(). */
  written: boolean;

  constructor(remaining: number, written = true, error: BrokerError | null = null) {
    this.remaining = remaining;
    this.written = written;
    this.error = error;
  }

  get done(): boolean {
    return this.remaining === 0 || this.error !== null;
  }

  /** @internal */ answer(status: number): void {
    if (status !== ConfirmStatus.Ok && this.error === null) this.error = new BrokerError('ERR_REJECTED', 'a target queue refused the message (overflow reject-publish)');
    if (--this.remaining === 0 || status !== ConfirmStatus.Ok) this.finish();
  }

  /** @internal */ fail(e: BrokerError): void {
    if (this.done) return;
    this.error = e;
    this.finish();
  }

  private finished = false;

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.error !== null) this.rejectFn?.(this.error);
    else this.resolveFn?.();
    const f = this.onSettled;
    this.onSettled = null;
    f?.();
  }

  then<A = void, B = never>(onOk?: ((v: void) => A | PromiseLike<A>) | null, onErr?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<A | B> {
    if (this.promise === null) {
      if (this.error !== null) this.promise = Promise.reject(this.error);
      else if (this.remaining === 0) this.promise = Promise.resolve();
      else this.promise = new Promise<void>((res, rej) => { this.resolveFn = res; this.rejectFn = rej; });
    }
    return this.promise.then(onOk, onErr);
  }
}

export class Consumer {
  /** @internal */ active = true;
  /**
   * @internal noAck: the last message handed to the handler and not yet
   * acked at the shard (-1: none). The shard keeps a noAck delivery unacked
   * until the I/O thread has handed it over, so what a cancel or a lost
   * owner catches in flight goes back to the queue instead of being lost.
   */
  pendingAck = -1;
  constructor(readonly tag: number, readonly queue: string, /** @internal */ readonly queueId: number,
    /** @internal */ readonly handler: MessageHandler, /** @internal */ readonly noAck: boolean,
    /** @internal */ readonly broker: Broker, /** @internal */ readonly owner: number) {}
  /** Stops deliveries; unacked messages go back to the queue (redelivered). */
  cancel(): Promise<void> {
    return this.broker.cancel(this);
  }
}

/** A batch of publishes and acks applied together at commit (AMQP tx maps onto it). */
export class Transaction {
  private ops: (() => Confirm | void)[] = [];
  private closed = false;
  constructor(private readonly broker: Broker) {}
  publish(exchange: string, routingKey: string, body: Uint8Array | string, opts: PublishOptions = {}): void {
    this.check();
    // Routing errors surface now, at the publish, as AMQP does.
    this.broker.checkRoutable(exchange);
    const copy = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
    this.ops.push(() => this.broker.publish(exchange, routingKey, copy, opts));
  }
  ack(msg: Message, multiple = false): void {
    this.check();
    this.ops.push(() => msg.ack(multiple));
  }
  nack(msg: Message, opts: { requeue?: boolean; multiple?: boolean } = {}): void {
    this.check();
    this.ops.push(() => msg.nack(opts));
  }
  /** Applies every operation in order; resolves when every publish is confirmed. */
  async commit(): Promise<void> {
    this.check();
    const ops = this.ops;
    this.ops = [];
    const confirms: Confirm[] = [];
    for (const op of ops) {
      const c = op();
      if (c instanceof Confirm) confirms.push(c);
    }
    for (const c of confirms) await c;
  }
  rollback(): void {
    this.check();
    this.ops = [];
  }
  close(): void {
    this.closed = true;
    this.ops = [];
  }
  private check(): void {
    if (this.closed) throw new BrokerError('ERR_CLOSED', 'transaction is closed');
  }
}

// ---- the broker ------------------------------------------------------------------

interface QueueEntry {
  decl: QueueDecl;
  host: ShardHost;
  owner: number;
  /** For redeclare equivalence. */
  signature: string;
  hadConsumer: boolean;
  consumers: Set<number>;
  last: { t: number; published: number; delivered: number; acked: number } | null;
  /** x-expires timer, running while the queue is unused. */
  expiry: NodeJS.Timeout | null;
}

const EXCHANGE_KINDS: Record<ExchangeType, number> = { direct: ExchangeKind.Direct, fanout: ExchangeKind.Fanout, topic: ExchangeKind.Topic, headers: ExchangeKind.Headers };
const KIND_NAMES: ExchangeType[] = ['direct', 'fanout', 'topic', 'headers'];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();
/** Broker.publishEncoded: slots of the plain-message meta cache. */
const META_CACHE_SLOTS = 4;
/** Broker.pollReplies: polls allowed per event-loop turn. */
const IO_POLLS_PER_TURN = 32;


export class Broker extends EventEmitter {
  readonly dir: string;
  readonly shardCount: number;
  readonly fsync: FsyncPolicy;
  readonly maxMessageBytes: number;
  private readonly clock: Clock;
  /** BrokerOptions.ioSpinUs, in ms (performance.now()'s unit); 0: no I/O poll. */
  private readonly ioSpinMs: number;
  private readonly hosts: ShardHost[];
  private readonly topology: SegmentedLog;
  private readonly router = new Router();
  private readonly queues = new Map<string, QueueEntry>();
  private readonly queuesById = new Map<number, QueueEntry>();
  private nextQueueId: number;
  private readonly consumers = new Map<number, Consumer>();
  /** Consumers cancelled without requeue whose cancel the shard has not answered yet (see cancel()). */
  private readonly cancelling = new Set<number>();
  private nextConsumer = 1;
  private nextOwnerId = 1;
  private readonly gets = new Map<number, { resolve: (m: Message | null) => void; queue: string; noAck: boolean; owner: number }>();
  private readonly w = new Writer(1 << 16);
  private readonly routeOut: string[] = [];
  /**
   * The meta of the last plain messages (no properties, TTL or delay), per
   * (exchange, routing key, persistent), in a few slots replaced in turn:
   * publishers that alternate among a few queues (one per shard) hit too.
   */
  private readonly metaCache: { meta: Uint8Array; exchange: string; routingKey: string; persistent: boolean }[] = [];
  private metaCacheNext = 0;
  private readonly settleRec = new Uint8Array(SETTLE_SIZE);
  private readonly dlDoneRec = new Uint8Array(DL_DONE_SIZE);
  private flushScheduled = false;
  /** noAck consumers with deliveries handed over and not yet acked (Consumer.pendingAck). */
  private readonly noAckPending: Consumer[] = [];
  private readonly dirtyHosts: ShardHost[] = [];
  private closed = false;
  /** close() has begun waiting for the dead letters in flight: new ones stay in their origin queues. */
  private closing = false;
  /** Dead-letter copies whose confirms are awaited before the origin is settled (close waits for them). */
  private deadLettersInFlight = 0;
  private readonly dlWaiters: (() => void)[] = [];
  private readonly lockPath: string;
  // resource alarms (G10)
  private readonly alarms = new Set<'memory' | 'disk'>();
  private memoryHighWater = 0;
  private diskFreeLimit = 0;
  private alarmTimer: NodeJS.Timeout | null = null;
  private diskCheck: Promise<void> | null = null;
  private lastDiskCheck = 0;
  // request/response
  private replyQueue: string | null = null;
  private replyQueueReady: Promise<string> | null = null;
  private readonly requests = new Map<string, { resolve: (m: Message) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private nextCorrelation = 1;
  private readonly instanceId = Math.random().toString(36).slice(2, 10);
  /** Replies that came after their request timed out (dropped, never handed to another request: G9). */
  lateReplies = 0;

  private constructor(opts: Required<Pick<BrokerOptions, 'dir' | 'fsync' | 'maxMessageBytes'>> & { shards: number; ioSpinUs: number }, topology: SegmentedLog, hosts: ShardHost[], lockPath: string, nextQueueId: number, clock: Clock) {
    super();
    this.clock = clock;
    this.dir = opts.dir;
    this.shardCount = opts.shards;
    this.fsync = opts.fsync;
    this.maxMessageBytes = opts.maxMessageBytes;
    this.ioSpinMs = opts.ioSpinUs / 1000;
    this.topology = topology;
    this.hosts = hosts;
    this.lockPath = lockPath;
    this.nextQueueId = nextQueueId;
  }

  /** Opens (creating if needed) a broker on `dir`: recovers the topology, then every shard's log in parallel. */
  static async open(opts: BrokerOptions): Promise<Broker> {
    const shards = opts.shards ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(shards) || shards < 1 || shards > 64) throw new BrokerError('ERR_INVALID_ARGUMENT', `shards must be an integer in [1, 64], got ${shards}`);
    const fsync = opts.fsync ?? 'always';
    if (!['always', 'interval', 'never'].includes(fsync)) throw new BrokerError('ERR_INVALID_ARGUMENT', `fsync must be always, interval or never, got ${String(fsync)}`);
    const ringBytes = opts.ringBytes ?? 4 * 1024 * 1024;
    if (!Number.isInteger(ringBytes) || ringBytes < 64 * 1024 || (ringBytes & (ringBytes - 1)) !== 0) throw new BrokerError('ERR_INVALID_ARGUMENT', 'ringBytes must be a power of two >= 64 KiB');
    const dir = opts.dir;
    mkdirSync(dir, { recursive: true });
    const lockPath = join(dir, 'LOCK');
    takeLock(lockPath);
    let topology: SegmentedLog | null = null;
    const hosts: ShardHost[] = [];
    try {
      topology = await SegmentedLog.open(join(dir, 'topology'), { fsync: 'always', segmentBytes: 4 * 1024 * 1024 });
      const idx = topology.index;
      const decls: QueueDecl[] = [];
      let maxQueueId = 0;
      for (const [id, info] of idx.declaredQueues) {
        const decl = JSON.parse(fromUtf8.decode(info.arguments)) as QueueDecl;
        decl.id = id;
        if (decl.shard >= shards) throw new BrokerError('ERR_INVALID_ARGUMENT', `queue '${decl.name}' lives on shard ${decl.shard} but the broker was opened with ${shards} shards; open it with shards >= ${decl.shard + 1}`);
        decls.push(decl);
        if (id > maxQueueId) maxQueueId = id;
      }
      const memoryBudget = opts.memoryBudget ?? 64 * 1024 * 1024;
      const spinUs = spinSetting(process.env.RINGMQ_SHARD_SPIN_US, opts.spinUs, 50, shards);
      if (!Number.isFinite(spinUs) || spinUs < 0 || spinUs > 10_000) throw new BrokerError('ERR_INVALID_ARGUMENT', `spinUs must be in [0, 10000], got ${spinUs}`);
      const ioSpinUs = spinSetting(process.env.RINGMQ_IO_SPIN_US, opts.ioSpinUs, 30, shards);
      if (!Number.isFinite(ioSpinUs) || ioSpinUs < 0 || ioSpinUs > 1000) throw new BrokerError('ERR_INVALID_ARGUMENT', `ioSpinUs must be in [0, 1000], got ${ioSpinUs}`);
      for (let i = 0; i < shards; i++) {
        hosts.push(new ShardHost({
          index: i, dir: join(dir, `shard-${i}`), fsync, intervalMs: opts.fsyncIntervalMs ?? 100, segmentBytes: opts.segmentBytes ?? 64 * 1024 * 1024,
          queues: decls.filter((d) => d.shard === i), memoryBudget, ringBytes, ringMaxBody: Math.min(1 << 20, ringBytes / 4), spinUs,
          onRecoveryProgress: opts.onRecoveryProgress,
          ...(opts.clock ? { clock: opts.clock } : {}),
        }));
      }
      await Promise.all(hosts.map((h) => h.start()));
      const broker = new Broker({ dir, fsync, maxMessageBytes: opts.maxMessageBytes ?? 128 * 1024 * 1024, shards, ioSpinUs }, topology, hosts, lockPath, maxQueueId + 1, opts.clock ? manualClock(opts.clock) : systemClock);
      broker.restoreTopology(decls);
      broker.startAlarms(opts);
      return broker;
    } catch (e) {
      await Promise.all(hosts.map((h) => h.abort().catch(() => {})));
      await topology?.close().catch(() => {});
      releaseLock(lockPath);
      throw e;
    }
  }

  private restoreTopology(decls: QueueDecl[]): void {
    const idx = this.topology.index;
    for (const [name, info] of idx.exchanges) {
      const def = JSON.parse(fromUtf8.decode(info.arguments)) as ExchangeDef;
      def.name = name;
      def.type = KIND_NAMES[info.kind]!;
      if (this.router.exchange(name) === undefined) this.router.declareExchange(def);
    }
    for (const d of decls) this.addQueueEntry(d, 0);
    for (const b of idx.bindings.values()) {
      const q = this.queuesById.get(b.queueId);
      if (q === undefined || this.router.exchange(b.exchange) === undefined) continue;
      this.router.bind({ exchange: b.exchange, queue: q.decl.name, routingKey: b.routingKey, arguments: JSON.parse(fromUtf8.decode(b.arguments)) as Record<string, unknown> });
    }
    for (const h of this.hosts) {
      h.onRecord = (type, b, o, len) => this.onShardRecord(h, type, b, o, len);
      h.onBatch = () => this.flush();
      h.onFailure = (e) => this.onShardFailure(h, e);
      h.startReading();
    }
  }

  // ---- resource alarms (G10) --------------------------------------------------------

  private startAlarms(opts: BrokerOptions): void {
    this.setLimits({ memoryHighWater: opts.memoryHighWater ?? 0.4, diskFreeLimit: opts.diskFreeLimit ?? 50 * 1024 * 1024 });
    const every = opts.resourceCheckMs ?? 250;
    if (!Number.isFinite(every) || every < 1) throw new BrokerError('ERR_INVALID_ARGUMENT', `resourceCheckMs must be >= 1, got ${every}`);
    this.alarmTimer = setInterval(() => this.checkAlarms(), every);
    this.alarmTimer.unref();
    this.checkAlarms();
  }

  /**
   * Changes the alarm thresholds at run time (as `rabbitmqctl
   * set_vm_memory_high_watermark` / `set_disk_free_limit`); checks at once.
   */
  setLimits(limits: { memoryHighWater?: number; diskFreeLimit?: number }): void {
    const m = limits.memoryHighWater;
    if (m !== undefined) {
      if (typeof m !== 'number' || !Number.isFinite(m) || m <= 0) throw new BrokerError('ERR_INVALID_ARGUMENT', `memoryHighWater must be a positive number, got ${String(m)}`);
      this.memoryHighWater = m <= 1 ? Math.floor(m * totalmem()) : m;
    }
    const d = limits.diskFreeLimit;
    if (d !== undefined) {
      if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) throw new BrokerError('ERR_INVALID_ARGUMENT', `diskFreeLimit must be a number >= 0, got ${String(d)}`);
      this.diskFreeLimit = d;
    }
    if (this.alarmTimer !== null) {
      this.lastDiskCheck = 0;
      this.checkAlarms();
    }
  }

  /** The alarms that block publishing now ('memory', 'disk'), or null when publishing is allowed. */
  get blocked(): string | null {
    return this.alarms.size === 0 ? null : [...this.alarms].join(',');
  }

  /** Resolves when no resource alarm blocks publishing (at once if none does). */
  unblocked(): Promise<void> {
    if (this.alarms.size === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { this.off('unblocked', done); this.off('closed', done); resolve(); };
      this.on('unblocked', done);
      this.on('closed', done);
    });
  }

  private setAlarm(kind: 'memory' | 'disk', on: boolean): void {
    if (this.closed || this.alarms.has(kind) === on) return;
    const before = this.alarms.size;
    if (on) this.alarms.add(kind);
    else this.alarms.delete(kind);
    if (before === 0 && on) this.emit('blocked', kind);
    else if (this.alarms.size === 0) this.emit('unblocked');
  }

  private checkAlarms(): void {
    if (this.closed) return;
    const rss = process.memoryUsage.rss();
    this.setAlarm('memory', rss > this.memoryHighWater);
    const now = Date.now();
    // statfs is a syscall on the thread pool: at most one in flight, at most once a second.
    if (this.diskCheck === null && now - this.lastDiskCheck >= 1000) {
      this.lastDiskCheck = now;
      this.diskCheck = statfs(this.dir).then((st) => {
        this.setAlarm('disk', st.bavail * st.bsize < this.diskFreeLimit);
      }, () => {}).finally(() => { this.diskCheck = null; });
    }
  }

  private blockedConfirm(): Confirm {
    const c = new Confirm(0, false, new BrokerError('ERR_BLOCKED', `publishing is blocked: resource alarm (${this.blocked ?? ''})`));
    return c;
  }

  /** What each shard's recovery found (records, bytes, truncated bytes, time, messages). */
  get recovery(): unknown[] {
    return this.hosts.map((h) => h.recovery);
  }

  /** A fresh owner id for exclusive queues and consumers (an AMQP connection is one owner). */
  newOwner(): number {
    return this.nextOwnerId++;
  }

  // ---- topology -------------------------------------------------------------------

  async declareQueue(name: string, opts: QueueOptions = {}): Promise<QueueInfo> {
    this.checkOpen();
    const owner = opts.owner ?? 0;
    if (name === '') name = `amq.gen-${this.instanceId}-${this.nextQueueId}`;
    else checkName(name, 'queue');
    const existing = this.queues.get(name);
    if (opts.passive) {
      if (existing === undefined) throw new BrokerError('ERR_NOT_FOUND', `no queue '${name}'`);
      this.checkExclusive(existing, owner);
      return this.queueInfo(existing);
    }
    if (name.startsWith('amq.') && !name.startsWith('amq.gen-') && existing === undefined) throw new BrokerError('ERR_ACCESS_REFUSED', `queue name '${name}' is reserved (amq.*)`);
    const decl = this.makeDecl(name, opts);
    const signature = JSON.stringify({ ...decl, id: 0, shard: 0 });
    if (existing !== undefined) {
      this.checkExclusive(existing, owner);
      if (existing.signature !== signature) throw new BrokerError('ERR_PRECONDITION', `queue '${name}' exists with other arguments (inequivalent redeclare)`);
      this.touchExpiry(existing);
      return this.queueInfo(existing);
    }
    if (decl.durable) {
      this.topology.appendTopology({ type: RecordType.QueueDeclared, queueId: decl.id, name, arguments: utf8.encode(JSON.stringify(decl)) });
    }
    const entry = this.addQueueEntry(decl, owner);
    entry.signature = signature;
    try {
      await Promise.all([entry.host.request({ op: 'declare', decl }), decl.durable ? this.topology.sync() : null]);
    } catch (e) {
      this.dropQueueEntry(entry);
      throw e;
    }
    return { queue: name, messageCount: 0, consumerCount: 0 };
  }

  private makeDecl(name: string, o: QueueOptions): QueueDecl {
    const num = (v: unknown, what: string, min = 0): number | undefined => {
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || !Number.isInteger(v)) throw new BrokerError('ERR_INVALID_ARGUMENT', `${what} must be an integer >= ${min}, got ${String(v)}`);
      return v;
    };
    const overflow = o.overflow;
    if (overflow !== undefined && !['drop-head', 'reject-publish', 'reject-publish-dlx'].includes(overflow)) throw new BrokerError('ERR_INVALID_ARGUMENT', `overflow must be drop-head, reject-publish or reject-publish-dlx, got ${String(overflow)}`);
    if (o.deadLetterExchange !== undefined && typeof o.deadLetterExchange !== 'string') throw new BrokerError('ERR_INVALID_ARGUMENT', 'deadLetterExchange must be a string');
    if (o.deadLetterRoutingKey !== undefined && o.deadLetterExchange === undefined) throw new BrokerError('ERR_INVALID_ARGUMENT', 'deadLetterRoutingKey needs deadLetterExchange (RabbitMQ refuses it too)');
    const args: QueueArgs = {};
    const put = <K extends keyof QueueArgs>(k: K, v: QueueArgs[K] | undefined): void => { if (v !== undefined) args[k] = v; };
    put('messageTtl', num(o.messageTtl, 'messageTtl'));
    put('maxLength', num(o.maxLength, 'maxLength'));
    put('maxLengthBytes', num(o.maxLengthBytes, 'maxLengthBytes'));
    put('overflow', overflow);
    put('deliveryLimit', num(o.deliveryLimit, 'deliveryLimit'));
    put('consumerTimeout', num(o.consumerTimeout, 'consumerTimeout', 1));
    put('redeliveryDelay', num(o.redeliveryDelay, 'redeliveryDelay'));
    const expires = num(o.expires, 'expires', 1);
    const exclusive = o.exclusive === true;
    const decl: QueueDecl = {
      id: this.nextQueueId++, name, shard: shardOf(name, this.shardCount),
      durable: o.durable !== false && !exclusive, exclusive, autoDelete: o.autoDelete === true, args,
    };
    if (o.deadLetterExchange !== undefined) decl.deadLetterExchange = o.deadLetterExchange;
    if (o.deadLetterRoutingKey !== undefined) decl.deadLetterRoutingKey = o.deadLetterRoutingKey;
    if (expires !== undefined) decl.expires = expires;
    return decl;
  }

  private addQueueEntry(decl: QueueDecl, owner: number): QueueEntry {
    const entry: QueueEntry = { decl, host: this.hosts[decl.shard]!, owner, signature: JSON.stringify({ ...decl, id: 0, shard: 0 }), hadConsumer: false, consumers: new Set(), last: null, expiry: null };
    this.queues.set(decl.name, entry);
    this.queuesById.set(decl.id, entry);
    this.router.addQueue(decl.name);
    this.touchExpiry(entry);
    return entry;
  }

  /** x-expires: (re)starts the queue's expiry timer while it has no consumer; stops it while it has one. */
  private touchExpiry(e: QueueEntry): void {
    const ms = e.decl.expires;
    if (ms === undefined) return;
    if (e.expiry !== null) { clearTimeout(e.expiry); e.expiry = null; }
    if (e.consumers.size > 0 || this.closed) return;
    e.expiry = setTimeout(() => {
      e.expiry = null;
      if (this.closed || this.queues.get(e.decl.name) !== e || e.consumers.size > 0) return;
      this.removeQueue(e).then(() => this.emit('queue-expired', e.decl.name), (err: unknown) => this.emitError(err instanceof Error ? err : new Error(String(err))));
    }, ms);
    e.expiry.unref();
  }

  private dropQueueEntry(e: QueueEntry): void {
    if (e.expiry !== null) { clearTimeout(e.expiry); e.expiry = null; }
    this.queues.delete(e.decl.name);
    this.queuesById.delete(e.decl.id);
    this.router.removeQueue(e.decl.name);
  }

  private checkExclusive(e: QueueEntry, owner: number): void {
    if (e.decl.exclusive && e.owner !== owner) throw new BrokerError('ERR_RESOURCE_LOCKED', `queue '${e.decl.name}' is exclusive to another owner`);
  }

  private queueOrThrow(name: string, owner = 0): QueueEntry {
    const e = this.queues.get(name);
    if (e === undefined) throw new BrokerError('ERR_NOT_FOUND', `no queue '${name}'`);
    this.checkExclusive(e, owner);
    return e;
  }

  private async queueInfo(e: QueueEntry): Promise<QueueInfo> {
    const r = await e.host.request<{ messageCount: number; consumerCount: number }>({ op: 'info', queueId: e.decl.id });
    return { queue: e.decl.name, messageCount: r.messageCount, consumerCount: r.consumerCount };
  }

  /** Deletes a queue and its messages. ifUnused: refuse if it has consumers; ifEmpty: refuse if it has messages. Returns the messages deleted. */
  async deleteQueue(name: string, opts: { ifUnused?: boolean; ifEmpty?: boolean; owner?: number } = {}): Promise<number> {
    this.checkOpen();
    const e = this.queues.get(name);
    if (e === undefined) return 0; // RabbitMQ: deleting a missing queue succeeds
    this.checkExclusive(e, opts.owner ?? 0);
    if (opts.ifUnused || opts.ifEmpty) {
      const info = await this.queueInfo(e);
      if (opts.ifUnused && info.consumerCount > 0) throw new BrokerError('ERR_PRECONDITION', `queue '${name}' has ${info.consumerCount} consumers`);
      if (opts.ifEmpty && info.messageCount > 0) throw new BrokerError('ERR_PRECONDITION', `queue '${name}' has ${info.messageCount} messages`);
    }
    return this.removeQueue(e);
  }

  private async removeQueue(e: QueueEntry): Promise<number> {
    this.dropQueueEntry(e);
    for (const tag of e.consumers) {
      const c = this.consumers.get(tag);
      if (c) { c.active = false; this.consumers.delete(tag); }
    }
    if (e.decl.durable) {
      this.topology.appendTopology({ type: RecordType.QueueDeleted, queueId: e.decl.id });
      await this.topology.sync();
    }
    const r = await e.host.request<{ messageCount: number }>({ op: 'delete', queueId: e.decl.id });
    this.emit('queue-deleted', e.decl.name);
    return r.messageCount;
  }

  /** Removes every ready message; returns how many. */
  async purgeQueue(name: string, owner = 0): Promise<number> {
    this.checkOpen();
    const e = this.queueOrThrow(name, owner);
    const r = await e.host.request<{ messageCount: number }>({ op: 'purge', queueId: e.decl.id });
    return r.messageCount;
  }

  async declareExchange(name: string, type: ExchangeType, opts: ExchangeOptions = {}): Promise<void> {
    this.checkOpen();
    checkName(name, 'exchange');
    if (opts.passive) {
      if (this.router.exchange(name) === undefined) throw new BrokerError('ERR_NOT_FOUND', `no exchange '${name}'`);
      return;
    }
    if (!(type in EXCHANGE_KINDS)) throw new BrokerError('ERR_INVALID_ARGUMENT', `exchange type must be direct, fanout, topic or headers, got ${String(type)}`);
    const def: ExchangeDef = {
      name, type, durable: opts.durable !== false, autoDelete: opts.autoDelete === true, internal: opts.internal === true, arguments: opts.arguments ?? {},
    };
    if (opts.alternateExchange !== undefined) def.alternateExchange = opts.alternateExchange;
    const created = this.routerCall(() => this.router.declareExchange(def));
    if (created && def.durable) {
      this.topology.appendTopology({ type: RecordType.ExchangeDeclared, name, kind: EXCHANGE_KINDS[type] as 0, arguments: utf8.encode(JSON.stringify(def)) });
      await this.topology.sync();
    }
  }

  async deleteExchange(name: string, opts: { ifUnused?: boolean } = {}): Promise<void> {
    this.checkOpen();
    const def = this.router.exchange(name);
    if (def === undefined) return; // as RabbitMQ 3.x+: deleting a missing exchange succeeds
    this.routerCall(() => this.router.deleteExchange(name, opts.ifUnused === true));
    if (def.durable) {
      this.topology.appendTopology({ type: RecordType.ExchangeDeleted, name });
      await this.topology.sync();
    }
  }

  async bindQueue(queue: string, exchange: string, routingKey = '', args: Record<string, unknown> = {}, owner = 0): Promise<void> {
    this.checkOpen();
    const e = this.queueOrThrow(queue, owner);
    const ex = this.router.exchange(exchange);
    const created = this.routerCall(() => this.router.bind({ exchange, queue, routingKey, arguments: args }));
    if (created && e.decl.durable && ex?.durable) {
      this.topology.appendTopology({ type: RecordType.Bound, exchange, queueId: e.decl.id, routingKey, arguments: utf8.encode(sortedJson(args)) });
      await this.topology.sync();
    }
  }

  async unbindQueue(queue: string, exchange: string, routingKey = '', args: Record<string, unknown> = {}, owner = 0): Promise<void> {
    this.checkOpen();
    const e = this.queueOrThrow(queue, owner);
    const removed = this.routerCall(() => this.router.unbind({ exchange, queue, routingKey, arguments: args }));
    if (removed && e.decl.durable) {
      this.topology.appendTopology({ type: RecordType.Unbound, exchange, queueId: e.decl.id, routingKey, arguments: utf8.encode(sortedJson(args)) });
      await this.topology.sync();
    }
  }

  private routerCall<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof RouterError) throw new BrokerError(e.code, e.message);
      throw e;
    }
  }

  /** @internal Throws if publishing to `exchange` cannot route at all (unknown or internal). */
  checkRoutable(exchange: string): void {
    const def = this.router.exchange(exchange);
    if (def === undefined) throw new BrokerError('ERR_NOT_FOUND', `no exchange '${exchange}'`);
    if (def.internal) throw new BrokerError('ERR_ACCESS_REFUSED', `exchange '${exchange}' is internal`);
  }

  // ---- publish -----------------------------------------------------------------------

  /**
   * Publishes a message. Routing happens now; the returned Confirm resolves
   * when every target queue holds it (durably, for persistent messages to
   * durable queues). Unroutable + mandatory: a 'return' event, then the
   * confirm resolves (as RabbitMQ acks a returned message).
   */
  publish(exchange: string, routingKey: string, body: Uint8Array | string, opts: PublishOptions = {}): Confirm {
    this.checkOpen();
    if (this.alarms.size > 0) return this.blockedConfirm();
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    if (bytes.length > this.maxMessageBytes) throw new BrokerError('ERR_MESSAGE_TOO_LARGE', `message body of ${bytes.length} bytes is over maxMessageBytes (${this.maxMessageBytes})`);
    const out = this.routeOut;
    const given = opts.properties;
    let n: number;
    try {
      n = this.router.route(exchange, routingKey, given !== undefined ? given.headers : opts.headers, out);
    } catch (e) {
      if (e instanceof RouterError) throw new BrokerError(e.code, e.message);
      throw e;
    }
    if (n === 0) {
      if (opts.mandatory) this.emit('return', { exchange, routingKey, body: Buffer.from(bytes), properties: given ?? propsOf(opts), replyCode: 312, replyText: 'NO_ROUTE' });
      return new Confirm(0);
    }
    const now = this.clock();
    const persistent = opts.persistent !== false;
    const expiresAt = opts.expiration !== undefined ? now + checkMs(opts.expiration, 'expiration') : 0;
    const readyAt = opts.delay !== undefined && opts.delay > 0 ? now + checkMs(opts.delay, 'delay') : 0;
    return this.publishEncoded(out, n, now, expiresAt, readyAt, persistent, exchange, routingKey, given ?? propsOf(opts), bytes, 0, bytes.length);
  }

  /** Publishes straight to a queue (the default exchange). */
  send(queue: string, body: Uint8Array | string, opts: PublishOptions = {}): Confirm {
    return this.publish('', queue, body, opts);
  }

  private publishEncoded(targets: string[], n: number, now: number, expiresAt: number, readyAt: number, persistent: boolean,
    exchange: string, routingKey: string, props: BasicProperties | undefined, body: Uint8Array, bodyStart: number, bodyEnd: number): Confirm {
    const w = this.w;
    w.reset();
    w.ensure(PUB_FIXED_SIZE);
    w.pos = PUB_FIXED_SIZE;
    let metaLen: number;
    if ((props === undefined || props === PERSISTENT_ONLY) && expiresAt === 0 && readyAt === 0) {
      // A plain message: its meta differs from the last plain one to the same place only in the time.
      const mc = this.metaCache;
      let cached: Uint8Array | null = null;
      for (let i = 0; i < mc.length; i++) {
        const e = mc[i]!;
        if (routingKey === e.routingKey && exchange === e.exchange && persistent === e.persistent) {
          cached = e.meta;
          break;
        }
      }
      if (cached !== null) {
        metaLen = cached.length;
        w.ensure(metaLen);
        w.buf.set(cached, w.pos);
        writeU64(w.buf, w.pos + META_PUBLISHED_OFFSET, now);
        w.pos += metaLen;
      } else {
        const at = w.pos;
        metaLen = writeMeta(w, now, 0, 0, persistent, exchange, routingKey, props);
        mc[this.metaCacheNext] = { meta: Uint8Array.prototype.slice.call(w.buf, at, at + metaLen), exchange, routingKey, persistent };
        this.metaCacheNext = (this.metaCacheNext + 1) % META_CACHE_SLOTS;
      }
    } else {
      metaLen = writeMeta(w, now, expiresAt, readyAt, persistent, exchange, routingKey, props);
    }
    const bodyLen = bodyEnd - bodyStart;
    w.ensure(bodyLen);
    w.buf.set(bodyStart === 0 && bodyEnd === body.length ? body : body.subarray(bodyStart, bodyEnd), w.pos);
    w.pos += bodyLen;
    const rec = w.buf;
    writeU32(rec, PUB_RESERVED_OFFSET, 0);
    writeU32(rec, PUB_FLAGS_OFFSET, persistent ? PUB_FLAG_PERSISTENT : 0);
    writeU32(rec, PUB_META_LEN_OFFSET, metaLen);
    let written = true;
    let failure: BrokerError | null = null;
    let sent = 0;
    for (let i = 0; i < n; i++) {
      const q = this.queues.get(targets[i]!);
      if (q === undefined) continue;
      if (q.host.failure) { failure = q.host.failure; continue; }
      sent++;
    }
    const c = new Confirm(failure === null ? sent : 0, true, failure);
    if (failure !== null || sent === 0) return c;
    for (let i = 0; i < n; i++) {
      const q = this.queues.get(targets[i]!);
      if (q === undefined) continue;
      writeU32(rec, PUB_QUEUE_OFFSET, q.decl.id);
      written = q.host.out.write(OP_PUBLISH, rec, 0, w.pos) && written;
      q.host.confirmQ.push(c);
      // Answered at once (not after an fdatasync): worth polling for (pollReplies).
      if (!persistent || !q.decl.durable || this.fsync !== 'always') q.host.answerDue = true;
      this.markDirty(q.host);
    }
    if (!written) c.written = false;
    return c;
  }

  private markDirty(h: ShardHost): void {
    if (!h.scheduled) {
      h.scheduled = true;
      this.dirtyHosts.push(h);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      microtask(this.flushFn);
    }
  }
  private readonly flushFn = (): void => {
    this.flush();
    if (this.ioSpinMs > 0) this.pollReplies();
  };

  /**
   * The I/O poll (BrokerOptions.ioSpinUs): after publishing to shards, wait
   * up to ioSpinUs for their answers on this thread and handle them at once,
   * instead of through the Atomics.waitAsync wake (a task on the event loop,
   * tens of µs). At most IO_POLLS_PER_TURN polls per event-loop turn, so a
   * chain of handlers that publish cannot starve the loop.
   */
  private pollReplies(): void {
    if (this.polling) return;
    if (this.pollsThisTurn >= IO_POLLS_PER_TURN) {
      // Let the event loop turn (timers, sockets), then poll from its check phase.
      if (!this.pollDeferred) {
        this.pollDeferred = true;
        setImmediate(this.deferredPollFn);
      }
      return;
    }
    const hosts = this.hosts;
    let waiting = 0;
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      h.polled = h.answerDue;
      h.answerDue = false;
      if (h.polled) waiting++;
    }
    if (waiting === 0) return;
    if (this.pollSkip > 0) {
      this.pollSkip--;
      return;
    }
    this.polling = true;
    if (this.pollsThisTurn++ === 0) setImmediate(this.resetPollsFn);
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i]!;
      h.pollBegun = h.polled;
      if (h.polled) h.beginPoll();
    }
    const end = performance.now() + this.ioSpinMs;
    try {
      for (;;) {
        // performance.now() allocates a heap number: read the clock once per 64 rounds.
        for (let k = 0; k < 64; k++) {
          for (let i = 0; i < hosts.length; i++) {
            const h = hosts[i]!;
            if (h.polled && h.hasRecords()) {
              h.polled = false;
              waiting--;
              h.poll();
            }
          }
          if (waiting <= 0) {
            this.pollBackoff = 0;
            this.pollMisses = 0;
            return;
          }
        }
        // The shard may be waiting for this very core: let it (or anything else waiting) run first.
        cpuYield();
        if (performance.now() >= end) break;
      }
      // Nothing came in time (a busy or descheduled shard): after three
      // misses in a row skip the next polls, more of them after each further
      // miss, so that waiting for slow answers does not cost this thread.
      if (++this.pollMisses >= 3) {
        this.pollBackoff = Math.min(this.pollBackoff * 2 + 1, 64);
        this.pollSkip = this.pollBackoff;
      }
    } finally {
      for (let i = 0; i < hosts.length; i++) {
        const h = hosts[i]!;
        if (h.pollBegun) {
          h.pollBegun = false;
          h.endPoll();
        }
      }
      this.polling = false;
    }
  }
  private polling = false;
  private pollsThisTurn = 0;
  private pollSkip = 0;
  private pollBackoff = 0;
  private pollMisses = 0;
  private pollDeferred = false;
  private readonly resetPollsFn = (): void => { this.pollsThisTurn = 0; };
  private readonly deferredPollFn = (): void => {
    this.pollDeferred = false;
    this.pollsThisTurn = 0;
    if (!this.closed) this.pollReplies();
  };

  /** Publishes every outbox written since the last flush (one Atomics.store per ring). */
  private flush(): void {
    if (this.noAckPending.length > 0) this.ackNoAckDeliveries();
    this.flushScheduled = false;
    const d = this.dirtyHosts;
    for (let i = 0; i < d.length; i++) {
      d[i]!.scheduled = false;
      d[i]!.out.publish();
    }
    d.length = 0;
  }

  /** Acks, at the shards, what noAck consumers' handlers were handed since the last flush. */
  private ackNoAckDeliveries(): void {
    const l = this.noAckPending;
    for (let i = 0; i < l.length; i++) if (l[i]!.pendingAck >= 0) this.ackHandedOver(l[i]!);
    l.length = 0;
  }

  private ackHandedOver(c: Consumer): void {
    this.settleId(c.queueId, c.tag, c.pendingAck, SettleKind.Ack, false, true);
    c.pendingAck = -1;
  }

  /** Resolves when no record waits for ring space (backpressure has cleared). */
  async drained(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.out.drained()));
  }

  // ---- consume ------------------------------------------------------------------------

  async consume(queue: string, handler: MessageHandler, opts: ConsumeOptions = {}): Promise<Consumer> {
    this.checkOpen();
    const owner = opts.owner ?? 0;
    const e = this.queueOrThrow(queue, owner);
    const prefetch = opts.prefetch ?? 0;
    if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 0xffff) throw new BrokerError('ERR_INVALID_ARGUMENT', `prefetch must be an integer in [0, 65535], got ${prefetch}`);
    const tag = this.nextConsumer++;
    const c = new Consumer(tag, queue, e.decl.id, handler, opts.noAck === true, this, owner);
    this.consumers.set(tag, c);
    try {
      // noAck ignores prefetch (as in AMQP); its deliveries are acked by the I/O thread once handed over.
      await e.host.request({ op: 'consume', queueId: e.decl.id, consumer: tag, prefetch: opts.noAck === true ? 0 : prefetch, exclusive: opts.exclusive === true });
    } catch (err) {
      this.consumers.delete(tag);
      throw err;
    }
    e.hadConsumer = true;
    e.consumers.add(tag);
    this.touchExpiry(e);
    return c;
  }

  /**
   * @internal Stops a consumer. requeue: its unacked messages go back to the
   * queue; without requeue they stay unacked and settle as usual (AMQP
   * basic.cancel), and deliveries still in flight to it are returned.
   */
  async cancel(c: Consumer, requeue = true): Promise<void> {
    if (!c.active) return;
    // What the handler already has is acked before the shard sees the cancel (a requeue must not return it).
    if (c.pendingAck >= 0) this.ackHandedOver(c);
    c.active = false;
    this.consumers.delete(c.tag);
    const e = this.queuesById.get(c.queueId);
    if (e === undefined || this.closed) return;
    e.consumers.delete(c.tag);
    this.touchExpiry(e);
    if (requeue) {
      await e.host.request({ op: 'cancel', queueId: c.queueId, consumer: c.tag, requeue });
    } else {
      // Deliveries the shard made before it saw the cancel arrive before its answer: onDeliver returns them.
      this.cancelling.add(c.tag);
      try {
        await e.host.request({ op: 'cancel', queueId: c.queueId, consumer: c.tag, requeue });
      } finally {
        this.cancelling.delete(c.tag);
      }
    }
    if (e.decl.autoDelete && e.hadConsumer && e.consumers.size === 0 && this.queues.get(e.decl.name) === e) await this.removeQueue(e);
  }

  /** Pulls one message (AMQP basic.get); null if none is ready. */
  async get(queue: string, opts: { noAck?: boolean; owner?: number } = {}): Promise<Message | null> {
    this.checkOpen();
    const owner = opts.owner ?? 0;
    const e = this.queueOrThrow(queue, owner);
    this.touchExpiry(e);
    // The owner of a pulled unacked message: a pseudo-consumer id per owner, so a later release returns it.
    const getter = 0x80000000 + owner;
    const r = await new Promise<Message | null>((resolve, reject) => {
      // The shard answers a hit with EV_GOT (carrying the request id) and a miss with a control reply.
      const { id, promise } = e.host.send<{ empty?: boolean }>({ op: 'get', queueId: e.decl.id, owner: opts.noAck ? null : getter });
      const key = id * 64 + e.host.index;
      this.gets.set(key, { resolve, queue, noAck: opts.noAck === true, owner: getter });
      promise.then((v) => { if (v && v.empty) { this.gets.delete(key); resolve(null); } }, (err: unknown) => { this.gets.delete(key); reject(err); });
    });
    return r;
  }

  /** Returns every unacked message pulled by `owner` with get() (and consumed by its consumers) to their queues. */
  async releaseOwner(owner: number): Promise<void> {
    const tasks: Promise<unknown>[] = [];
    for (const c of [...this.consumers.values()]) if (c.owner === owner) tasks.push(this.cancel(c));
    for (const e of this.queues.values()) {
      tasks.push(e.host.request({ op: 'release', queueId: e.decl.id, owner: 0x80000000 + owner }).catch(() => {}));
    }
    await Promise.all(tasks);
    for (const e of [...this.queues.values()]) if (e.decl.exclusive && e.owner === owner) await this.removeQueue(e);
  }

  /** @internal */
  settle(m: Message, kind: number, requeue: boolean, multiple: boolean): void {
    this.settleId(m.queueId, m.owner, m.msgId, kind, requeue, multiple);
  }

  private settleId(queueId: number, owner: number, msgId: number, kind: number, requeue: boolean, multiple: boolean): void {
    const e = this.queuesById.get(queueId);
    if (e === undefined || e.host.failure || this.closed) return;
    const r = this.settleRec;
    writeU32(r, SETTLE_QUEUE_OFFSET, queueId);
    writeU32(r, SETTLE_OWNER_OFFSET, owner);
    writeU64(r, SETTLE_MSG_OFFSET, msgId);
    r[SETTLE_KIND_OFFSET] = kind;
    r[SETTLE_REQUEUE_OFFSET] = requeue ? 1 : 0;
    r[SETTLE_MULTIPLE_OFFSET] = multiple ? 1 : 0;
    e.host.out.write(OP_SETTLE, r, 0, SETTLE_SIZE);
    this.markDirty(e.host);
  }

  // ---- records from shards ---------------------------------------------------------------

  private onShardRecord(h: ShardHost, type: number, b: Uint8Array, o: number, len: number): void {
    switch (type) {
      case EV_DELIVER: return this.onDeliver(b, o, len);
      case EV_CONFIRM: {
        // Rejections first (they are within `through`), then everything up to `through` in order.
        const through = readU64(b, o + CONFIRM_THROUGH_OFFSET);
        const n = readU32(b, o + CONFIRM_REJECTS_OFFSET);
        for (let i = 0; i < n; i++) h.rejectPublish(readU64(b, o + CONFIRM_FIXED_SIZE + i * CONFIRM_ENTRY_SIZE));
        h.confirmThrough(through);
        return;
      }
      case EV_GOT: return this.onGot(h, b, o, len);
      case EV_DEAD_LETTER: return this.onDeadLetter(h, b, o, len);
      case EV_EVENT: return this.onEvent(JSON.parse(fromUtf8.decode(b.subarray(o, o + len))) as { type: string; [k: string]: unknown });
      default:
        this.emitError(new BrokerError('ERR_SHARD_FAILED', `shard ${h.index} sent unknown record type ${type}`));
    }
  }

  private onDeliver(b: Uint8Array, o: number, len: number): void {
    const tag = readU32(b, o + DLV_CONSUMER_OFFSET);
    const c = this.consumers.get(tag);
    const queueId = readU32(b, o + DLV_QUEUE_OFFSET);
    const msgId = readU64(b, o + DLV_MSG_OFFSET);
    if (c === undefined || !c.active || (this.closed && c.noAck)) {
      // Delivered to a consumer cancelled meanwhile: a cancel with requeue returns its unacked at the
      // shard; one without requeue keeps them, so this one, never seen by anyone, goes back now.
      // A noAck delivery is unacked at the shard until handed over: the same applies. (After close began,
      // a noAck delivery is not handed over: it stays queued, as it cannot be acked any more.)
      if (this.cancelling.has(tag)) this.settleId(queueId, tag, msgId, SettleKind.Nack, true, false);
      return;
    }
    const metaLen = readU32(b, o + DLV_META_LEN_OFFSET);
    // One copy out of the ring: meta and body share it.
    const m = new Message(this, c.queue, queueId, msgId, tag, copyOut(b, o + DLV_FIXED_SIZE, o + len), metaLen,
      (readU32(b, o + DLV_FLAGS_OFFSET) & DLV_FLAG_REDELIVERED) !== 0, readU32(b, o + DLV_COUNT_OFFSET), -1, c.noAck);
    if (c.noAck) {
      // One ack (multiple, in the consumer's delivery order) per consumer per batch, written at the next flush.
      if (c.pendingAck < 0) this.noAckPending.push(c);
      c.pendingAck = msgId;
    }
    this.runHandler(c, m);
  }

  private runHandler(c: Consumer, m: Message): void {
    let r: void | Promise<void>;
    try {
      r = c.handler(m);
    } catch (e) {
      this.handlerFailed(c, m, e);
      return;
    }
    if (r !== undefined && typeof (r as Promise<void>).then === 'function') (r as Promise<void>).then(undefined, (e: unknown) => this.handlerFailed(c, m, e));
  }

  /** A handler that throws leaves its message unsettled: it is returned (nack with requeue) and the error reported. */
  private handlerFailed(c: Consumer, m: Message, e: unknown): void {
    if (!m.settled && c.active) m.nack({ requeue: true });
    this.emitError(e instanceof Error ? e : new Error(String(e)));
  }

  private onGot(h: ShardHost, b: Uint8Array, o: number, len: number): void {
    const reqId = readU32(b, o + GOT_REQ_OFFSET);
    const key = reqId * 64 + h.index;
    const g = this.gets.get(key);
    if (g === undefined) return;
    this.gets.delete(key);
    const metaLen = readU32(b, o + GOT_META_LEN_OFFSET);
    const m = new Message(this, g.queue, readU32(b, o + GOT_QUEUE_OFFSET), readU64(b, o + GOT_MSG_OFFSET), g.owner, copyOut(b, o + GOT_FIXED_SIZE, o + len), metaLen,
      (readU32(b, o + GOT_FLAGS_OFFSET) & DLV_FLAG_REDELIVERED) !== 0, readU32(b, o + GOT_COUNT_OFFSET), readU32(b, o + GOT_REMAINING_OFFSET), g.noAck);
    h.settleRequest(reqId, true, { empty: false });
    g.resolve(m);
  }

  /**
   * Republishes a dead-lettered message to its queue's dead-letter exchange,
   * with an x-death record (RabbitMQ's format), then — once every copy is
   * confirmed — tells the origin shard to settle it (OP_DL_DONE). A crash in
   * between leaves it in the origin queue: dead-lettering is at-least-once.
   */
  private onDeadLetter(h: ShardHost, b: Uint8Array, o: number, len: number): void {
    const queueId = readU32(b, o + DL_QUEUE_OFFSET);
    const msgId = readU64(b, o + DL_MSG_OFFSET);
    const reason = DL_REASONS[b[o + DL_REASON_OFFSET]!]!;
    const needsDone = b[o + DL_NEEDS_DONE_OFFSET] === 1;
    // Closing: an origin that waits for its copy stays in its queue and is dead-lettered after the reopen (see close()).
    if (this.closing && needsDone) return;
    const time = readU64(b, o + DL_TIME_OFFSET);
    const metaLen = readU32(b, o + DL_META_LEN_OFFSET);
    const meta = b.subarray(o + DL_FIXED_SIZE, o + DL_FIXED_SIZE + metaLen);
    const body = Buffer.from(b.subarray(o + DL_FIXED_SIZE + metaLen, o + len));
    const origin = this.queuesById.get(queueId);
    const done = (): void => {
      if (!needsDone || h.failure) return;
      writeU32(this.dlDoneRec, 0, queueId);
      writeU64(this.dlDoneRec, 4, msgId);
      h.out.write(OP_DL_DONE, this.dlDoneRec, 0, DL_DONE_SIZE);
      this.markDirty(h);
    };
    const dlx = origin?.decl.deadLetterExchange;
    if (origin === undefined || dlx === undefined || this.router.exchange(dlx) === undefined) {
      done(); // nowhere to go (RabbitMQ drops it too)
      return;
    }
    const { exchange, routingKey } = metaRoute(meta, 0);
    const props = { ...metaProperties(meta, 0) };
    const headers: FieldTable = { ...(props.headers ?? {}) };
    addXDeath(headers, origin.decl.name, reason, exchange, routingKey, time, props.expiration);
    props.headers = headers;
    // RabbitMQ removes the expiration of a dead-lettered message so it does not expire again in the DLQ.
    delete props.expiration;
    const key = origin.decl.deadLetterRoutingKey ?? routingKey;
    const out: string[] = [];
    const n = this.router.route(dlx, key, headers, out);
    if (n === 0) {
      done();
      return;
    }
    const expires = metaExpiresAt(meta, 0);
    void expires;
    // As RabbitMQ: the dead letter is published to the DLX with the dead-letter routing key, and is
    // delivered with those (its original exchange and keys are in x-death).
    const c = this.publishEncoded(out, n, this.clock(), 0, 0, metaPersistent(meta, 0), dlx, key, props, body, 0, body.length);
    if (c.done) {
      if (c.error === null) done();
      return;
    }
    // A refused copy leaves the original in place (redelivered after a restart at worst).
    this.deadLettersInFlight++;
    c.then(done, () => {}).finally(() => {
      if (--this.deadLettersInFlight === 0) for (const w of this.dlWaiters.splice(0)) w();
    });
  }

  private onEvent(ev: { type: string; [k: string]: unknown }): void {
    if (ev.type === 'consumer-timeout') {
      const c = this.consumers.get(ev.consumer as number);
      if (c) {
        c.active = false;
        this.consumers.delete(c.tag);
        const e = this.queuesById.get(c.queueId);
        if (e !== undefined) {
          e.consumers.delete(c.tag);
          this.touchExpiry(e);
        }
        this.emit('consumer-cancelled', { consumer: c, reason: 'ack timeout' });
      }
    } else if (ev.type === 'unknown-delivery') {
      this.emitError(new BrokerError('ERR_PRECONDITION', `unknown delivery: message ${String(ev.msgId)} of queue id ${String(ev.queueId)} is not unacked`));
    }
  }

  private onShardFailure(h: ShardHost, e: BrokerError): void {
    if (this.closed) return;
    // Confirms waiting on this shard cannot be answered: fail them (a nack means "maybe not stored"; publishers retry).
    h.failConfirms(e);
    this.emitError(e);
  }

  private emitError(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(`ringmq: ${e.message}`);
  }

  // ---- patterns ---------------------------------------------------------------------------

  /**
   * Request-response: publishes `body` to `queue` with a private reply queue
   * and a fresh correlation id; resolves with the reply carrying that id, or
   * rejects with ERR_TIMEOUT. A late reply is dropped, never handed to
   * another request (G9).
   */
  async request(queue: string, body: Uint8Array | string, opts: PublishOptions & { timeout?: number; exchange?: string } = {}): Promise<Message> {
    this.checkOpen();
    if (this.alarms.size > 0) throw this.blockedConfirm().error!;
    const replyTo = await this.ensureReplyQueue();
    const correlationId = `${this.instanceId}.${this.nextCorrelation++}`;
    const timeout = opts.timeout ?? 5000;
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.requests.delete(correlationId);
        reject(new BrokerError('ERR_TIMEOUT', `no reply to request ${correlationId} on '${queue}' within ${timeout} ms`));
      }, timeout);
      this.requests.set(correlationId, { resolve, reject, timer });
      const { timeout: _t, exchange, ...pub } = opts;
      try {
        this.publish(exchange ?? '', queue, body, { persistent: false, ...pub, replyTo, correlationId });
      } catch (e) {
        clearTimeout(timer);
        this.requests.delete(correlationId);
        reject(e);
      }
    });
  }

  private ensureReplyQueue(): Promise<string> {
    if (this.replyQueue !== null) return Promise.resolve(this.replyQueue);
    this.replyQueueReady ??= (async () => {
      const { queue } = await this.declareQueue(`amq.gen-reply-${this.instanceId}`, { exclusive: true, durable: false });
      await this.consume(queue, (m) => {
        const id = m.properties.correlationId;
        const r = id === undefined ? undefined : this.requests.get(id);
        if (r === undefined) { this.lateReplies++; return; }
        this.requests.delete(id!);
        clearTimeout(r.timer);
        r.resolve(m);
      }, { noAck: true });
      this.replyQueue = queue;
      return queue;
    })();
    return this.replyQueueReady;
  }

  /**
   * The responder side: consumes `queue`; each request's handler result is
   * published to its replyTo with its correlationId, then the request is acked.
   */
  async reply(queue: string, handler: (msg: Message) => Uint8Array | string | Promise<Uint8Array | string>, opts: ConsumeOptions = {}): Promise<Consumer> {
    return this.consume(queue, async (m) => {
      const result = await handler(m);
      const { replyTo, correlationId } = m.properties;
      if (replyTo !== undefined) {
        const c = this.publish('', replyTo, result, correlationId === undefined ? { persistent: false } : { persistent: false, correlationId });
        await c.then(undefined, () => {});
      }
      m.ack();
    }, { prefetch: 64, ...opts, noAck: false });
  }

  /**
   * Publish-subscribe: a private (exclusive, server-named) queue bound to
   * `exchange` with `pattern`; the handler sees every matching message.
   * Cancel the returned consumer to unsubscribe (its queue is deleted).
   */
  async subscribe(exchange: string, pattern: string, handler: MessageHandler, opts: { prefetch?: number; headers?: Record<string, unknown> } = {}): Promise<Consumer> {
    const { queue } = await this.declareQueue('', { exclusive: true, durable: false, autoDelete: true });
    await this.bindQueue(queue, exchange, pattern, opts.headers ?? {});
    return this.consume(queue, async (m) => {
      try {
        await handler(m);
      } finally {
        if (!m.settled) m.ack();
      }
    }, { prefetch: opts.prefetch ?? 256 });
  }

  transaction(): Transaction {
    this.checkOpen();
    return new Transaction(this);
  }

  // ---- stats, lifecycle --------------------------------------------------------------------

  async stats(): Promise<BrokerStats> {
    this.checkOpen();
    const res = await Promise.all(this.hosts.map((h) => h.request<{
      queues: Record<string, { messageCount: number; unacked: number; consumerCount: number; readyBytes: number; counters: QueueCounters }>; memBytes: number; diskBytes: number;
      log: Record<string, number>; ringSpilled: number; segments: number; fsyncBuckets: number[]; fsyncSeconds: number; inRecords: number; inBatches: number; outRecords: number; outBatches: number;
    }>({ op: 'stats' })));
    const now = Date.now();
    const queues: Record<string, QueueStats> = {};
    const shards: BrokerStats['shards'] = [];
    res.forEach((r, i) => {
      const h = this.hosts[i]!;
      const rec = (h.recovery ?? {}) as { ms?: number; bytes?: number; records?: number };
      shards.push({
        index: i, memBytes: r.memBytes, diskBytes: r.diskBytes, segments: r.segments, log: r.log, ringSpilled: r.ringSpilled,
        fsyncBuckets: r.fsyncBuckets, fsyncBucketBounds: FSYNC_BUCKETS_S, fsyncSeconds: r.fsyncSeconds,
        // Each ring's records are counted by its consumer, its batches (index publications) by its producer.
        toShard: { records: r.inRecords, batches: h.out.ring.batches, usedBytes: ringOccupancy(h.toShardSab), capacity: h.out.ring.capacity },
        fromShard: { records: h.inbox.ring.records, batches: r.outBatches, usedBytes: ringOccupancy(h.fromShardSab), capacity: h.out.ring.capacity },
        recovery: { ms: rec.ms ?? 0, bytes: rec.bytes ?? 0, records: rec.records ?? 0 },
      });
      for (const [id, q] of Object.entries(r.queues)) {
        const e = this.queuesById.get(Number(id));
        if (e === undefined) continue;
        const c = q.counters;
        const last = e.last;
        const dt = last === null ? 0 : (now - last.t) / 1000;
        const rate = (a: number, b: number): number => (dt > 0 ? (a - b) / dt : 0);
        queues[e.decl.name] = {
          ready: q.messageCount, unacked: q.unacked, consumers: q.consumerCount, readyBytes: q.readyBytes, counters: c,
          rates: last === null ? { published: 0, delivered: 0, acked: 0 } : { published: rate(c.routed, last.published), delivered: rate(c.delivered, last.delivered), acked: rate(c.acked, last.acked) },
        };
        e.last = { t: now, published: c.routed, delivered: c.delivered, acked: c.acked };
      }
    });
    return { queues, shards };
  }

  /**
   * Diagnostics (and the model-based test): every message of a queue, in
   * publish order, with its state (ready, delayed, unacked), delivery count,
   * redelivered flag and body as UTF-8 text. Reads bodies back from the log
   * where needed; meant for small queues.
   */
  async inspect(queue: string): Promise<{ id: number; state: 'ready' | 'delayed' | 'unacked'; deliveryCount: number; redelivered: boolean; body: string; deathReason?: string }[]> {
    this.checkOpen();
    const e = this.queueOrThrow(queue, this.queues.get(queue)?.owner ?? 0);
    this.flush();
    return e.host.request({ op: 'inspect', queueId: e.decl.id });
  }

  /** Bytes held by the shard workers' isolates (heap + array buffers), optionally after a full GC in each. */
  async memory(gc = false): Promise<number> {
    this.checkOpen();
    const rs = await Promise.all(this.hosts.map((h) => h.request<{ heapUsed: number; arrayBuffers: number }>({ op: 'memory', gc })));
    return rs.reduce((a, r) => a + r.heapUsed + r.arrayBuffers, 0);
  }

  /**
   * Waits until the broker is quiet: every shard has applied what was sent to
   * it, run its timers (TTL, delays, ack timeouts) at the clock's current
   * time, and dispatched; dead letters this caused have reached their target
   * shards too (two rounds). Deliveries it caused are handed to consumers
   * before it resolves.
   */
  async quiesce(): Promise<void> {
    this.checkOpen();
    for (let round = 0; round < 3; round++) {
      this.flush();
      await Promise.all(this.hosts.map((h) => h.request({ op: 'tick' })));
    }
  }

  /** Waits until every shard's log is durable up to now (whatever the fsync policy). */
  async sync(): Promise<void> {
    this.checkOpen();
    this.flush();
    await Promise.all(this.hosts.map((h) => h.request({ op: 'sync' })));
  }

  /** Test/ops: asks each shard to reclaim settled log segments. */
  async reclaim(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.request({ op: 'reclaim' })));
  }

  /**
   * Drains and stops: deliveries stop, everything written is flushed and
   * fdatasynced, workers exit, the lock is released. Nothing is lost; no
   * thread or handle is left behind. Exclusive queues are deleted.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    for (const e of [...this.queues.values()]) if (e.decl.exclusive) await this.removeQueue(e).catch(() => {});
    // From here a new dead letter (a message expiring during the close) is left in its origin queue, to be
    // dead-lettered after the reopen; those in flight finish first, so a clean close never leaves an
    // original behind its copy, which would dead-letter it twice (G3, G5).
    this.closing = true;
    for (let i = 0; i < 100 && this.deadLettersInFlight > 0 && !this.hosts.some((h) => h.failure); i++) {
      await new Promise<void>((r) => this.dlWaiters.push(r));
      this.flush();
    }
    this.flush();
    this.closed = true;
    this.failPending(new BrokerError('ERR_CLOSED', 'broker closed'));
    await Promise.all(this.hosts.map((h) => h.close()));
    await this.topology.close();
    releaseLock(this.lockPath);
  }

  /**
   * Fault injection (tests, `ringmq fuzz`): shard `index` dies as if it
   * crashed. The broker reports ERR_SHARD_FAILED ('error' event); confirms in
   * flight are rejected; the shard's queues refuse work with ERR_SHARD_FAILED
   * until the broker is reopened, when its log is recovered like after any
   * crash. Queues on other shards keep working.
   */
  async killShard(index: number): Promise<void> {
    const h = this.hosts[index];
    if (h === undefined) throw new BrokerError('ERR_INVALID_ARGUMENT', `no shard ${index}`);
    await h.kill();
  }

  /**
   * Stops every shard at once, as a kill would (tests, fault injection):
   * nothing is flushed or synced beyond what the fsync policy already did.
   */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failPending(new BrokerError('ERR_CLOSED', 'broker aborted'));
    await Promise.all(this.hosts.map((h) => h.abort()));
    this.topology.abandon();
    releaseLock(this.lockPath);
  }

  private stopTimers(): void {
    if (this.alarmTimer !== null) { clearInterval(this.alarmTimer); this.alarmTimer = null; }
    for (const q of this.queues.values()) if (q.expiry !== null) { clearTimeout(q.expiry); q.expiry = null; }
    this.emit('closed');
  }

  private failPending(e: BrokerError): void {
    this.stopTimers();
    for (const h of this.hosts) h.failConfirms(e);
    for (const r of this.requests.values()) { clearTimeout(r.timer); r.reject(e); }
    this.requests.clear();
    for (const c of this.consumers.values()) c.active = false;
    this.consumers.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private checkOpen(): void {
    if (this.closed) throw new BrokerError('ERR_CLOSED', 'broker is closed');
  }
}

// ---- helpers ------------------------------------------------------------------------------

/**
 * A Buffer copy of b[start, end) (b is usually ring memory). Small copies by
 * a loop: `set` from a view of shared memory takes a slow path and the view
 * is one more allocation.
 */
function copyOut(b: Uint8Array, start: number, end: number): Buffer {
  const n = end - start;
  const out = Buffer.allocUnsafe(n);
  if (n <= 512) for (let i = 0; i < n; i++) out[i] = b[start + i]!;
  else out.set(b.subarray(start, end));
  return out;
}

function plainValue(v: FieldValue): unknown {
  if (v instanceof Typed) {
    if (v.type === 'T') return new Date(Number(v.value as bigint) * 1000);
    if (typeof v.value === 'bigint') return Number.isSafeInteger(Number(v.value)) ? Number(v.value) : v.value;
    return fieldNumber(v);
  }
  if (Array.isArray(v)) return v.map(plainValue);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return plainTable(v as FieldTable);
  return v;
}

function plainTable(t: FieldTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) out[k] = plainValue(v as FieldValue);
  return out;
}

function checkName(name: string, what: string): void {
  if (typeof name !== 'string') throw new BrokerError('ERR_INVALID_ARGUMENT', `${what} name must be a string`);
  if (Buffer.byteLength(name) > 255) throw new BrokerError('ERR_INVALID_ARGUMENT', `${what} name longer than 255 bytes`);
}

function checkMs(v: number, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BrokerError('ERR_INVALID_ARGUMENT', `${what} must be a number of ms >= 0, got ${String(v)}`);
  return Math.floor(v);
}

/** The properties of a plain persistent message: shared, never mutated. */
const PERSISTENT_ONLY: BasicProperties = Object.freeze({ deliveryMode: 2 });

function propsOf(o: PublishOptions): BasicProperties | undefined {
  if (o.contentType === undefined && o.contentEncoding === undefined && o.headers === undefined && o.priority === undefined
    && o.correlationId === undefined && o.replyTo === undefined && o.messageId === undefined && o.timestamp === undefined
    && o.type === undefined && o.userId === undefined && o.appId === undefined && o.expiration === undefined) {
    return o.persistent !== false ? PERSISTENT_ONLY : undefined;
  }
  let p: BasicProperties | undefined;
  const set = <K extends keyof BasicProperties>(k: K, v: BasicProperties[K] | undefined): void => {
    if (v !== undefined) (p ??= {})[k] = v;
  };
  set('contentType', o.contentType);
  set('contentEncoding', o.contentEncoding);
  set('headers', o.headers);
  set('priority', o.priority);
  set('correlationId', o.correlationId);
  set('replyTo', o.replyTo);
  set('messageId', o.messageId);
  set('timestamp', o.timestamp);
  set('type', o.type);
  set('userId', o.userId);
  set('appId', o.appId);
  if (o.expiration !== undefined) set('expiration', String(Math.floor(o.expiration)));
  if (o.persistent !== false) set('deliveryMode', 2);
  return p;
}

/** Adds a dead-lettering to an x-death header, as RabbitMQ does (one entry per queue+reason, count raised, newest first). */
function addXDeath(headers: FieldTable, queue: string, reason: string, exchange: string, routingKey: string, timeMs: number, expiration: string | undefined): void {
  const deaths = (Array.isArray(headers['x-death']) ? [...(headers['x-death'] as FieldValue[])] : []) as FieldTable[];
  const i = deaths.findIndex((d) => d.queue === queue && d.reason === reason);
  const time = new Typed('T', BigInt(Math.floor(timeMs / 1000)));
  let entry: FieldTable;
  if (i >= 0) {
    entry = { ...deaths[i]! };
    entry.count = new Typed('l', BigInt((fieldNumber(entry.count as FieldValue) ?? 0) + 1));
    entry.time = time;
    deaths.splice(i, 1);
  } else {
    entry = { count: new Typed('l', 1n), reason, queue, time, exchange, 'routing-keys': [routingKey] };
    if (expiration !== undefined) entry['original-expiration'] = expiration;
  }
  deaths.unshift(entry);
  headers['x-death'] = deaths;
  if (headers['x-first-death-reason'] === undefined) {
    headers['x-first-death-reason'] = reason;
    headers['x-first-death-queue'] = queue;
    headers['x-first-death-exchange'] = exchange;
  }
  headers['x-last-death-reason'] = reason;
  headers['x-last-death-queue'] = queue;
  headers['x-last-death-exchange'] = exchange;
}

/** One broker per data directory: LOCK holds the owner's pid; a lock of a dead process is taken over. */
function takeLock(path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let pid = NaN;
      try { pid = Number.parseInt(readFileSync(path, 'utf8'), 10); } catch { /* vanished: retry */ }
      if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new BrokerError('ERR_LOCKED_DIR', `data directory is in use by process ${pid} (${path}); stop it first, or remove the lock file if that process is not a ringmq broker`);
      }
      try { unlinkSync(path); } catch { /* raced: retry */ }
    }
  }
  throw new BrokerError('ERR_LOCKED_DIR', `could not take the lock ${path}`);
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true; // another Broker in this very process holds it
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function releaseLock(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}

void DL_COUNT_OFFSET;

/**
 * JSON with object keys sorted: a binding's arguments are part of its
 * identity (as in the Router), and the topology log keys bindings by these
 * bytes, so a bind and its unbind must encode equal arguments equally.
 */
function sortedJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => withSortedKeys(x));
}
