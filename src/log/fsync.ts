/**
 * When appended records reach the kernel and the disk, and when waiters hear
 * about it. Policies (docs/log-format.md, "Confirms and fsync"):
 *
 * - `always`: group commit. A waiter for sequence s gets the promise of the
 *   first fdatasync that starts after s was written; every waiter of that
 *   round shares one promise, resolved only after the fdatasync returned. A
 *   round starts on the next turn of the event loop (setImmediate), so every
 *   appender that runs in the meantime joins it; while one fdatasync is in
 *   flight, new waiters gather for the next one.
 * - `interval`: waiters resolve once their records are written to the kernel
 *   (end of the current turn); an fdatasync runs every `intervalMs` if
 *   anything is unsynced. A crash may lose the last interval.
 * - `never`: like interval without the timer (the kernel writes back when it
 *   likes). `sync()` still forces an fdatasync under every policy.
 *
 * Invariants: writtenSeq <= lastSeq; durableSeq <= writtenSeq; at most one
 * fdatasync in flight; a round's promise never resolves before its records
 * are written (and, for sync rounds, fdatasynced).
 */
import { fdatasync } from 'node:fs';

/** Upper bounds (seconds) of the fdatasync latency histogram buckets (Prometheus `le`). */
export const FSYNC_BUCKETS_S: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
import { LogError } from './errors.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'interval', 'never'];

/** One promise shared by every waiter of a flush or sync round (one allocation per round, not per record). */
class Round {
  readonly promise: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;
  constructor() {
    this.promise = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // Waiters attach their own handlers; this one only keeps an unobserved failure from crashing the process.
    this.promise.catch(() => {});
  }
}

const RESOLVED = Promise.resolve();

/** What the durability scheduler needs from the log. */
export interface DurabilityHost {
  /** Writes the buffered records to the kernel (one write syscall); returns the last sequence written. */
  flush(): number;
  /** The descriptor of the segment the last written record went to. */
  activeFd(): number;
  /** Called when no fdatasync is in flight (the log closes retired descriptors then). */
  onIdle(): void;
}

export class Durability {
  readonly policy: FsyncPolicy;
  /** Last sequence handed to the kernel. */
  writtenSeq: number;
  /** Last sequence covered by a completed fdatasync (or by a sealed segment's sync). */
  durableSeq: number;
  syncs = 0;
  /** fdatasync latency histogram: counts per FSYNC_BUCKETS_S upper bound (last: +Inf), and the sum in seconds. */
  readonly syncBuckets = new Float64Array(FSYNC_BUCKETS_S.length + 1);
  syncSeconds = 0;
  private syncStarted = 0;
  failure: LogError | null = null;
  private readonly host: DurabilityHost;
  private writeRound: Round | null = null;
  private nextSyncRound: Round | null = null;
  private syncRound: Round | null = null;
  private syncCover = 0;
  private syncing = false;
  private scheduled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(policy: FsyncPolicy, intervalMs: number, host: DurabilityHost, lastSeq: number) {
    this.policy = policy;
    this.host = host;
    this.writtenSeq = lastSeq;
    this.durableSeq = lastSeq;
    if (policy === 'interval') {
      this.timer = setInterval(() => {
        if (this.pendingSeq > this.durableSeq && this.nextSyncRound === null) {
          this.nextSyncRound = new Round();
          this.schedule();
        }
      }, intervalMs);
      this.timer.unref();
    }
  }

  /** Highest appended sequence; kept by the log. */
  pendingSeq = 0;

