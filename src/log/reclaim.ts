/**
 * Reclamation: disk use follows the live data (docs/log-format.md,
 * "Reclamation"). Works on sealed segments only, after the log has synced
 * (so every settle is durable before the enqueue it settles is dropped).
 *
 * - Delete: a segment with no live bytes is unlinked; after the directory
 *   fsync, the settles elsewhere that pointed into it are dead (released).
 *   A crash before or after the unlink leaves either the whole file or none;
 *   with the file back, recovery replays records that are all settled.
 * - Compact: the live records of a mostly settled segment are copied, bytes
 *   unchanged (same sequences, same checksums), into `<name>.seg.compact`,
 *   which is fdatasynced and then renamed over the original — the rename is
 *   the commit point. A crash before it leaves the original plus a partial
 *   temp file, which recovery deletes; after it, the compacted file is
 *   complete. Either file recovers to the same live state, because the
 *   compacted one lacks only dead records.
 */
import { closeSync, fdatasyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from './crc32.js';
import { fsyncDir } from './dir-sync.js';
import { LogError } from './errors.js';
import { BASE_SEQ_OFFSET, COMPACT_SUFFIX, FORMAT_VERSION, HEADER_CRC_OFFSET, HEADER_FLAG_COMPACTED, HEADER_FLAGS_OFFSET, MAGIC, MAGIC_OFFSET, SEGMENT_HEADER_SIZE, SEGMENT_SUFFIX, VERSION_OFFSET, writeU16, writeU32, writeU64 } from './format.js';
import type { LiveIndex } from './live-index.js';
import { RecordType } from './records.js';
import { E_LENGTH, E_MESSAGE, E_OFFSET, E_QUEUE, E_TYPE, ENTRY_FIELDS, scanSegment } from './scan.js';
import type { PendingSettle, Segment } from './segment.js';

export type ReclaimStep = 'deleted-before-dir-sync' | 'compact-written' | 'compact-synced' | 'compact-renamed';

export interface ReclaimHooks {
  /** Called at each step with the segment concerned; throwing simulates a crash at that point. */
  step?(step: ReclaimStep, seg: Segment, tempPath?: string): void;
}

export interface ReclaimReport {
  deleted: number;
  compacted: number;
  bytesBefore: number;
  bytesAfter: number;
  ms: number;
}

/** What reclaim needs from the log. */
export interface ReclaimHost {
  readonly dir: string;
  readonly index: LiveIndex;
  readonly segments: Segment[];
  readonly compactBelow: number;
  readonly reclaimHooks: ReclaimHooks;
  forgetSegment(seg: Segment): void;
}

export function reclaim(log: ReclaimHost, sealed: Segment[]): ReclaimReport {
  const started = performance.now();
  const size = (): number => log.segments.reduce((a, s) => a + s.size, 0);
  const report: ReclaimReport = { deleted: 0, compacted: 0, bytesBefore: size(), bytesAfter: 0, ms: 0 };
  const compacted = new Set<Segment>();
  let candidates = sealed.filter((s) => s.sealed);
  for (let progress = true; progress; ) {
    progress = false;
    const dead = candidates.filter((s) => s.liveBytes === 0);
    if (dead.length > 0) {
      for (const seg of dead) {
        seg.closeRead();
        unlinkSync(seg.path);
        log.reclaimHooks.step?.('deleted-before-dir-sync', seg);
      }
      fsyncDir(log.dir);
      // Only now are the deleted enqueues gone for good, so the settles pointing at them may go too.
      for (const seg of dead) {
        log.index.releaseSettles(seg);
        log.index.removeSegment(seg);
        log.forgetSegment(seg);
      }
      report.deleted += dead.length;
      candidates = candidates.filter((s) => !dead.includes(s));
      progress = true;
    }
    for (const seg of candidates) {
      if (compacted.has(seg) || seg.liveBytes === 0) continue;
      const payload = seg.size - SEGMENT_HEADER_SIZE;
      if (seg.liveBytes < log.compactBelow * payload) {
        compact(log, seg);
        compacted.add(seg);
        report.compacted++;
        progress = true;
      }
    }
  }
  report.bytesAfter = size();
  report.ms = performance.now() - started;
  return report;
}

/** Rewrites a sealed segment with only its live records (see the file comment for the crash argument). */
function compact(log: ReclaimHost, seg: Segment): void {
  const buf = readFileSync(seg.path);
  const scan = scanSegment(buf, buf.length, seg.baseSeq);
  if (scan.headerError !== null || scan.stopReason !== 'end') {
    throw new LogError('ERR_LOG_CORRUPT', `${seg.path}: sealed segment fails verification during compaction (${scan.headerError ?? scan.stopReason} at ${scan.validEnd})`);
  }
  const pending = new Map<number, PendingSettle>();
  for (const s of log.segments) for (const p of s.settledElsewhere) if (p.segment === seg) pending.set(p.offset, p);

  const out = Buffer.allocUnsafe(SEGMENT_HEADER_SIZE + Math.max(0, seg.liveBytes));
  out.fill(0, 0, SEGMENT_HEADER_SIZE);
  writeU32(out, MAGIC_OFFSET, MAGIC);
  writeU16(out, VERSION_OFFSET, FORMAT_VERSION);
  writeU16(out, HEADER_FLAGS_OFFSET, HEADER_FLAG_COMPACTED);
  writeU64(out, BASE_SEQ_OFFSET, seg.baseSeq);
  writeU32(out, HEADER_CRC_OFFSET, crc32(out, 0, HEADER_CRC_OFFSET));
  let pos = SEGMENT_HEADER_SIZE;
  const moves: (() => void)[] = [];
  const e = scan.entries;
  for (let i = 0; i < scan.records; i++) {
    const k = i * ENTRY_FIELDS;
    const off = e[k + E_OFFSET]!;
    const len = e[k + E_LENGTH]!;
    const type = e[k + E_TYPE]!;
    let move: (() => void) | null = null;
    const at = pos;
    if (type === RecordType.MessageEnqueued || type === RecordType.DeliveryCount) {
      const q = log.index.queues.get(e[k + E_QUEUE]!);
      const slot = q === undefined ? -1 : q.slotOf(e[k + E_MESSAGE]!);
      if (slot >= 0) {
        // Only this exact record is live: the message's current enqueue (or latest count) must be at this offset of this file.
        if (type === RecordType.MessageEnqueued && q!.segOf(slot) === seg.id && q!.offs[slot] === off) move = () => { q!.offs[slot] = at; };
        if (type === RecordType.DeliveryCount && q!.countSeg(slot) === seg.id && q!.countOffset(slot) === off) move = () => { q!.moveCount(slot, at); };
      }
    } else if (type === RecordType.MessageSettled) {
      const p = pending.get(off);
      if (p !== undefined) move = () => { p.offset = at; };
    } else {
      move = () => {}; // topology and unknown types are always kept
    }
    if (move === null) continue;
    if (pos + len > out.length) throw new LogError('ERR_LOG_CORRUPT', `${seg.path}: live records exceed the accounted ${seg.liveBytes} bytes`);
    buf.copy(out, pos, off, off + len);
    pos += len;
    moves.push(move);
  }
  const temp = seg.path.slice(0, -SEGMENT_SUFFIX.length) + COMPACT_SUFFIX;
  const fd = openSync(temp, 'w');
  try {
    let done = 0;
    while (done < pos) done += writeSync(fd, out, done, pos - done, done);
    log.reclaimHooks.step?.('compact-written', seg, temp);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  log.reclaimHooks.step?.('compact-synced', seg, temp);
  seg.closeRead();
  renameSync(temp, seg.path); // the commit point
  log.reclaimHooks.step?.('compact-renamed', seg);
  fsyncDir(log.dir);
  for (const m of moves) m();
  seg.size = pos;
  // The settled enqueues of this segment are gone from disk: their settles elsewhere are dead now.
  log.index.releaseSettles(seg);
}
