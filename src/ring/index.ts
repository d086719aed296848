export { createRing, maxBodyFor, RingConsumer, RingProducer, RingRecordTooLargeError, copyInto, ringOccupancy } from './ring.js';
export type { RecordHandler } from './ring.js';
export * as layout from './layout.js';
