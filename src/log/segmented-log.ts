/**
 * One shard's durable log: a directory of segment files (format.ts,
 * docs/log-format.md), an in-memory index of unsettled messages
 * (live-index.ts), group commit (fsync.ts), recovery on open (recovery.ts)
 * and reclamation (reclaim.ts).
 *
 * Hot path (append*): the record is encoded straight into one reused write
 * buffer (grown in page multiples, never shrunk), checksummed in place, and
 * the buffer is written with one positional write syscall per turn of the
 * event loop (or when full) — no syscall and no allocation per record beyond
 * the index entry of an enqueued message. `append*` returns the record's
 * sequence at once; `durable(seq)` gives the promise a confirm waits for.
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from './crc32.js';
import { fsyncDir } from './dir-sync.js';
import { LogError } from './errors.js';
import {
  BASE_SEQ_OFFSET, BODY_OFFSET, CRC_OFFSET, CRC_START, DEFAULT_SEGMENT_BYTES, FLAGS_OFFSET, FORMAT_VERSION, HEADER_CRC_OFFSET,
  HEADER_FLAGS_OFFSET, LENGTH_OFFSET, MAGIC, MAGIC_OFFSET, MAX_BODY_SIZE, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE, SEQ_OFFSET, TYPE_OFFSET, VERSION_OFFSET, readU16, readU32, readU64, writeU16, writeU32, writeU64,
} from './format.js';
import { Durability, FSYNC_POLICIES, type FsyncPolicy } from './fsync.js';
import type { LiveIndex } from './live-index.js';
import type { QueueView } from './queue-index.js';
import { reclaim, type ReclaimHooks, type ReclaimReport } from './reclaim.js';
import {
  DELIVERY_COUNT_SIZE, ENQUEUED_FIXED_SIZE, PROPERTIES_LENGTH_OFFSET, PROPERTIES_OFFSET, RecordType, SETTLED_SIZE,
  decodeRecordBody, encodeRecordBody, isTopologyType, type SettleReasonValue, type TopologyRecord,
  COUNT_OFFSET, MESSAGE_ID_OFFSET, QUEUE_ID_OFFSET, REASON_OFFSET,
} from './records.js';
import { DEFAULT_RECOVERY_OPTIONS, recover, type RecoveryOptions, type RecoveryReport } from './recovery.js';
import { Segment } from './segment.js';

export interface LogOptions {
  /** Default 'always'. */
  fsync?: FsyncPolicy;
  /** fdatasync period under 'interval', ms. Default 100. */
  intervalMs?: number;
  /** Segment file size bound, bytes (a single larger record gets a segment of its own). Default 64 MiB. */
  segmentBytes?: number;
  /** Initial write buffer; grows in 4 KiB pages for a larger record. Default 1 MiB. */
  writeBufferBytes?: number;
  /** Compact a sealed segment when its live bytes fall below this fraction. Default 0.5. */
  compactBelow?: number;
  recovery?: Partial<RecoveryOptions>;
  /** Test hooks: called at each reclamation step; a hook that throws simulates a crash there. */
  reclaimHooks?: ReclaimHooks;
}

export interface LogStats {
  appends: number;
  writeSyscalls: number;
  bytesWritten: number;
  syncs: number;
  lastSeq: number;
  writtenSeq: number;
  durableSeq: number;
}

export interface StoredMessage {
  queueId: number;
  messageId: number;
  properties: Buffer;
  body: Buffer;
}

const PAGE = 4096;
/**
 * Under interval/never, an fdatasync without waiters starts (on the libuv
 * pool) every this many bytes written, so that writeback overlaps appending:
 * profiled, the synchronous fdatasync that seals a 64 MiB segment took 28% of
 * append-never at 1 KiB when the kernel was left to write back on its own.
 */
const BACKGROUND_SYNC_BYTES = 8 * 1024 * 1024;
const roundUpToPage = (n: number): number => Math.ceil(n / PAGE) * PAGE;

