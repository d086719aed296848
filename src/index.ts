/**
 * ringmq public API: the embedded Broker (src/broker.ts) and its types; the
 * ring is exported for embedders that want to move bytes between their own
 * threads.
 */
export { Broker, Confirm, Consumer, Message, Transaction } from './broker.js';
export type {
  BrokerOptions, BrokerStats, ConsumeOptions, ExchangeOptions, ExchangeType, FsyncPolicy, MessageHandler, MessageProperties,
  Overflow, PublishOptions, QueueCounters, QueueInfo, QueueOptions, QueueStats, RingStats, ShardStats,
} from './broker.js';
export { BrokerError } from './errors.js';
export type { BrokerErrorCode } from './errors.js';
export { createRing, maxBodyFor, RingConsumer, RingProducer, RingRecordTooLargeError } from './ring/index.js';
export type { RecordHandler } from './ring/index.js';
export { renderMetrics, startMetricsServer } from './metrics/prometheus.js';
export type { FrontStats, MetricsServer } from './metrics/prometheus.js';
