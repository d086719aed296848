/**
 * What the fuzz driver needs from a broker under test: a small command
 * protocol (topology, publish, consume, settle, get, rpc, stats) plus fault
 * injection (kill, torn tail, clean restart). Two implementations:
 * target-embedded.ts (a child process hosting the embedded Broker, driven
 * over IPC) and target-amqp.ts (amqplib against `ringmq serve` or any AMQP
 * 0-9-1 broker given by --url).
 *
 * Commands are plain JSON so the embedded child can run them verbatim; a
 * target answers a `call` with a value (or an error) and reports what it
 * observes asynchronously through `onEvent`, in the order it observed it.
 */
import type { Death, ExchangeType, QueueSpec, QueueStatsSnapshot } from './history.js';

export type Command =
  | { op: 'declareQueue'; spec: QueueSpec }
  | { op: 'declareExchange'; x: string; type: ExchangeType }
  | { op: 'bind'; q: string; x: string; key: string; args?: Record<string, string> }
  | { op: 'unbind'; q: string; x: string; key: string; args?: Record<string, string> }
  | { op: 'publish'; m: number; x: string; key: string; persistent: boolean; mandatory: boolean; confirm: boolean; len: number; headers?: Record<string, string>; expiration?: number }
  | { op: 'consume'; c: string; q: string; prefetch: number; noAck: boolean; owner: number }
  | { op: 'cancel'; c: string }
  | { op: 'settle'; tag: number; kind: 'ack' | 'nack' | 'reject'; requeue: boolean }
  | { op: 'get'; q: string; noAck: boolean; owner: number }
  | { op: 'release'; owner: number }
  | { op: 'purge'; q: string }
  | { op: 'deleteQueue'; q: string }
  | { op: 'subscribe'; c: string; x: string; key: string }
  | { op: 'replier'; q: string }
  | { op: 'request'; r: number; q: string; timeout: number }
  | { op: 'stats' }
  | { op: 'quiesce' }
  /** Wait until every shard's log is durable up to now. */
  | { op: 'sync' };

/** Observations a target reports (they become history events). */
export type TargetEvent =
  | { k: 'deliver'; m: number; q: string; c: string; tag: number; red: boolean; count: number; crc: number; len: number; auto?: boolean; death?: Death; corr?: string }
  | { k: 'confirm'; m: number; ok: boolean; code?: string }
  | { k: 'backpressure'; m: number }
  | { k: 'return'; m: number }
  | { k: 'timeout'; c: string }
  | { k: 'rpc-reply'; r: number; body: string }
  | { k: 'rpc-timeout'; r: number }
  | { k: 'rpc-error'; r: number; code: string }
  | { k: 'error'; code: string; message: string; op?: string }
  /** The target died on its own (not by an injected kill). */
  | { k: 'exit'; code: number | null; signal: string | null; stderr: string };

export interface StatsReply {
  queues: Record<string, QueueStatsSnapshot>;
  /** Per shard: the last log sequence covered by an fdatasync (embedded only). */
  durableSeq?: number[];
}

export interface TargetOptions {
  /** Data directory of this run (the target creates and removes it). */
  dir: string;
  shards: number;
  fsync: 'always' | 'interval' | 'never';
  ringBytes: number;
  segmentBytes: number;
  /** Test-only: RINGMQ_PLANT_BUG for the broker process (self-check). */
  plantedBug?: string;
  /** AMQP target: an external broker instead of a `ringmq serve` child. */
  url?: string;
}

/** What a target can do; the driver only injects faults a target supports. */
export interface TargetCaps {
  kill: boolean;
  torn: boolean;
  restart: boolean;
  /** stats() reports ringmq's counters (G6). */
  counters: boolean;
  /** Delivery counts are reported (x-delivery-count or the embedded API). */
  deliveryCount: boolean;
  /** quiesce() makes the broker apply everything sent so far (else the driver sleeps). */
  quiesce: boolean;
  /** Deliveries to different consumers are observed in the broker's dispatch order (one stream). */
  orderedAcrossConsumers: boolean;
}

export interface TornReport {
  shard: number;
  file: string;
  durableSeq: number;
  cutAt: number;
  size: number;
}

export interface Target {
  readonly name: string;
  readonly caps: TargetCaps;
  /** Set by the driver before start(). */
  onEvent: (ev: TargetEvent) => void;
  /** Opens the broker (first time); resolves with what its recovery reported. */
  start(): Promise<unknown>;
  call<T = unknown>(cmd: Command): Promise<T>;
  /** Fire and forget (publish, settle): failures come back as events. */
  send(cmd: Command): void;
  /** SIGKILL now. Afterwards no event of this incarnation is reported. */
  kill(): Promise<void>;
  /**
   * For a torn tail: the durable point of each shard's log *now* (call it right
   * before kill(); every confirm reported before this call is covered by it).
   */
  durablePoints(): Promise<number[] | null>;
  /** While down: cut each shard's newest segment at a random byte past its durable point. */
  tear(durable: number[], random: () => number): Promise<TornReport[]>;
  /** Opens the broker again on the same data (after kill() or close()). */
  restart(): Promise<unknown>;
  /** Clean shutdown (drain, sync, stop). */
  close(): Promise<void>;
  /** Stops everything and removes the data directory. */
  dispose(): Promise<void>;
  /** What the broker process last wrote to stderr (for reports of a failed run). */
  diagnostics?(): string;
}
