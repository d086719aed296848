/**
 * The durable segmented log of one shard (issue 3). Format: docs/log-format.md.
 */
export { SegmentedLog } from './segmented-log.js';
export type { LogOptions, LogStats, StoredMessage } from './segmented-log.js';
export { LogError } from './errors.js';
export type { LogErrorCode } from './errors.js';
export type { FsyncPolicy } from './fsync.js';
export { FSYNC_POLICIES } from './fsync.js';
export { LiveIndex } from './live-index.js';
export { MessageEntry, QueueIndex } from './queue-index.js';
export type { QueueView } from './queue-index.js';
export type { QueueInfo, ExchangeInfo, BindingInfo } from './live-index.js';
export type { RecoveryOptions, RecoveryReport } from './recovery.js';
export type { ReclaimReport, ReclaimHooks, ReclaimStep } from './reclaim.js';
export { crc32 } from './crc32.js';
export { ExchangeKind, RecordType, SettleReason, decodeRecordBody, encodeRecordBody, isTopologyType } from './records.js';
export type {
  Binding, DeliveryCountUpdated, ExchangeDeclared, ExchangeDeleted, ExchangeKindValue, LogRecord, MessageEnqueued, MessageSettled,
  QueueDeclared, QueueDeleted, RecordTypeValue, SettleReasonValue, TopologyRecord,
} from './records.js';
export * as format from './format.js';
