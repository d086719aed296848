/**
 * The I/O thread's side of one shard: starts the worker (plain
 * worker_threads, design.md: piscina has no worker affinity and a task costs
 * 17-60 µs, so the shard loop is not a piscina task), owns the two rings,
 * drains the shard's outbound ring on the event loop (Atomics.waitAsync when
 * it is empty) and answers control requests by id.
 *
 * A worker that dies without being asked to stop fails the host: pending
 * requests reject with ERR_SHARD_FAILED and the broker reports it. The
 * shard's durable messages are safe in its log and come back on reopen.
 */
import { Worker } from 'node:worker_threads';
import { createRing } from '../ring/ring.js';
import { BrokerError, brokerErrorFrom } from '../errors.js';
import { Inbox, Outbox, type Handler } from './channel.js';
import { EV_CTRL_REPLY, OP_CTRL, readU32, writeU32 } from './ops.js';
import type { ShardInit } from './shard-types.js';

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** What the host needs of a publish's confirm (src/broker.ts Confirm). */
export interface ConfirmLike {
  answer(status: number): void;
  fail(e: BrokerError): void;
}

export interface ShardHostOptions extends Omit<ShardInit, 'toShard' | 'fromShard'> {
  /** Log recovery progress of this shard (bytes of segment files scanned, of all). */
  onRecoveryProgress?: ((shard: number, bytesDone: number, bytesTotal: number) => void) | undefined;
  ringBytes: number;
  ringMaxBody: number;
}

export class ShardHost {
  readonly index: number;
  readonly out: Outbox;
  readonly toShardSab: SharedArrayBuffer;
  readonly fromShardSab: SharedArrayBuffer;
  readonly inbox: Inbox;
  readonly worker: Worker;
  failure: BrokerError | null = null;
  recovery: unknown = null;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextReq = 1;
  private stopped = false;
  private exitedFlag = false;
  private readonly ready: Promise<void>;
  private readonly exited: Promise<void>;
  /** Set by the broker: handles every record but control replies. */
  onRecord: Handler = () => {};
  /** Called after each drained batch (the broker flushes its outboxes there). */
  onBatch: () => void = () => {};
  onFailure: (e: BrokerError) => void = () => {};
  scheduled = false;
  /**
   * The Confirm of every publish sent to this shard not yet settled, in
   * publish order (a deque: confirmQ[confirmHead] is publish number
   * confirmedThrough + 1). Fan-out publishes share one Confirm.
   */
  readonly confirmQ: (ConfirmLike | null)[] = [];
  private confirmHead = 0;
  private confirmedThrough = 0;

