/**
 * A small seeded PRNG (mulberry32) and the draws the fuzzer makes with it.
 * Deterministic for a seed on every platform: 32-bit integer arithmetic only,
 * so `ringmq fuzz --replay SEED` regenerates exactly the same workload.
 */
export class Rng {
  private s: number;
  constructor(seed: number) {
    // Fold a safe integer (possibly negative or above 2^32) into 32 bits.
    this.s = (Math.floor(seed) ^ Math.floor(seed / 0x100000000)) >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new RangeError('pick from an empty list');
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** A key of `weights` drawn with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const keys = Object.keys(weights) as K[];
    let total = 0;
    for (const k of keys) total += Math.max(0, weights[k]);
    let x = this.next() * total;
    for (const k of keys) {
      x -= Math.max(0, weights[k]);
      if (x < 0) return k;
    }
    return keys[keys.length - 1]!;
  }
  /** A fresh 31-bit seed for a sub-stream (a consumer's decisions, a run of a batch). */
  seed(): number {
    return Math.floor(this.next() * 0x7fffffff);
  }
}

/** The seed of run `i` of a batch started with `base`: distinct, stable, printable. */
export function runSeed(base: number, i: number): number {
  const r = new Rng(base * 31 + i * 0x9e3779b1);
  r.next();
  return r.int(1, 2 ** 31 - 2);
}
