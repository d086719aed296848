/** Messages and shared slots between bench/ring.bench.ts and bench/ring-worker.ts. */

/** Slots of the progress SAB shared with the main thread. */
export const kConsumedField = 0;
export const kMainSleepingField = 1;
export const kProgressFields = 2;

export type Control =
  | { kind: 'ring'; sab: SharedArrayBuffer; progress: SharedArrayBuffer; spin: number; from: number; countGc: boolean }
  | { kind: 'port' | 'batch'; n: number };

export interface RingStats {
  kind: 'ring-done';
  records: number;
  errors: number;
  batches: number;
  batchedRecords: number;
  /** GC events on the consumer thread during the session (-1 unless countGc). */
  gcs: number;
}

