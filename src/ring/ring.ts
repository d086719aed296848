import {
  CLOSE_TYPE, CONTROL_SIZE, DATA_OFFSET, FLAG_LEAD_MASK, MAX_CAPACITY, MAX_USER_TYPE, MIN_CAPACITY,
  DEFAULT_STAGING_SIZE, PAD_TYPE, RECORD_ALIGN, RECORD_HEADER_SIZE, SEQ_MASK, STAGE_MAX_BODY,
  kConsumerSleepingField, kFieldCount, kMaxBodyField,
  kProducerSleepingField, kReadSeqField, kWriteSeqField,
} from './layout.js';
import { recordSize, writeHeader } from './record.js';
import { sleepAsync, sleepSync, wake } from './doorbell.js';

/**
 * A lock-free single-producer single-consumer ring of variable-length records
 * over a SharedArrayBuffer. One RingProducer on one thread, one RingConsumer
 * on another; layout and ordering rules are in docs/ring-layout.md.
 *
 * Vocabulary (the Disruptor's): the producer *claims* space for a record,
 * writes its body, and *publishes* a whole batch with one `Atomics.store`; the
 * consumer takes every *available* record and *releases* the batch with one
 * store. Sequences are free-running byte counts modulo 2^30 (so they stay V8
 * small integers and never box into heap numbers); `& mask` gives the offset.
 */

/** A record body larger than the ring's maximum. The caller must carry it another way. */
export class RingRecordTooLargeError extends RangeError {
  readonly code = 'ERR_RING_RECORD_TOO_LARGE';
  constructor(readonly length: number, readonly maxBody: number) {
    super(`ring record body of ${length} bytes exceeds the ring maximum of ${maxBody} bytes`);
    this.name = 'RingRecordTooLargeError';
  }
}

/** The largest body a ring of this capacity can carry: any record, wrap padding included, then fits in half the ring. */
export function maxBodyFor(capacity: number): number {
  return capacity / 2 - RECORD_HEADER_SIZE - FLAG_LEAD_MASK;
}

export interface RingOptions {
  /** Largest body in bytes; at most (and by default) `maxBodyFor(capacity)`. */
  maxBody?: number;
}

/**
 * Allocates the shared memory of one ring: the 128-byte control header and
 * `capacity` data bytes. Hand the same buffer to a RingProducer on one thread
 * and a RingConsumer on another (postMessage or workerData share it).
 */
export function createRing(capacity: number, options: RingOptions = {}): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`ring capacity must be a power of two in [${MIN_CAPACITY}, ${MAX_CAPACITY}], got ${capacity}`);
  }
  const maxBody = options.maxBody ?? maxBodyFor(capacity);
  if (!Number.isInteger(maxBody) || maxBody < 0 || maxBody > maxBodyFor(capacity)) {
    throw new RangeError(`ring maxBody must be an integer in [0, ${maxBodyFor(capacity)}] for capacity ${capacity}, got ${maxBody}`);
  }
  const sab = new SharedArrayBuffer(CONTROL_SIZE + capacity);
  new Int32Array(sab, 0, kFieldCount)[kMaxBodyField] = maxBody;
  return sab;
}

function capacityOf(sab: SharedArrayBuffer): number {
  const capacity = sab.byteLength - CONTROL_SIZE;
  if (capacity < MIN_CAPACITY || (capacity & (capacity - 1)) !== 0) {
    throw new RangeError(`not a ring buffer: ${sab.byteLength} bytes is not ${CONTROL_SIZE} + a power of two`);
  }
  return capacity;
}

export interface ProducerOptions {
  /**
   * Bytes of the producer's private staging buffer, a multiple of 8; 0 writes
   * every record in place. Default: 64 KiB, or the capacity if smaller. See
   * "Staging" in docs/ring-layout.md.
   */
  stagingSize?: number;
}

/**
 * Bytes published and not yet released in a ring, read from its control
 * words (either side, or a third thread, may call it: two atomic loads).
 */
export function ringOccupancy(sab: SharedArrayBuffer): number {
  const ctl = new Int32Array(sab, 0, kFieldCount);
  return ((Atomics.load(ctl, kWriteSeqField) - Atomics.load(ctl, kReadSeqField)) & SEQ_MASK);
}