export class SegmentedLog {
  readonly dir: string;
  readonly policy: FsyncPolicy;
  readonly recovery: RecoveryReport;
  /** Live state: per queue the unsettled messages, topology. Read-only for callers. */
  readonly index: LiveIndex;
  /** Every segment, oldest first; the last one is the active (appended-to) segment. */
  readonly segments: Segment[];
  readonly segmentBytes: number;
  readonly compactBelow: number;
  readonly reclaimHooks: ReclaimHooks;
  private readonly durability: Durability;
  private active: Segment;
  private fd: number;
  private buf: Buffer;
  /** Bytes in buf not yet written; buf[0] goes to file offset active.size - bufLen. */
  private bufLen = 0;
  private lastSeq: number;
  private closed = false;
  private retiredFds: number[] = [];
  private appends = 0;
  private writeSyscalls = 0;
  private bytesWritten = 0;
  /** bytesWritten when the last background fdatasync started (interval/never). */
  private nudgedAt = 0;
  private reclaiming: Promise<ReclaimReport> | null = null;

  private constructor(dir: string, opts: LogOptions, rec: Awaited<ReturnType<typeof recover>>) {
    this.dir = dir;
    this.policy = opts.fsync ?? 'always';
    this.recovery = rec.report;
    this.index = rec.index;
    this.segments = rec.segments;
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.compactBelow = opts.compactBelow ?? 0.5;
    this.reclaimHooks = opts.reclaimHooks ?? {};
    this.lastSeq = rec.lastSeq;
    this.buf = Buffer.allocUnsafe(roundUpToPage(opts.writeBufferBytes ?? 1024 * 1024));
    this.fd = -1;
    this.active = null as unknown as Segment;
    if (this.segments.length === 0) {
      this.createSegment(this.lastSeq + 1);
    } else {
      this.active = this.segments.at(-1)!;
      this.active.sealed = false;
      this.fd = openSync(this.active.path, 'r+');
    }
    this.durability = new Durability(this.policy, opts.intervalMs ?? 100, {
      flush: () => this.flush(),
      activeFd: () => this.fd,
      onIdle: () => this.closeRetired(),
    }, this.lastSeq);
    this.durability.pendingSeq = this.lastSeq;
    if (this.bufLen > 0) this.durability.schedule(); // a new segment's header
  }

