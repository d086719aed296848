/**
 * Opening a log directory: verify every segment, truncate the torn tail,
 * rebuild the live state (live-index.ts). The rule (docs/log-format.md,
 * "Recovery rule"): records are valid while they fit in the file, their
 * checksum matches and their sequence grows; the first invalid record ends
 * the log. Only the newest segment can be torn, because a segment is
 * fdatasynced before the next one is created; an invalid record in a sealed
 * segment is therefore corruption (bit rot, tampering), not a crash, and by
 * default recovery refuses to guess (ERR_LOG_CORRUPT) rather than silently
 * drop everything after it.
 *
 * Sealed segments are verified in parallel on a piscina pool, one task per
 * segment (verify-task.ts); the newest is scanned here meanwhile. Results are
 * applied in sequence order on this thread.
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { fsyncDir } from './dir-sync.js';
import { LogError } from './errors.js';
import { COMPACT_SUFFIX, SEGMENT_HEADER_SIZE, SEGMENT_NAME_RE } from './format.js';
import { LiveIndex } from './live-index.js';
import { RecordType } from './records.js';
import { E_EXTRA, E_LENGTH, E_MESSAGE, E_OFFSET, E_QUEUE, E_TYPE, ENTRY_FIELDS, scanFile, type ScanResult } from './scan.js';
import { Segment } from './segment.js';
import type { VerifyTask } from './verify-task.js';

export interface RecoveryOptions {
  /** Verify sealed segments on a piscina pool when they hold at least this many bytes in total (thread start-up costs ~30 ms). */
  parallelVerifyMinBytes: number;
  /** Pool size; default: available cores. */
  verifyThreads: number;
  /** 'throw' (default): a sealed segment failing verification is an error. 'truncate': apply the rule anyway and delete every later segment. */
  onSealedCorruption: 'throw' | 'truncate';
  /** Called after each sealed segment is applied and once at the end: bytes of segment files done, of all. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export interface RecoveryReport {
  segments: number;
  records: number;
  /** Bytes scanned and verified (all segment files, headers included). */
  bytes: number;
  truncatedBytes: number;
  /** Files removed: leftovers of an interrupted compaction, a newest segment with a torn header, segments after corruption. */
  removedFiles: string[];
  liveMessages: number;
  /** Sealed segments were verified on the piscina pool. */
  parallel: boolean;
  ms: number;
}

export interface Recovered {
  segments: Segment[];
  index: LiveIndex;
  lastSeq: number;
  report: RecoveryReport;
}

function corrupt(seg: string, scan: ScanResult): LogError {
  return scan.headerError
    ? new LogError(/version/.test(scan.headerError) ? 'ERR_LOG_VERSION' : 'ERR_LOG_BAD_HEADER', `${seg}: ${scan.headerError}`)
    : new LogError('ERR_LOG_CORRUPT', `${seg}: sealed segment invalid at byte ${scan.validEnd} (${scan.stopReason}); not a torn write — refusing to drop what follows`);
}

