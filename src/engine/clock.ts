/**
 * The engine's clock. Normally Date.now(); a test can pass a manual clock — a
 * SharedArrayBuffer holding one Float64 of milliseconds — that the I/O
 * thread and every shard read, so TTLs, delays and ack timeouts can be
 * driven step by step (the model-based test does).
 */
export type Clock = () => number;

export const systemClock: Clock = Date.now;

export function manualClock(sab: SharedArrayBuffer): Clock {
  const cell = new Float64Array(sab, 0, 1);
  return () => cell[0]!;
}

/** A manual clock's cell, to create and advance from a test. */
export class ManualClock {
  readonly sab = new SharedArrayBuffer(8);
  private readonly cell = new Float64Array(this.sab);
  constructor(startMs = 1_700_000_000_000) {
    this.cell[0] = startMs;
  }
  get now(): number {
    return this.cell[0]!;
  }
  advance(ms: number): void {
    this.cell[0] = this.cell[0]! + ms;
  }
}