export class RingProducer {
  /** The data region. `tryClaim` returns offsets into it. */
  readonly bytes: Uint8Array;
  readonly capacity: number;
  readonly maxBody: number;
  readonly stagingSize: number;
  /** Records claimed and batches published since construction (stats). */
  records = 0;
  batches = 0;
  readonly #words: Uint32Array;
  /** The data region again, as Int32 for word copies. */
  readonly #dataWords: Int32Array;
  readonly #ctl: Int32Array;
  readonly #mask: number;
  /** Private, non-shared memory: small records are written here, then copied into the data region as one block. */
  readonly #staging: Uint8Array;
  readonly #stagingHeaders: Uint32Array;
  readonly #stagingWords: Int32Array;
  /** Largest record (header, lead, body, padding) that is staged; 0 when staging is off. */
  readonly #stageMaxSize: number;
  #claimed: number;
  #published: number;
  /** Ring position of the first staged byte. Staging holds ring positions [#stageFrom, #claimed). */
  #stageFrom: number;
  /** Staged bytes, and the index in #staging of the next one: (#claimed - #stageFrom) & SEQ_MASK. */
  #stageAt = 0;
  /** Bytes that may be staged with no further check (see #updateRoom). */
  #room = 0;
  #cachedRead: number;

  constructor(sab: SharedArrayBuffer, options: ProducerOptions = {}) {
    this.capacity = capacityOf(sab);
    this.bytes = new Uint8Array(sab, DATA_OFFSET, this.capacity);
    this.#words = new Uint32Array(sab, DATA_OFFSET, this.capacity >>> 2);
    this.#dataWords = new Int32Array(sab, DATA_OFFSET, this.capacity >>> 2);
    this.#ctl = new Int32Array(sab, 0, kFieldCount);
    this.#mask = this.capacity - 1;
    this.maxBody = this.#ctl[kMaxBodyField]!;
    const staging = options.stagingSize ?? Math.min(DEFAULT_STAGING_SIZE, this.capacity);
    if (!Number.isInteger(staging) || staging < 0 || staging % RECORD_ALIGN !== 0 || staging > MAX_CAPACITY) {
      throw new RangeError(`stagingSize must be a multiple of ${RECORD_ALIGN} in [0, ${MAX_CAPACITY}], got ${staging}`);
    }
    this.stagingSize = staging;
    this.#staging = new Uint8Array(staging);
    this.#stagingHeaders = new Uint32Array(this.#staging.buffer);
    this.#stagingWords = new Int32Array(this.#staging.buffer);
    // A staged record and the wrap pad before it must fit in the staging buffer together.
    this.#stageMaxSize = Math.min(recordSize(STAGE_MAX_BODY, FLAG_LEAD_MASK), staging >>> 1) & ~(RECORD_ALIGN - 1);
    this.#claimed = Atomics.load(this.#ctl, kWriteSeqField) & SEQ_MASK;
    this.#published = this.#claimed;
    this.#stageFrom = this.#claimed;
    this.#cachedRead = Atomics.load(this.#ctl, kReadSeqField) & SEQ_MASK;
    this.#updateRoom();
  }

  /**
   * Claims room for one record of `length` body bytes in the data region and
   * writes its header. Returns the offset in `bytes` where the body goes, or
   * -1 if the ring is full (nothing is written then). The record becomes
   * visible to the consumer at the next `publish()`. `lead` (0..7) shifts the
   * body so that `offset % 8 === lead`; pick it to match the source's address
   * modulo 8. Records written by `tryWrite` before it and not yet published
   * are copied into the data region first, so the order is kept. Allocates
   * nothing.
   */
  tryClaim(type: number, length: number, lead = 0): number {
    if (length > this.maxBody) throw new RingRecordTooLargeError(length, this.maxBody);
    if (type > MAX_USER_TYPE || type < 0) throw new RangeError(`ring record type must be in [0, ${MAX_USER_TYPE}], got ${type}`);
    return this.#claimDirect(type, length, lead & FLAG_LEAD_MASK);
  }

