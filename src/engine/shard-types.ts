/** What the I/O thread hands a shard worker when it starts it (workerData), and how it describes a queue. */
import type { FsyncPolicy } from '../log/fsync.js';
import type { QueueArgs } from '../queue/queue.js';

export interface QueueDecl {
  /** Broker-wide queue id (u32), the queue's key in the log. */
  id: number;
  name: string;
  shard: number;
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  /** Semantics the shard applies (src/queue/). */
  args: QueueArgs;
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
  /** x-expires, ms: the queue is deleted after being unused (no consumer, no get, no redeclare) that long. Applied by the broker (I/O thread), not the shard. */
  expires?: number;
}

export interface ShardInit {
  index: number;
  dir: string;
  fsync: FsyncPolicy;
  intervalMs: number;
  segmentBytes: number;
  /** Ring written by the I/O thread, read by the shard. */
  toShard: SharedArrayBuffer;
  /** Ring written by the shard, read by the I/O thread. */
  fromShard: SharedArrayBuffer;
  /** Durable queues of this shard, from the topology log: recovery rebuilds these. */
  queues: QueueDecl[];
  /** Bytes of message payloads a shard keeps in memory; persistent bodies beyond it are read back from the log. */
  memoryBudget: number;
  /** A manual clock (tests): one Float64 of ms; absent = Date.now. */
  clock?: SharedArrayBuffer;
  /** µs the idle shard polls its inbound ring before sleeping (BrokerOptions.spinUs). */
  spinUs: number;
}