  /** Called by every append: make sure the buffer gets written this turn even if nobody waits. */
  schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.tick);
    }
  }

  /** Resolves when `seq` is as durable as the policy promises (see the file comment). Allocates nothing per call. */
  waitFor(seq: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.policy === 'always') {
      if (seq <= this.durableSeq) return RESOLVED;
      if (this.syncing && seq <= this.syncCover) return this.syncRound!.promise;
      if (this.nextSyncRound === null) this.nextSyncRound = new Round();
      this.schedule();
      return this.nextSyncRound.promise;
    }
    if (seq <= this.writtenSeq) return RESOLVED;
    if (this.writeRound === null) this.writeRound = new Round();
    this.schedule();
    return this.writeRound.promise;
  }

  /** An fdatasync covering everything appended so far, under any policy. */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pendingSeq <= this.durableSeq) return RESOLVED;
    if (this.syncing && this.pendingSeq <= this.syncCover) return this.syncRound!.promise;
    if (this.nextSyncRound === null) this.nextSyncRound = new Round();
    this.schedule();
    return this.nextSyncRound.promise;
  }

  /**
   * Starts an fdatasync now, without waiters, if none is in flight: the log
   * calls this every few MiB written under `interval`/`never`, so the kernel
   * writes back while the thread keeps appending, and sealing a segment (a
   * synchronous fdatasync) finds little left to write. The caller has just
   * flushed, so writtenSeq is current.
   */
  backgroundSync(): void {
    if (this.syncing || this.failure) return;
    if (this.nextSyncRound === null) this.nextSyncRound = new Round();
    this.startSync();
  }

  /**
   * Runs the scheduled turn now instead of on the event loop's next check
   * phase: writes the buffer and, if a sync round waits and none is in
   * flight, starts its fdatasync, so that it runs while the caller does other
   * work. The scheduled turn then finds nothing to do.
   */
  syncNow(): void {
    if (this.scheduled && !this.failure) this.tick();
  }

  /** A segment was sealed with a synchronous fdatasync: everything up to seq is durable. */
  markDurable(seq: number): void {
    if (seq > this.durableSeq) this.durableSeq = seq;
    if (seq > this.writtenSeq) this.writtenSeq = seq;
  }

  get idle(): boolean {
    return !this.syncing;
  }

  /** Nothing pending on the event loop: no fdatasync in flight, no write or sync turn scheduled. */
  get quiet(): boolean {
    return !this.syncing && !this.scheduled && this.nextSyncRound === null;
  }

  private readonly tick = (): void => {
    this.scheduled = false;
    if (this.failure) return;
    try {
      this.writtenSeq = this.host.flush();
    } catch (err) {
      this.fail(err);
      return;
    }
    const w = this.writeRound;
    if (w !== null) {
      this.writeRound = null;
      w.resolve();
    }
    if (this.nextSyncRound !== null && !this.syncing) this.startSync();
  };

  private startSync(): void {
    this.syncRound = this.nextSyncRound;
    this.nextSyncRound = null;
    this.syncCover = this.writtenSeq;
    this.syncing = true;
    this.syncStarted = performance.now();
    fdatasync(this.host.activeFd(), this.synced);
  }

  private readonly synced = (err: NodeJS.ErrnoException | null): void => {
    this.syncing = false;
    this.syncs++;
    const s = (performance.now() - this.syncStarted) / 1000;
    this.syncSeconds += s;
    let b = 0;
    while (b < FSYNC_BUCKETS_S.length && s > FSYNC_BUCKETS_S[b]!) b++;
    this.syncBuckets[b]!++;
    const round = this.syncRound!;
    this.syncRound = null;
    if (err) {
      round.reject(this.fail(err));
      return;
    }
    if (this.syncCover > this.durableSeq) this.durableSeq = this.syncCover;
    this.host.onIdle();
    round.resolve();
    // Waiters resolved just now run before the next tick and may append: they join the next round (group commit).
    if (this.nextSyncRound !== null) this.schedule();
  };

  /** A write or fsync failed: the on-disk tail is unknown, so the log refuses everything until reopened (recovery decides). */
  fail(err: unknown): LogError {
    if (this.failure === null) {
      this.failure = err instanceof LogError ? err : new LogError('ERR_LOG_FAILED', `log write or sync failed: ${(err as Error).message}`, { cause: err });
    }
    for (const r of [this.writeRound, this.nextSyncRound, this.syncRound]) r?.reject(this.failure);
    this.writeRound = this.nextSyncRound = null;
    return this.failure;
  }

  /** Stops the timer and resolves every waiter (the caller has flushed and synced). */
  close(seq: number): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.markDurable(seq);
    for (const r of [this.writeRound, this.nextSyncRound]) r?.resolve();
    this.writeRound = this.nextSyncRound = null;
  }
}