  constructor(opts: ShardHostOptions) {
    this.index = opts.index;
    const toShard = createRing(opts.ringBytes, { maxBody: opts.ringMaxBody });
    const fromShard = createRing(opts.ringBytes, { maxBody: opts.ringMaxBody });
    this.out = new Outbox(toShard);
    this.inbox = new Inbox(fromShard);
    this.toShardSab = toShard;
    this.fromShardSab = fromShard;
    const init: ShardInit = {
      index: opts.index, dir: opts.dir, fsync: opts.fsync, intervalMs: opts.intervalMs, segmentBytes: opts.segmentBytes,
      toShard, fromShard, queues: opts.queues, memoryBudget: opts.memoryBudget, spinUs: opts.spinUs,
    };
    if (opts.clock) init.clock = opts.clock;
    this.worker = new Worker(new URL('./shard-worker.js', import.meta.url), { workerData: init, name: `ringmq-shard-${opts.index}` });
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.on('message', (m: { type: string; recovery?: unknown; message?: string; done?: number; total?: number }) => {
        if (m.type === 'recovery-progress') {
          opts.onRecoveryProgress?.(opts.index, m.done!, m.total!);
        } else if (m.type === 'ready') {
          this.recovery = m.recovery;
          resolve();
        } else if (m.type === 'fatal') {
          const e = new BrokerError('ERR_SHARD_FAILED', `shard ${this.index} failed: ${m.message}`);
          reject(e);
          this.fail(e);
        }
      });
      this.worker.on('error', (err) => {
        const e = new BrokerError('ERR_SHARD_FAILED', `shard ${this.index} failed: ${err.message}`, { cause: err });
        reject(e);
        this.fail(e);
      });
    });
    this.exited = new Promise<void>((resolve) => {
      this.worker.on('exit', (code) => {
        if (!this.stopped) this.fail(new BrokerError('ERR_SHARD_FAILED', `shard ${this.index} exited (code ${code}) without being asked to`));
        // The read loop waits with no timeout: it ends with the worker, whatever the reason (a
        // failure, 'fatal' or 'error', is always followed by the worker's exit; so is abort()).
        this.exitedFlag = true;
        this.inbox.ring.interrupt();
        resolve();
      });
    });
  }

  /** Publish number `seq` was refused by its queue. */
  rejectPublish(seq: number): void {
    const i = this.confirmHead + (seq - this.confirmedThrough - 1);
    const c = this.confirmQ[i];
    if (c) {
      this.confirmQ[i] = null;
      c.answer(1);
    }
  }

  /** Every publish numbered <= through is settled: confirm the ones not rejected. */
  confirmThrough(through: number): void {
    const q = this.confirmQ;
    let head = this.confirmHead;
    for (let seq = this.confirmedThrough + 1; seq <= through; seq++) {
      const c = q[head];
      q[head++] = null;
      if (c) c.answer(0);
    }
    this.confirmedThrough = Math.max(this.confirmedThrough, through);
    if (head === q.length) {
      q.length = 0;
      head = 0;
    } else if (head > 4096 && head * 2 > q.length) {
      q.splice(0, head);
      head = 0;
    }
    this.confirmHead = head;
  }

  /** The shard is gone: every confirm it owed fails. */
  failConfirms(e: BrokerError): void {
    for (let i = this.confirmHead; i < this.confirmQ.length; i++) this.confirmQ[i]?.fail(e);
    this.confirmQ.length = 0;
    this.confirmHead = 0;
  }

  /** Resolves when the worker has recovered its log. */
  async start(): Promise<void> {
    await this.ready;
  }

  /** Starts draining the shard's outbound ring; call once the handlers are set. */
  startReading(): void {
    void this.readLoop();
  }

  /** Set by the broker when it publishes what the shard answers at once (Broker.pollReplies). */
  answerDue = false;
  /** Broker.pollReplies' marks: this host is being polled (until its answer comes); its poll has begun. */
  polled = false;
  pollBegun = false;
  private readonly handle: Handler = (type, b, o, len) => {
    if (type === EV_CTRL_REPLY) this.onReply(b, o, len);
    else this.onRecord(type, b, o, len);
  };

  private pollFlag = 0;
  /** Broker.pollReplies starts polling this host (RingConsumer.beginPoll). */
  beginPoll(): void {
    this.pollFlag = this.inbox.ring.beginPoll();
  }
  /** Ends beginPoll, draining what came without a notify. */
  endPoll(): void {
    if (this.inbox.ring.endPoll(this.pollFlag)) this.poll();
  }

  /** Whether the shard has written something not yet drained. */
  hasRecords(): boolean {
    return this.inbox.ring.available();
  }

  /** Drains what the shard has written, now, on the calling thread (the broker's I/O poll). */
  poll(): number {
    if (this.failure) return 0;
    const n = this.inbox.drain(this.handle);
    if (n > 0) this.onBatch();
    return n;
  }

  private async readLoop(): Promise<void> {
    const handle = this.handle;
    const inbox = this.inbox;
    // Runs until the shard's CLOSE record (after its clean close) or a failure.
    for (;;) {
      const n = inbox.drain(handle);
      if (n > 0) this.onBatch();
      if (inbox.ring.closed || this.failure || this.exitedFlag) return;
      if (n > 0) await new Promise<void>((r) => setImmediate(r));
      // No keep-alive timer per sleep: the (ref'd) Worker keeps the process alive while the shard runs.
      // No timeout either: V8 arms a waitAsync timeout by posting a delayed task to this thread's
      // event loop (a write to its wakeup eventfd, then a wake to read it), every sleep. A failure
      // ends the wait with ring.interrupt() at the worker's exit; a clean stop, with the shard's
      // CLOSE record.
      else await inbox.ring.wait(Infinity, false);
    }
  }

  private onReply(b: Uint8Array, o: number, len: number): void {
    const reqId = readU32(b, o);
    const ok = readU32(b, o + 4) === 1;
    const value = JSON.parse(fromUtf8.decode(b.subarray(o + 8, o + len))) as unknown;
    this.settleRequest(reqId, ok, value);
  }

  /** Resolves (or rejects) request reqId; for replies that arrive as other records (EV_GOT). */
  settleRequest(reqId: number, ok: boolean, value: unknown): void {
    const p = this.pending.get(reqId);
    if (p === undefined) return;
    this.pending.delete(reqId);
    if (ok) p.resolve(value);
    else p.reject(brokerErrorFrom(value as { code: string; message: string }));
  }

  /** Sends a control request; resolves with the shard's answer. */
  request<T = unknown>(req: { op: string; [k: string]: unknown }): Promise<T> {
    return this.send<T>(req).promise;
  }

  /** As request(), also giving the request id (answers that come as other records carry it). */
  send<T = unknown>(req: { op: string; [k: string]: unknown }): { id: number; promise: Promise<T> } {
    const reqId = this.nextReq++;
    return { id: reqId, promise: this.sendAs<T>(reqId, req) };
  }

  private sendAs<T>(reqId: number, req: { op: string; [k: string]: unknown }): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const json = utf8.encode(JSON.stringify(req));
    const rec = new Uint8Array(4 + json.length);
    writeU32(rec, 0, reqId);
    rec.set(json, 4);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(reqId, { resolve: resolve as (v: unknown) => void, reject });
      this.out.write(OP_CTRL, rec, 0, rec.length);
      this.out.publish();
    });
  }

  private fail(e: BrokerError): void {
    if (this.failure) return;
    this.failure = e;
    this.stopped = true;
    this.out.abandon();
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.onFailure(e);
  }

  /** Clean stop: the shard dispatches nothing more, closes its log (flush + fdatasync) and exits. */
  async close(): Promise<void> {
    if (this.failure) {
      await this.worker.terminate();
      return;
    }
    await this.out.drained();
    // Set first: the worker may exit before its reply is read here.
    this.stopped = true;
    await this.request({ op: 'close' });
    await this.exited;
  }

  /** Fault injection: the worker dies abruptly as if it crashed (reported as a failure, not as a stop). */
  async kill(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }

  /** As a kill: the worker is terminated at once; nothing is flushed beyond what its fsync policy already made durable. */
  async abort(): Promise<void> {
    this.stopped = true;
    this.failure ??= new BrokerError('ERR_CLOSED', `shard ${this.index} aborted`);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
    this.out.abandon();
    await this.worker.terminate();
  }
}