  /**
   * Claims a record and copies `src[start, end)` into it; false if the ring is
   * full. Records up to STAGE_MAX_BODY are staged (see #stage); larger ones are
   * written in place at the same address modulo 8 as their source, which keeps
   * the copy into shared memory on its fast path. Allocates nothing for whole
   * arrays and for sub-ranges up to 768 B (see copyInto).
   */
  tryWrite(type: number, src: Uint8Array, start = 0, end = src.length): boolean {
    const length = end - start;
    if (length > this.maxBody) throw new RingRecordTooLargeError(length, this.maxBody);
    if (type > MAX_USER_TYPE || type < 0) throw new RangeError(`ring record type must be in [0, ${MAX_USER_TYPE}], got ${type}`);
    const whole = start === 0 && end === src.length;
    // Staging is plain memory, where alignment does not change copy speed,
    // so whole arrays are staged with lead 0 and the source's byteOffset is
    // never read. Sub-ranges keep the source's alignment for copyInto's word loop.
    const lead = whole ? 0 : (src.byteOffset + start) & FLAG_LEAD_MASK;
    const size = recordSize(length, lead);
    if (size <= this.#stageMaxSize) {
      const at = this.#stage(type, length, lead, size);
      if (at < 0) return false;
      if (whole) this.#staging.set(src, at);
      else copyInto(this.#staging, this.#stagingWords, at, src, start, end);
      return true;
    }
    const at = this.#claimDirect(type, length, whole ? src.byteOffset & FLAG_LEAD_MASK : lead);
    if (at < 0) return false;
    copyInto(this.bytes, this.#dataWords, at, src, start, end);
    return true;
  }

  /** Whether `need` more bytes from the claimed position fit in the ring, re-reading the consumer's sequence only if the cached one says no. */
  #fits(need: number): boolean {
    if (((this.#claimed - this.#cachedRead) & SEQ_MASK) + need <= this.capacity) return true;
    // Pairs with the consumer's Atomics.store(kReadSeqField) in release():
    // its reads of the released bytes happen before our overwrites.
    this.#cachedRead = Atomics.load(this.#ctl, kReadSeqField) & SEQ_MASK;
    return ((this.#claimed - this.#cachedRead) & SEQ_MASK) + need <= this.capacity;
  }

  /**
   * Stages one record: writes its header into the staging buffer at the index
   * that mirrors its ring position and returns where its body goes in
   * #staging, or -1 if the ring is full. The fast path is one comparison of
   * bookkeeping; a wrap, a full staging buffer or a stale view of the
   * consumer takes the slow path.
   */
  #stage(type: number, length: number, lead: number, size: number): number {
    let at = this.#stageAt;
    if (size > this.#room) {
      const toEnd = this.capacity - (this.#claimed & this.#mask);
      // A record never straddles the end: a pad record fills the rest of the
      // data region and the record starts at offset 0.
      const need = size <= toEnd ? size : toEnd + size;
      if (!this.#fits(need)) return -1;
      if (at + need > this.stagingSize) {
        this.#flushStage();
        at = 0;
      }
      if (size > toEnd) {
        writeHeader(this.#stagingHeaders, at, toEnd - RECORD_HEADER_SIZE, PAD_TYPE, 0);
        at += toEnd;
        this.#claimed = (this.#claimed + toEnd) & SEQ_MASK;
      }
      this.#stageAt = at;
      this.#updateRoom();
      this.#room -= size; // cannot go below 0: need was checked against the same three limits
    } else {
      this.#room -= size;
    }
    writeHeader(this.#stagingHeaders, at, length, type, lead);
    this.#stageAt = at + size;
    this.#claimed = (this.#claimed + size) & SEQ_MASK;
    this.records++;
    return at + RECORD_HEADER_SIZE + lead;
  }

  /** Claims a record in the data region, after copying out whatever is staged. */
  #claimDirect(type: number, length: number, lead: number): number {
    const size = recordSize(length, lead);
    let off = this.#claimed & this.#mask;
    const toEnd = this.capacity - off;
    const need = size <= toEnd ? size : toEnd + size;
    if (!this.#fits(need)) return -1;
    this.#flushStage();
    let pos = this.#claimed;
    if (size > toEnd) {
      writeHeader(this.#words, off, toEnd - RECORD_HEADER_SIZE, PAD_TYPE, 0);
      pos = (pos + toEnd) & SEQ_MASK;
      off = 0;
    }
    writeHeader(this.#words, off, length, type, lead);
    this.#claimed = (pos + size) & SEQ_MASK;
    this.#stageFrom = this.#claimed;
    this.records++;
    this.#updateRoom();
    return off + RECORD_HEADER_SIZE + lead;
  }

  /**
   * #room: bytes the fast path of #stage may take, the least of free ring
   * space (by the cached consumer sequence, so it can only understate), bytes
   * before the end of the data region, and free staging.
   */
  #updateRoom(): void {
    if (this.#stageMaxSize === 0) {
      this.#room = 0;
      return;
    }
    const toEnd = this.capacity - (this.#claimed & this.#mask);
    const free = this.capacity - ((this.#claimed - this.#cachedRead) & SEQ_MASK);
    this.#room = Math.min(toEnd, free, this.stagingSize - this.#stageAt);
  }

  /**
   * Copies the staged records into the data region: one block, or two when
   * the staged stretch wraps (the pad ends exactly at the end of the region).
   * Does not publish. A block copy moves cache lines into shared memory with
   * far more parallelism than record-by-record stores (measured 2-3x for
   * 64 B records; docs/ring-layout.md, Staging).
   */
  #flushStage(): void {
    const n = this.#stageAt;
    if (n === 0) return;
    const off = this.#stageFrom & this.#mask;
    const first = Math.min(n, this.capacity - off);
    this.#copyStaged(off, 0, first);
    if (n > first) this.#copyStaged(0, first, n - first);
    this.#stageFrom = this.#claimed;
    this.#stageAt = 0;
    this.#updateRoom();
  }

  /**
   * Staging and data offsets are both multiples of 8. Up to COPY_WORDS_MAX a
   * word loop (no allocation); above, `set` of a staging view: one small
   * object per flush of more than 768 B, i.e. per dozens of records.
   */
  #copyStaged(dst: number, from: number, n: number): void {
    if (n > COPY_WORDS_MAX) {
      this.bytes.set(this.#staging.subarray(from, from + n), dst);
      return;
    }
    const dw = this.#dataWords;
    const sw = this.#stagingWords;
    const d = dst >>> 2;
    const f = from >>> 2;
    for (let i = 0, words = n >>> 2; i < words; i++) dw[d + i] = sw[f + i]!;
  }

  /** As tryWrite, but waits (blocking this thread) while the ring is full. False on timeout. */
  writeSync(type: number, src: Uint8Array, start = 0, end = src.length, timeoutMs = Infinity): boolean {
    if (this.tryWrite(type, src, start, end)) return true;
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    for (;;) {
      if (!this.waitForSpaceSync(end - start, deadline - performance.now())) return false;
      if (this.tryWrite(type, src, start, end)) return true;
    }
  }

  /** As writeSync, but awaits (Atomics.waitAsync) instead of blocking. */
  async write(type: number, src: Uint8Array, start = 0, end = src.length, timeoutMs = Infinity): Promise<boolean> {
    if (this.tryWrite(type, src, start, end)) return true;
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    for (;;) {
      if (!(await this.waitForSpace(end - start, deadline - performance.now()))) return false;
      if (this.tryWrite(type, src, start, end)) return true;
    }
  }

  /** True if a record with a body of `length` bytes can be claimed now (re-reads the consumer's sequence). */
  hasSpace(length: number): boolean {
    const size = recordSize(length, FLAG_LEAD_MASK);
    const toEnd = this.capacity - (this.#claimed & this.#mask);
    const need = size <= toEnd ? size : toEnd + size;
    this.#cachedRead = Atomics.load(this.#ctl, kReadSeqField) & SEQ_MASK;
    this.#updateRoom();
    return ((this.#claimed - this.#cachedRead) & SEQ_MASK) + need <= this.capacity;
  }

  /**
   * Publishes what was claimed, then blocks until a `length`-byte body fits,
   * or `timeoutMs` passes (false). Full is backpressure: nothing is dropped.
   */
  waitForSpaceSync(length: number, timeoutMs = Infinity): boolean {
    if (length > this.maxBody) throw new RingRecordTooLargeError(length, this.maxBody);
    this.publish();
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    while (!this.hasSpace(length)) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      sleepSync(this.#ctl, kProducerSleepingField, kReadSeqField, this.#cachedRead, left);
    }
    return true;
  }

  /** As waitForSpaceSync, without blocking the event loop. */
  async waitForSpace(length: number, timeoutMs = Infinity): Promise<boolean> {
    if (length > this.maxBody) throw new RingRecordTooLargeError(length, this.maxBody);
    this.publish();
    const deadline = timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
    while (!this.hasSpace(length)) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await sleepAsync(this.#ctl, kProducerSleepingField, kReadSeqField, this.#cachedRead, left);
    }
    return true;
  }

  /**
   * Copies staged records into the data region, then makes every claimed
   * record visible with one `Atomics.store`, which publishes all the plain
   * writes of the batch (headers and bodies); the consumer's
   * `Atomics.load(kWriteSeqField)` pairs with it. Then wakes the consumer only
   * if it announced that it sleeps.
   */
  publish(): void {
    if (this.#claimed === this.#published) return;
    this.#flushStage();
    Atomics.store(this.#ctl, kWriteSeqField, this.#claimed | 0);
    this.#published = this.#claimed;
    this.batches++;
    wake(this.#ctl, kConsumerSleepingField, kWriteSeqField);
  }

  /** Bytes claimed but not yet published. */
  get pendingBytes(): number {
    return (this.#claimed - this.#published) & SEQ_MASK;
  }

  /** Bytes in the ring not yet released by the consumer, as last observed (may overstate). */
  get usedBytes(): number {
    return (this.#claimed - this.#cachedRead) & SEQ_MASK;
  }

  #tryClose(): boolean {
    if (this.#claimDirect(CLOSE_TYPE, 0, 0) < 0) return false;
    this.publish();
    return true;
  }

  /** Writes the close record (the consumer sees `closed` after everything before it), blocking while full. */
  closeSync(timeoutMs = Infinity): boolean {
    if (this.#tryClose()) return true;
    return this.waitForSpaceSync(0, timeoutMs) && this.#tryClose();
  }

  /** As closeSync, without blocking the event loop. */
  async close(timeoutMs = Infinity): Promise<boolean> {
    if (this.#tryClose()) return true;
    return (await this.waitForSpace(0, timeoutMs)) && this.#tryClose();
  }
}

/** Handles one record in place: `bytes[offset, offset + length)` is valid until the batch is released. */
export type RecordHandler = (type: number, bytes: Uint8Array, offset: number, length: number) => void;

export class RingConsumer {
  /** The data region; the current record's body is `bytes[offset, offset + length)`. */
  readonly bytes: Uint8Array;
  readonly capacity: number;
  readonly maxBody: number;
  /** The record `next()` last returned. Plain fields, so reading a record allocates nothing. */
  type = 0;
  offset = 0;
  length = 0;
  /** Set once the producer's close record has been taken. */
  closed = false;
  /** Records taken and batches released since construction (stats). */
  records = 0;
  batches = 0;
  readonly #words: Uint32Array;
  readonly #ctl: Int32Array;
  readonly #mask: number;
  #read: number;
  #released: number;
  #cachedWrite: number;

  constructor(sab: SharedArrayBuffer) {
    this.capacity = capacityOf(sab);
    this.bytes = new Uint8Array(sab, DATA_OFFSET, this.capacity);
    this.#words = new Uint32Array(sab, DATA_OFFSET, this.capacity >>> 2);
    this.#ctl = new Int32Array(sab, 0, kFieldCount);
    this.#mask = this.capacity - 1;
    this.maxBody = this.#ctl[kMaxBodyField]!;
    this.#read = Atomics.load(this.#ctl, kReadSeqField) & SEQ_MASK;
    this.#released = this.#read;
    this.#cachedWrite = this.#read;
  }

  /**
   * Moves to the next available record and sets `type`, `offset`, `length`;
   * false when none is available. The record's bytes stay valid (the
   * producer cannot overwrite them) until `release()`. Allocates nothing.
   */
  next(): boolean {
    const words = this.#words;
    for (;;) {
      const pos = this.#read;
      if (pos === this.#cachedWrite) {
        // Re-read the producer's sequence only when the cached one is used up.
        // Pairs with Atomics.store(kWriteSeqField) in publish(): every header
        // and body written before that store is visible after this load.
        this.#cachedWrite = Atomics.load(this.#ctl, kWriteSeqField) & SEQ_MASK;
        if (pos === this.#cachedWrite) return false;
      }
      const i = (pos & this.#mask) >>> 2;
      const length = words[i]!;
      const typeAndFlags = words[i + 1]!;
      const type = typeAndFlags & 0xffff;
      const lead = (typeAndFlags >>> 16) & FLAG_LEAD_MASK;
      this.#read = (pos + recordSize(length, lead)) & SEQ_MASK;
      if (type === PAD_TYPE) continue;
      if (type === CLOSE_TYPE) {
        this.closed = true;
        continue;
      }
      this.type = type;
      this.offset = (pos & this.#mask) + RECORD_HEADER_SIZE + lead;
      this.length = length;
      this.records++;
      return true;
    }
  }

  /**
   * Gives every record taken so far back to the producer with one
   * `Atomics.store` (our reads of them happen before it; the producer's
   * `Atomics.load(kReadSeqField)` pairs with it), then wakes the producer if
   * it sleeps on a full ring.
   */
  release(): void {
    if (this.#read === this.#released) return;
    Atomics.store(this.#ctl, kReadSeqField, this.#read | 0);
    this.#released = this.#read;
    this.batches++;
    wake(this.#ctl, kProducerSleepingField, kReadSeqField);
  }

  /** Takes every available record (at most `max`), calls `handler` on each in place, then releases once. Returns the count. */
  drain(handler: RecordHandler, max = Infinity): number {
    let n = 0;
    while (n < max && this.next()) {
      handler(this.type, this.bytes, this.offset, this.length);
      n++;
    }
    this.release();
    return n;
  }

  /** True if a record (or the close record) is available now. */
  available(): boolean {
    if (this.#read !== this.#cachedWrite) return true;
    this.#cachedWrite = Atomics.load(this.#ctl, kWriteSeqField) & SEQ_MASK;
    return this.#read !== this.#cachedWrite;
  }

  /**
   * The consumer's thread polls (synchronously) while its `wait` may be
   * pending: clears the sleeping flag, so the producer does not notify (a
   * syscall on its side, and a wasted wake of the pending wait on this one)
   * for records the poll takes. Returns the flag's value for endPoll.
   */
  beginPoll(): number {
    return Atomics.exchange(this.#ctl, kConsumerSleepingField, 0);
  }

  /**
   * Ends beginPoll: puts the sleeping flag back, then re-checks. True if a
   * record is available: one published while the flag was clear got no
   * notify, so the caller must take it now (the doorbell argument, with the
   * flag store and the sequence load in this order, docs/ring-layout.md).
   */
  endPoll(was: number): boolean {
    if (was !== 0) Atomics.store(this.#ctl, kConsumerSleepingField, was);
    return this.available();
  }

  /**
   * Releases what was taken, then blocks this thread until a record is
   * available or `timeoutMs` passes; `spin` polls first, which saves the ~2 µs
   * of a wake when the producer is about to publish. True if one is available.
   */
  waitSync(timeoutMs = Infinity, spin = 0): boolean {
    this.release();
    for (let i = 0; i < spin; i++) if (this.available()) return true;
    if (this.available()) return true;
    if (this.closed) return false;
    sleepSync(this.#ctl, kConsumerSleepingField, kWriteSeqField, this.#read, timeoutMs);
    return this.available();
  }

  /**
   * Wakes a `wait` or `waitSync` of this consumer pending on another thread
   * or on this one (it then returns false unless a record came): for an
   * owner that stops waiting for a reason other than the ring, e.g. a failed
   * producer, so a wait with no timeout does not stay pending.
   */
  interrupt(): void {
    Atomics.notify(this.#ctl, kWriteSeqField);
  }

  /**
   * As waitSync without blocking the event loop (Atomics.waitAsync). A timer
   * keeps the thread alive during the sleep; with `keepAlive` false the
   * caller holds another ref'd handle (a pending waitAsync holds none).
   */
  async wait(timeoutMs = Infinity, keepAlive = true): Promise<boolean> {
    this.release();
    if (this.available()) return true;
    if (this.closed) return false;
    await sleepAsync(this.#ctl, kConsumerSleepingField, kWriteSeqField, this.#read, timeoutMs, keepAlive);
    return this.available();
  }
}

/**
 * Copies `src[start, end)` to `dst[at…]`, where `dstWords` is an Int32Array
 * over the same memory as `dst` (same byteOffset) and the two addresses agree
 * modulo 8 (the lead sees to that). Measured on this project's machine
 * (Node 20): a plain byte loop wins below 16 B; an Int32 word loop (copying
 * integers, so no NaN canonicalisation can alter bytes) wins up to ~768 B at
 * 4-5 GB/s; above that `Uint8Array#set` reaches 10-20 GB/s but needs a view of
 * exactly the source range. So: whole arrays go through `set` (no
 * allocation); ranges up to COPY_WORDS_MAX through the loops (no allocation:
 * views of the source's ArrayBuffer are cached and rebuilt only when the
 * source memory changes, e.g. once per socket chunk); larger ranges through
 * `subarray` + `set`, which allocates one view per record (~80 B against
 * >= 768 B copied). `Buffer#copy` is no way out: for a sub-range it builds the
 * same view internally.
 */
export function copyInto(dst: Uint8Array, dstWords: Int32Array, at: number, src: Uint8Array, start: number, end: number): void {
  let n = end - start;
  if (start === 0 && end === src.length) {
    dst.set(src, at);
    return;
  }
  if (n > COPY_WORDS_MAX) {
    dst.set(src.subarray(start, end), at);
    return;
  }
  if (src.buffer !== cachedSourceBuffer) cacheSource(src.buffer);
  const srcBytes = cachedSourceBytes;
  let s = src.byteOffset + start;
  if (n < COPY_BYTES_MAX) {
    for (let i = 0; i < n; i++) dst[at + i] = srcBytes[s + i]!;
    return;
  }
  // Bytes up to the next 4-byte boundary (the same for both sides), words, then the tail.
  const head = (4 - (s & 3)) & 3;
  for (let i = 0; i < head; i++) dst[at + i] = srcBytes[s + i]!;
  at += head;
  s += head;
  n -= head;
  const words = n >>> 2;
  const di = (at - dst.byteOffset + dstWords.byteOffset) >>> 2;
  const si = s >>> 2;
  const srcWords = cachedSourceWords;
  for (let i = 0; i < words; i++) dstWords[di + i] = srcWords[si + i]!;
  for (let i = words << 2; i < n; i++) dst[at + i] = srcBytes[s + i]!;
}

/**
 * dst[at..] = src[from, from + len) for plain (non-shared) buffers: a byte
 * loop up to 256 bytes (no view allocated; `Buffer#copy` of a sub-range makes
 * one), `subarray` + `set` above. The shard's payload copies and the AMQP
 * deliver path (names, content header) use it.
 */
export function copyBytes(dst: Uint8Array, at: number, src: Uint8Array, from: number, len: number): void {
  if (len <= 256) {
    for (let i = 0; i < len; i++) dst[at + i] = src[from + i]!;
  } else dst.set(src.subarray(from, from + len), at);
}

const COPY_BYTES_MAX = 16;
const COPY_WORDS_MAX = 768;
let cachedSourceBuffer: ArrayBufferLike | undefined;
let cachedSourceBytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
let cachedSourceWords: Int32Array<ArrayBufferLike> = new Int32Array(0);

/** Rebuilds the views of the last source buffer (keeps that one buffer reachable until the next one). */
function cacheSource(buffer: ArrayBufferLike): void {
  cachedSourceBuffer = buffer;
  cachedSourceBytes = new Uint8Array(buffer);
  cachedSourceWords = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
}