export async function recover(dir: string, opts: RecoveryOptions): Promise<Recovered> {
  const started = performance.now();
  const report: RecoveryReport = { segments: 0, records: 0, bytes: 0, truncatedBytes: 0, removedFiles: [], liveMessages: 0, parallel: false, ms: 0 };
  const names = readdirSync(dir);
  let removed = false;
  for (const name of names) {
    // An interrupted compaction: the original segment is still in place (the rename is the commit point).
    if (name.endsWith(COMPACT_SUFFIX)) {
      unlinkSync(join(dir, name));
      report.removedFiles.push(name);
      removed = true;
    }
  }
  const bases = names.map((n) => SEGMENT_NAME_RE.exec(n)).filter((m): m is RegExpExecArray => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  const segments = bases.map((b) => new Segment(dir, b, statSync(join(dir, `${String(b).padStart(20, '0')}.seg`)).size));
  const index = new LiveIndex();
  for (const s of segments) index.addSegment(s);

  const sealed = segments.slice(0, -1);
  const newest = segments.at(-1);
  const sealedBytes = sealed.reduce((a, s) => a + s.size, 0);
  const totalBytes = sealedBytes + (newest?.size ?? 0);
  let scans: Promise<ScanResult>[];
  let pool: Piscina | null = null;
  if (sealed.length > 0 && sealedBytes >= opts.parallelVerifyMinBytes) {
    pool = new Piscina({
      filename: new URL('./verify-task.js', import.meta.url).href,
      minThreads: 1,
      maxThreads: Math.max(1, Math.min(opts.verifyThreads, sealed.length)),
      idleTimeout: 0,
    });
    // Destroying the pool early (a corrupt segment, below) can race a worker's
    // answer: piscina then emits 'error' ("Unexpected message from Worker")
    // for a task it no longer tracks, which would crash the process with no
    // listener. Every task's own failure still rejects its promise.
    pool.on('error', () => {});
    report.parallel = true;
    scans = sealed.map((s) => pool!.run({ path: s.path, baseSeq: s.baseSeq } satisfies VerifyTask) as Promise<ScanResult>);
    // If an early segment is corrupt we stop awaiting and destroy the pool, which rejects the rest: not an unhandled rejection.
    for (const p of scans) p.catch(() => {});
  } else {
    scans = sealed.map((s) => Promise.resolve(scanFile(s.path, s.baseSeq)));
  }
  // Scan the newest segment on this thread while the pool works.
  let newestScan: ScanResult | null = null;
  if (newest) {
    newestScan = scanFile(newest.path, newest.baseSeq);
  }

  let prevLast = 0;
  let kept = segments.length;
  try {
    for (let i = 0; i < sealed.length; i++) {
      const seg = sealed[i]!;
      const scan = await scans[i]!;
      const bad = scan.headerError !== null || scan.stopReason !== 'end' || seg.baseSeq <= prevLast;
      if (bad) {
        if (opts.onSealedCorruption === 'throw' || scan.headerError !== null) {
          throw seg.baseSeq <= prevLast && !scan.headerError
            ? new LogError('ERR_LOG_CORRUPT', `${seg.path}: base sequence ${seg.baseSeq} not after ${prevLast}`)
            : corrupt(seg.path, scan);
        }
        // 'truncate': the log ends here; everything after this record goes.
        truncate(seg, scan.validEnd, report);
        apply(index, seg, scan);
        report.bytes += scan.validEnd;
        for (const later of segments.slice(i + 1)) {
          unlinkSync(later.path);
          report.removedFiles.push(later.path);
        }
        removed = true;
        kept = i + 1;
        prevLast = Math.max(prevLast, seg.lastSeq);
        newestScan = null;
        break;
      }
      apply(index, seg, scan);
      seg.sealed = true;
      report.bytes += seg.size;
      prevLast = seg.lastSeq;
      opts.onProgress?.(report.bytes, totalBytes);
    }
  } finally {
    if (pool) await pool.destroy();
  }

  if (newest && newestScan) {
    const scan = newestScan;
    if (scan.headerError !== null) {
      if (/version/.test(scan.headerError)) throw corrupt(newest.path, scan);
      if (/base sequence/.test(scan.headerError)) throw corrupt(newest.path, scan);
      // Torn while being created: the header and every record after it become durable in the same fdatasync, so no confirmed record is here.
      unlinkSync(newest.path);
      report.removedFiles.push(newest.path);
      report.truncatedBytes += newest.size;
      removed = true;
      kept--;
    } else {
      if (newest.baseSeq <= prevLast) throw new LogError('ERR_LOG_CORRUPT', `${newest.path}: base sequence ${newest.baseSeq} not after ${prevLast}`);
      if (scan.validEnd < newest.size) truncate(newest, scan.validEnd, report);
      apply(index, newest, scan);
      report.bytes += scan.validEnd;
      prevLast = Math.max(prevLast, newest.lastSeq);
    }
  }
  if (removed) fsyncDir(dir);
  const live = segments.slice(0, kept);
  for (const s of live) s.sealed = true;
  report.segments = live.length;
  report.records = live.reduce((a, s) => a + s.records, 0);
  report.liveMessages = index.liveMessages;
  report.ms = performance.now() - started;
  opts.onProgress?.(totalBytes, totalBytes);
  return { segments: live, index, lastSeq: prevLast, report };
}

/** Cuts a torn tail and makes the cut durable before anything is appended after it. */
function truncate(seg: Segment, validEnd: number, report: RecoveryReport): void {
  report.truncatedBytes += seg.size - validEnd;
  const fd = openSync(seg.path, 'r+');
  try {
    ftruncateSync(fd, validEnd);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  seg.size = validEnd;
}

/** Replays one scanned segment into the index, in file (= sequence) order. */
function apply(index: LiveIndex, seg: Segment, scan: ScanResult): void {
  const e = scan.entries;
  for (let i = 0; i < scan.records; i++) {
    const k = i * ENTRY_FIELDS;
    const type = e[k + E_TYPE]!;
    const offset = e[k + E_OFFSET]!;
    const length = e[k + E_LENGTH]!;
    switch (type) {
      case RecordType.MessageEnqueued:
        index.onEnqueue(seg, offset, length, e[k + E_QUEUE]!, e[k + E_MESSAGE]!);
        break;
      case RecordType.MessageSettled:
        index.onSettle(seg, offset, length, e[k + E_QUEUE]!, e[k + E_MESSAGE]!);
        break;
      case RecordType.DeliveryCount:
        index.onDeliveryCount(seg, offset, length, e[k + E_QUEUE]!, e[k + E_MESSAGE]!, e[k + E_EXTRA]!);
        break;
      default:
        index.onOther(seg, length, LiveIndex.decodeOther(type, scan.other[e[k + E_QUEUE]!]!));
    }
  }
  seg.records = scan.records;
  seg.lastSeq = scan.records > 0 ? scan.lastSeq : seg.baseSeq - 1;
  if (seg.size < SEGMENT_HEADER_SIZE) seg.size = SEGMENT_HEADER_SIZE;
}

export const DEFAULT_RECOVERY_OPTIONS: RecoveryOptions = {
  parallelVerifyMinBytes: 8 * 1024 * 1024,
  verifyThreads: os.availableParallelism(),
  onSealedCorruption: 'throw',
};