  /** Opens (creating if needed) and recovers the log in `dir`. */
  static async open(dir: string, opts: LogOptions = {}): Promise<SegmentedLog> {
    if (opts.fsync !== undefined && !FSYNC_POLICIES.includes(opts.fsync)) throw new LogError('ERR_LOG_OPTIONS', `fsync must be one of ${FSYNC_POLICIES.join(', ')}`);
    const seg = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!(seg >= MIN_SEGMENT_BYTES && seg <= MAX_SEGMENT_BYTES)) throw new LogError('ERR_LOG_OPTIONS', `segmentBytes must be in [${MIN_SEGMENT_BYTES}, ${MAX_SEGMENT_BYTES}]`);
    mkdirSync(dir, { recursive: true });
    const rec = await recover(dir, { ...DEFAULT_RECOVERY_OPTIONS, ...opts.recovery });
    return new SegmentedLog(dir, opts, rec);
  }

  // ---- appends -------------------------------------------------------------

  /** Appends a MessageEnqueued record; returns its sequence. Allocates only the index entry. */
  appendEnqueue(queueId: number, messageId: number, properties: Uint8Array, body: Uint8Array): number {
    const bodyLen = ENQUEUED_FIXED_SIZE + properties.length + body.length;
    const o = this.reserve(bodyLen);
    const b = o + BODY_OFFSET;
    const buf = this.buf;
    writeU32(buf, b + QUEUE_ID_OFFSET, queueId);
    writeU64(buf, b + MESSAGE_ID_OFFSET, messageId);
    writeU32(buf, b + PROPERTIES_LENGTH_OFFSET, properties.length);
    buf.set(properties, b + PROPERTIES_OFFSET);
    buf.set(body, b + PROPERTIES_OFFSET + properties.length);
    const offset = this.commit(o, RecordType.MessageEnqueued, bodyLen);
    this.index.onEnqueue(this.active, offset, RECORD_HEADER_SIZE + bodyLen, queueId, messageId);
    return this.lastSeq;
  }

  /** Appends a MessageSettled record (ack, dead-letter, expiry, drop); returns its sequence. */
  appendSettle(queueId: number, messageId: number, reason: SettleReasonValue): number {
    const o = this.reserve(SETTLED_SIZE);
    const b = o + BODY_OFFSET;
    writeU32(this.buf, b + QUEUE_ID_OFFSET, queueId);
    writeU64(this.buf, b + MESSAGE_ID_OFFSET, messageId);
    this.buf[b + REASON_OFFSET] = reason;
    const offset = this.commit(o, RecordType.MessageSettled, SETTLED_SIZE);
    this.index.onSettle(this.active, offset, RECORD_HEADER_SIZE + SETTLED_SIZE, queueId, messageId);
    return this.lastSeq;
  }

  /** Appends a DeliveryCount record (so a delivery limit survives restarts); returns its sequence. */
  appendDeliveryCount(queueId: number, messageId: number, count: number): number {
    const o = this.reserve(DELIVERY_COUNT_SIZE);
    const b = o + BODY_OFFSET;
    writeU32(this.buf, b + QUEUE_ID_OFFSET, queueId);
    writeU64(this.buf, b + MESSAGE_ID_OFFSET, messageId);
    writeU32(this.buf, b + COUNT_OFFSET, count);
    const offset = this.commit(o, RecordType.DeliveryCount, DELIVERY_COUNT_SIZE);
    this.index.onDeliveryCount(this.active, offset, RECORD_HEADER_SIZE + DELIVERY_COUNT_SIZE, queueId, messageId, count);
    return this.lastSeq;
  }

  /** Appends a topology record (queue/exchange declare/delete, bind/unbind). Allocates (encodes). */
  appendTopology(record: TopologyRecord): number {
    const body = encodeRecordBody(record);
    this.appendBytes(record.type, body);
    this.index.onOther(this.active, RECORD_HEADER_SIZE + body.length, record);
    return this.lastSeq;
  }

  /**
   * Appends a record of any type from an encoded body. Known message and
   * topology types are decoded and indexed as if appended by their typed method.
   */
  append(type: number, body: Uint8Array): number {
    if (!Number.isInteger(type) || type < 0 || type > 0xffff) throw new LogError('ERR_LOG_OPTIONS', `record type ${type} out of range`);
    if (type === RecordType.MessageEnqueued || type === RecordType.MessageSettled || type === RecordType.DeliveryCount || isTopologyType(type)) {
      const r = decodeRecordBody(type, body);
      switch (r.type) {
        case RecordType.MessageEnqueued: return this.appendEnqueue(r.queueId, r.messageId, r.properties, r.body);
        case RecordType.MessageSettled: return this.appendSettle(r.queueId, r.messageId, r.reason);
        case RecordType.DeliveryCount: return this.appendDeliveryCount(r.queueId, r.messageId, r.count);
        default: return this.appendTopology(r);
      }
    }
    this.appendBytes(type, body);
    this.index.onOther(this.active, RECORD_HEADER_SIZE + body.length, null);
    return this.lastSeq;
  }

  private appendBytes(type: number, body: Uint8Array): void {
    const o = this.reserve(body.length);
    this.buf.set(body, o + BODY_OFFSET);
    this.commit(o, type, body.length);
  }

  /** Room for one record in the write buffer (rolling the segment first if it would overflow); returns its buffer offset. */
  private reserve(bodyLen: number): number {
    if (this.closed) throw new LogError('ERR_LOG_CLOSED', 'log is closed');
    if (this.durability.failure) throw this.durability.failure;
    if (bodyLen > MAX_BODY_SIZE) throw new LogError('ERR_LOG_RECORD_TOO_LARGE', `record body of ${bodyLen} bytes exceeds ${MAX_BODY_SIZE}`);
    const need = RECORD_HEADER_SIZE + bodyLen;
    // A record never straddles segments; a record larger than a segment gets one of its own.
    if (this.active.size + need > this.segmentBytes && this.active.records > 0) this.roll();
    if (this.bufLen + need > this.buf.length) {
      this.flushOrFail();
      if (need > this.buf.length) this.buf = Buffer.allocUnsafe(roundUpToPage(need));
    }
    return this.bufLen;
  }

  /** Fills in the header and checksum of the record at buffer offset o; returns its file offset. */
  private commit(o: number, type: number, bodyLen: number): number {
    const buf = this.buf;
    const seq = ++this.lastSeq;
    writeU32(buf, o + LENGTH_OFFSET, bodyLen);
    writeU16(buf, o + TYPE_OFFSET, type);
    writeU16(buf, o + FLAGS_OFFSET, 0);
    writeU64(buf, o + SEQ_OFFSET, seq);
    const end = o + RECORD_HEADER_SIZE + bodyLen;
    writeU32(buf, o + CRC_OFFSET, crc32(buf, o + CRC_START, end));
    this.bufLen = end;
    const offset = this.active.size;
    this.active.size += end - o;
    this.active.records++;
    this.active.lastSeq = seq;
    this.appends++;
    this.durability.pendingSeq = seq;
    this.durability.schedule();
    return offset;
  }

  // ---- durability ----------------------------------------------------------

  /** Resolves when record `seq` is as durable as the policy promises: under 'always' after an fdatasync covering it. */
  durable(seq: number): Promise<void> {
    return this.durability.waitFor(seq);
  }

  /** Forces an fdatasync covering every record appended so far (any policy). */
  sync(): Promise<void> {
    return this.durability.sync();
  }

  /** Writes the buffered records with one positional write. Returns the last sequence written. */
  private flush(): number {
    if (this.bufLen > 0) {
      let done = 0;
      const len = this.bufLen;
      const pos = this.active.size - len;
      while (done < len) done += writeSync(this.fd, this.buf, done, len - done, pos + done);
      this.writeSyscalls++;
      this.bytesWritten += len;
      this.bufLen = 0;
    }
    return this.lastSeq;
  }

  private flushOrFail(): void {
    try {
      this.durability.writtenSeq = this.flush();
    } catch (err) {
      throw this.durability.fail(err);
    }
    if (this.policy !== 'always' && this.bytesWritten - this.nudgedAt >= BACKGROUND_SYNC_BYTES) {
      this.nudgedAt = this.bytesWritten;
      this.durability.backgroundSync();
    }
  }

  /** Seals the active segment (written and fdatasynced, so only the newest segment can ever be torn) and starts the next. */
  private roll(): void {
    this.flushOrFail();
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      throw this.durability.fail(err);
    }
    this.durability.markDurable(this.lastSeq);
    this.active.sealed = true;
    // An fdatasync may be in flight on this descriptor: close it only when none is.
    this.retiredFds.push(this.fd);
    if (this.durability.idle) this.closeRetired();
    this.createSegment(this.lastSeq + 1);
  }

  private createSegment(baseSeq: number): void {
    const seg = new Segment(this.dir, baseSeq, SEGMENT_HEADER_SIZE);
    this.fd = openSync(seg.path, 'wx');
    fsyncDir(this.dir);
    // The header goes out with the first write; a crash before it leaves a short file recovery removes (it holds no record).
    const buf = this.buf;
    buf.fill(0, 0, SEGMENT_HEADER_SIZE);
    writeU32(buf, MAGIC_OFFSET, MAGIC);
    writeU16(buf, VERSION_OFFSET, FORMAT_VERSION);
    writeU16(buf, HEADER_FLAGS_OFFSET, 0);
    writeU64(buf, BASE_SEQ_OFFSET, baseSeq);
    writeU32(buf, HEADER_CRC_OFFSET, crc32(buf, 0, HEADER_CRC_OFFSET));
    this.bufLen = SEGMENT_HEADER_SIZE;
    this.segments.push(seg);
    this.index.addSegment(seg);
    this.active = seg;
    this.durability?.schedule();
  }

  private closeRetired(): void {
    for (const fd of this.retiredFds) closeSync(fd);
    this.retiredFds = [];
  }

  // ---- reads ---------------------------------------------------------------

  /**
   * Reads an unsettled message back by its position (pread) and verifies its
   * checksum. Synchronous on purpose: compaction moves positions between
   * turns, never during a read. Allocates the returned buffers.
   */
  readMessage(ref: { queueId: number; messageId: number }): StoredMessage {
    if (this.closed) throw new LogError('ERR_LOG_CLOSED', 'log is closed');
    const q = this.index.queues.get(ref.queueId);
    const slot = q === undefined ? -1 : q.slotOf(ref.messageId);
    if (slot < 0) throw new LogError('ERR_LOG_BAD_RECORD', `message ${ref.queueId}/${ref.messageId} is not in the log (settled or never appended)`);
    const seg = this.index.segment(q!.segOf(slot));
    const entry = { offset: q!.offs[slot]!, length: q!.lens[slot]!, queueId: ref.queueId, messageId: ref.messageId };
    if (seg === this.active && entry.offset + entry.length > seg.size - this.bufLen) this.flushOrFail();
    const rec = Buffer.allocUnsafe(entry.length);
    const fd = seg.openForRead();
    let got = 0;
    while (got < entry.length) {
      const n = readSync(fd, rec, got, entry.length - got, entry.offset + got);
      if (n === 0) break;
      got += n;
    }
    if (got !== entry.length || readU32(rec, CRC_OFFSET) !== crc32(rec, CRC_START, entry.length)) {
      throw new LogError('ERR_LOG_CORRUPT', `${seg.path}: message ${entry.queueId}/${entry.messageId} at byte ${entry.offset} fails its checksum`);
    }
    const b = BODY_OFFSET;
    const propsLen = readU32(rec, b + PROPERTIES_LENGTH_OFFSET);
    if (readU16(rec, TYPE_OFFSET) !== RecordType.MessageEnqueued || b + PROPERTIES_OFFSET + propsLen > entry.length) {
      throw new LogError('ERR_LOG_BAD_RECORD', `${seg.path}: byte ${entry.offset} is not an enqueue record`);
    }
    // Views into the one buffer read above: no second copy of the body.
    return {
      queueId: readU32(rec, b + QUEUE_ID_OFFSET), messageId: readU64(rec, b + MESSAGE_ID_OFFSET),
      properties: rec.subarray(b + PROPERTIES_OFFSET, b + PROPERTIES_OFFSET + propsLen), body: rec.subarray(b + PROPERTIES_OFFSET + propsLen),
    };
  }

  /** Unsettled messages of a queue, in publish order (a live view; entries are snapshots made on demand). */
  queue(queueId: number): QueueView | undefined {
    return this.index.queues.get(queueId);
  }

  // ---- reclamation ---------------------------------------------------------

  /**
   * Deletes segments with nothing live and compacts mostly-settled ones
   * (reclaim.ts). Syncs first: a settle must be durable before the enqueue it
   * settles is dropped. One reclamation at a time.
   */
  reclaim(): Promise<ReclaimReport> {
    if (this.reclaiming) return this.reclaiming;
    this.reclaiming = (async () => {
      try {
        await this.sync();
        let total: ReclaimReport | null = null;
        // Two rounds: deleting old segments can kill the settles in the active segment, which is then worth sealing too.
        for (let round = 0; round < 2; round++) {
          const a = this.active;
          const activeDead = a.records > 0 && a.liveBytes < this.compactBelow * (a.size - SEGMENT_HEADER_SIZE);
          if (round > 0 && !activeDead) break;
          // A mostly dead active segment is sealed first so that it can be reclaimed too.
          if (activeDead) {
            this.roll();
            await this.sync();
          }
          const r = reclaim(this, this.segments.slice(0, -1));
          if (total === null) total = r;
          else {
            total.deleted += r.deleted;
            total.compacted += r.compacted;
            total.bytesAfter = r.bytesAfter;
            total.ms += r.ms;
          }
        }
        return total!;
      } finally {
        this.reclaiming = null;
      }
    })();
    return this.reclaiming;
  }

  /** Removes a segment from the list (reclaim.ts, after unlinking it). */
  forgetSegment(seg: Segment): void {
    const i = this.segments.indexOf(seg);
    if (i >= 0 && seg !== this.active) this.segments.splice(i, 1);
  }

  /** Bytes of all segment files (as they will be once the buffer is written). */
  diskBytes(): number {
    return this.segments.reduce((a, s) => a + s.size, 0);
  }

  get stats(): LogStats {
    return {
      appends: this.appends, writeSyscalls: this.writeSyscalls, bytesWritten: this.bytesWritten, syncs: this.durability.syncs,
      lastSeq: this.lastSeq, writtenSeq: this.durability.writtenSeq, durableSeq: this.durability.durableSeq,
    };
  }

  /** Writes what is buffered and starts the fdatasync waiters ask for, now (Durability.syncNow). */
  syncNow(): void {
    this.durability.syncNow();
  }

  /** No fdatasync, write turn or reclaim pending: nothing of the log waits for this thread's event loop. */
  get quiet(): boolean {
    return this.durability.quiet && this.reclaiming === null;
  }

  /** fdatasync latency histogram (bucket counts per FSYNC_BUCKETS_S bound, last +Inf) and total seconds. */
  get durabilityStats(): { buckets: Float64Array; seconds: number } {
    return { buckets: this.durability.syncBuckets, seconds: this.durability.syncSeconds };
  }

  get lastSequence(): number {
    return this.lastSeq;
  }

  /**
   * Last sequence as durable as the fsync policy promises — what a confirm may
   * be sent for: fdatasynced under `always`, written to the kernel under
   * `interval` and `never` (docs/log-format.md §6). No allocation.
   */
  get confirmableSequence(): number {
    return this.policy === 'always' ? this.durability.durableSeq : this.durability.writtenSeq;
  }

  /** Last sequence covered by a completed fdatasync (no allocation, unlike `stats`). */
  get durableSequence(): number {
    return this.durability.durableSeq;
  }

  // ---- shutdown ------------------------------------------------------------

  /** Writes and fdatasyncs everything, then closes every descriptor. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.reclaiming) await this.reclaiming.catch(() => {});
    if (!this.durability.failure) await this.sync();
    this.closed = true;
    try {
      if (!this.durability.failure) {
        this.flush();
        fdatasyncSync(this.fd);
      }
    } finally {
      this.durability.close(this.lastSeq);
      this.closeAll();
    }
  }

  /** Tests only: drop everything as a killed process would (no flush, no sync). Buffered records are lost. */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.bufLen = 0;
    this.durability.close(this.durability.durableSeq);
    this.closeAll();
  }

  private closeAll(): void {
    if (!this.durability.idle) {
      // An fdatasync is still in flight on fd: close it when it returns.
      this.retiredFds.push(this.fd);
    } else {
      this.closeRetired();
      closeSync(this.fd);
    }
    for (const s of this.segments) s.closeRead();
  }
}
