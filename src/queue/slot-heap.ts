/**
 * A binary min-heap of deque slots, as three parallel typed-array columns:
 * `key` (f64), `id` (f64, the message id, tie-break and staleness check) and
 * `idx` (i32, the slot index in the queue's deque). Ordered by (key, id).
 * No object per entry; push and pop allocate nothing unless the columns grow
 * (doubling, rare).
 *
 * Entries are never removed from the middle: the queue deletes lazily. An
 * entry is *stale* when the slot it names no longer holds that message
 * (`ids[idx] !== id`: the slot was reused — ids are unique) or the message
 * left the state the heap is about; the queue checks that when an entry
 * reaches the top and pops it.
 */
export class SlotHeap {
  size = 0;
  key: Float64Array;
  id: Float64Array;
  idx: Int32Array;

  constructor(capacity = 16) {
    this.key = new Float64Array(capacity);
    this.id = new Float64Array(capacity);
    this.idx = new Int32Array(capacity);
  }

  topKey(): number { return this.key[0]!; }
  topId(): number { return this.id[0]!; }
  topIdx(): number { return this.idx[0]!; }

  push(key: number, id: number, idx: number): void {
    if (this.size === this.key.length) this.grow();
    const k = this.key, d = this.id, x = this.idx;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = k[p]!;
      if (pk < key || (pk === key && d[p]! < id)) break;
      k[i] = pk; d[i] = d[p]!; x[i] = x[p]!;
      i = p;
    }
    k[i] = key; d[i] = id; x[i] = idx;
  }

  pop(): void {
    const n = --this.size;
    if (n <= 0) { this.size = 0; return; }
    this.siftDown(0, this.key[n]!, this.id[n]!, this.idx[n]!, n);
  }

  clear(): void { this.size = 0; }

  /** Keeps only entries for which `keep(idx, id)` is true, with idx replaced by its return value (>= 0 keeps). Rare operations only (closure). */
  rebuild(map: (idx: number, id: number) => number): void {
    const k = this.key, d = this.id, x = this.idx;
    let n = 0;
    for (let i = 0; i < this.size; i++) {
      const ni = map(x[i]!, d[i]!);
      if (ni < 0) continue;
      k[n] = k[i]!; d[n] = d[i]!; x[n] = ni; n++;
    }
    this.size = n;
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i, k[i]!, d[i]!, x[i]!, n);
  }

  private siftDown(i: number, key: number, id: number, idx: number, n: number): void {
    const k = this.key, d = this.id, x = this.idx;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (k[r]! < k[c]! || (k[r] === k[c] && d[r]! < d[c]!))) c = r;
      const ck = k[c]!;
      if (key < ck || (key === ck && id < d[c]!)) break;
      k[i] = ck; d[i] = d[c]!; x[i] = x[c]!;
      i = c;
    }
    k[i] = key; d[i] = id; x[i] = idx;
  }

  private grow(): void {
    const n = this.key.length * 2;
    const k = new Float64Array(n); k.set(this.key); this.key = k;
    const d = new Float64Array(n); d.set(this.id); this.id = d;
    const x = new Int32Array(n); x.set(this.idx); this.idx = x;
  }
}
