/**
 * ringmq public API. The Broker arrives with the engine; the ring is exported
 * for embedders that want to move bytes between their own threads.
 */
export { createRing, maxBodyFor, RingConsumer, RingProducer, RingRecordTooLargeError } from './ring/index.js';
export type { RecordHandler } from './ring/index.js';
