/**
 * One segment file as the log tracks it in memory: where it is, how big it
 * is, and how many of its bytes are still live (needed to rebuild the state).
 * Reclamation reads `liveBytes`: 0 means the file can be deleted; a small
 * fraction of the file means it is worth compacting.
 */
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { segmentFileName } from './format.js';

/**
 * A settle record in a later segment whose message's enqueue record is still
 * in an earlier one. The settle must stay on disk exactly as long as the
 * enqueue does, else recovery would resurrect the message.
 */
export class PendingSettle {
  segment: Segment;
  offset: number;
  length: number;
  constructor(segment: Segment, offset: number, length: number) {
    this.segment = segment;
    this.offset = offset;
    this.length = length;
  }
}

/** Process-wide segment ids: the index stores a u32 id per message instead of a reference. */
let nextSegmentId = 0;

export class Segment {
  readonly id = nextSegmentId++;
  readonly baseSeq: number;
  readonly path: string;
  /** File size in bytes, header included (for the active segment: including bytes still in the write buffer). */
  size: number;
  /** Bytes of records that recovery still needs: live enqueues, latest delivery counts, pending settles, topology. */
  liveBytes = 0;
  records = 0;
  lastSeq: number;
  /** Sealed segments are complete and fdatasynced; only sealed segments are reclaimed. */
  sealed = false;
  /** Settles written in later segments for messages enqueued here (released when this file drops those enqueues). */
  settledElsewhere: PendingSettle[] = [];
  /** Lazily opened read-only descriptor for pread of message bodies; -1 when closed. */
  readFd = -1;

  constructor(dir: string, baseSeq: number, size: number) {
    this.baseSeq = baseSeq;
    this.path = join(dir, segmentFileName(baseSeq));
    this.size = size;
    this.lastSeq = baseSeq - 1;
  }

  openForRead(): number {
    if (this.readFd < 0) this.readFd = openSync(this.path, 'r');
    return this.readFd;
  }

  closeRead(): void {
    if (this.readFd >= 0) {
      closeSync(this.readFd);
      this.readFd = -1;
    }
  }
}
