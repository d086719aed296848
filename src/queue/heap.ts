/**
 * A binary min-heap of (key, value) number pairs, ordered by key then value in two growable typed
 * arrays: no object per entry. Used for deadlines (expiry, delayed messages,
 * ack timeouts) keyed by time, with the message position as value. Entries
 * are never removed from the middle: the queue validates a popped entry
 * against its current state and drops stale ones (lazy deletion).
 */
export class PairHeap {
  private keys: Float64Array;
  private vals: Float64Array;
  size = 0;

  constructor(capacity = 16) {
    this.keys = new Float64Array(capacity);
    this.vals = new Float64Array(capacity);
  }

  get minKey(): number {
    return this.size === 0 ? Infinity : this.keys[0]!;
  }
  get minValue(): number {
    return this.vals[0]!;
  }

  push(key: number, val: number): void {
    if (this.size === this.keys.length) {
      const k = new Float64Array(this.keys.length * 2);
      k.set(this.keys);
      this.keys = k;
      const v = new Float64Array(this.vals.length * 2);
      v.set(this.vals);
      this.vals = v;
    }
    const keys = this.keys;
    const vals = this.vals;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (keys[p]! < key || (keys[p] === key && vals[p]! <= val)) break;
      keys[i] = keys[p]!;
      vals[i] = vals[p]!;
      i = p;
    }
    keys[i] = key;
    vals[i] = val;
  }

  /** Removes the minimum (read it first with minKey/minValue). */
  pop(): void {
    const n = --this.size;
    if (n === 0) return;
    const keys = this.keys;
    const vals = this.vals;
    const key = keys[n]!;
    const val = vals[n]!;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && (keys[c + 1]! < keys[c]! || (keys[c + 1] === keys[c] && vals[c + 1]! < vals[c]!))) c++;
      if (keys[c]! > key || (keys[c] === key && vals[c]! >= val)) break;
      keys[i] = keys[c]!;
      vals[i] = vals[c]!;
      i = c;
    }
    keys[i] = key;
    vals[i] = val;
  }

  clear(): void {
    this.size = 0;
  }
}
