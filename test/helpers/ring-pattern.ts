/**
 * The deterministic record stream shared by ring tests and their worker:
 * record i of a run with `seed` has type `typeOf(seed, i)` and byte j equal
 * to `byteOf(seed, i, j)`. Any lost, duplicated, reordered, torn or stale
 * record shows as a mismatch on the consumer side.
 */
export function typeOf(seed: number, i: number): number {
  return ((i * 13) ^ seed) & 0x7fff;
}

export function byteOf(seed: number, i: number, j: number): number {
  return ((i * 131) ^ (j * 7) ^ (j >>> 8) ^ seed) & 0xff;
}

export function fillRecord(dst: Uint8Array, at: number, seed: number, i: number, length: number): void {
  for (let j = 0; j < length; j++) dst[at + j] = byteOf(seed, i, j);
}

/** Index of the first byte that differs from the pattern, or -1. */
export function checkRecord(src: Uint8Array, at: number, seed: number, i: number, length: number): number {
  for (let j = 0; j < length; j++) if (src[at + j] !== byteOf(seed, i, j)) return j;
  return -1;
}

export interface VerifyJob {
  sab: SharedArrayBuffer;
  seed: number;
  sizes: number[];
  /** 'sync' parks in Atomics.wait, 'async' in Atomics.waitAsync. */
  mode: 'sync' | 'async';
  /** Every `pauseEvery` records the consumer stops for `pauseMs` (0 = never), so the producer meets a full ring. */
  pauseEvery: number;
  pauseMs: number;
  /** Two shared Int32 slots: [0] is 1 while the worker is parked on an empty ring, [1] the records verified before it parked. */
  probe?: SharedArrayBuffer;
}

export type VerifyResult =
  | { ok: true; count: number; batches: number; sleeps: number }
  | { ok: false; index: number; reason: string };
