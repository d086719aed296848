/**
 * The embedded target: a child process (embedded-child.ts, compiled) hosts
 * the `Broker` on the run's data directory; the driver talks to it over IPC.
 * Faults: SIGKILL of the whole process at any moment, then a new process on
 * the same directory; torn tails (while it is down, the newest segment of a
 * shard's log is cut at a random byte past its durable point); clean
 * close/reopen. Consumer and connection loss are commands (cancel, release).
 *
 * Torn tails are cut only past the durable point so that the fault is one a
 * real crash could cause: under fsync=always a power loss can lose what was
 * written after the last fdatasync, never before it. durablePoints() reads
 * each shard's fdatasync'd sequence right before the kill; every confirm the
 * driver saw before asking is covered by it (the shard answers the stats
 * request after sending those confirms, and its durable sequence only grows).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readSync, closeSync, rmSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LENGTH_OFFSET, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, SEGMENT_NAME_RE, SEQ_OFFSET, readU32, readU64 } from '../log/format.js';
import type { Command, StatsReply, Target, TargetCaps, TargetEvent, TargetOptions, TornReport } from './target.js';

const CHILD = fileURLToPath(new URL('./embedded-child.js', import.meta.url));

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class TargetError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

export class EmbeddedTarget implements Target {
  readonly name = 'embedded';
  readonly caps: TargetCaps = { kill: true, torn: true, restart: true, counters: true, deliveryCount: true, quiesce: true, orderedAcrossConsumers: true };
  onEvent: (ev: TargetEvent) => void = () => {};
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stderr = '';
  private exited: Promise<void> = Promise.resolve();

  constructor(private readonly opts: TargetOptions) {}

  private spawn(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.RINGMQ_PLANT_BUG;
    if (this.opts.plantedBug) env.RINGMQ_PLANT_BUG = this.opts.plantedBug;
    const child = fork(CHILD, [], { env, execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    this.child = child;
    this.stderr = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => { if (this.stderr.length < 8000) this.stderr += d; });
    let ready: () => void;
    const readyP = new Promise<void>((r) => { ready = r; });
    this.exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        const mine = this.child === child;
        if (mine) {
          this.child = null;
          this.failPending(new TargetError('ERR_TARGET_EXIT', `broker process exited (code ${code}, signal ${signal})`));
          this.onEvent({ k: 'exit', code, signal, stderr: this.stderr });
        }
        ready();
        resolve();
      });
    });
    child.on('error', () => { /* reported by 'exit' */ });
    child.on('message', (msg: { ready?: boolean; id?: number; ok?: boolean; value?: unknown; error?: { code: string; message: string }; ev?: TargetEvent }) => {
      if (this.child !== child) return; // a killed incarnation: nothing it says counts any more
      if (msg.ready) return ready();
      if (msg.ev !== undefined) return this.onEvent(msg.ev);
      const p = this.pending.get(msg.id!);
      if (p === undefined) return;
      this.pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new TargetError(msg.error!.code, msg.error!.message));
    });
    return readyP;
  }

  private failPending(e: Error): void {
    const ps = [...this.pending.values()];
    this.pending.clear();
    for (const p of ps) p.reject(e);
  }

  private raw<T>(cmd: object): Promise<T> {
    const child = this.child;
    if (child === null) return Promise.reject(new TargetError('ERR_TARGET_DOWN', 'broker process is not running'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        child.send({ id, cmd });
      } catch (e) {
        this.pending.delete(id);
        reject(e as Error);
      }
    });
  }

  async start(): Promise<unknown> {
    mkdirSync(this.opts.dir, { recursive: true });
    return this.open();
  }

  private async open(): Promise<unknown> {
    await this.spawn();
    const { dir, shards, fsync, ringBytes, segmentBytes } = this.opts;
    return this.raw({ op: 'open', dir, shards, fsync, ringBytes, segmentBytes });
  }

  call<T = unknown>(cmd: Command): Promise<T> {
    return this.raw<T>(cmd);
  }

  send(cmd: Command): void {
    this.raw(cmd).catch((e: unknown) => {
      const err = e as { code?: string; message?: string };
      if (err.code === 'ERR_TARGET_EXIT' || err.code === 'ERR_TARGET_DOWN') return;
      this.onEvent({ k: 'error', code: err.code ?? 'ERR', message: err.message ?? String(e), op: cmd.op });
    });
  }

  async durablePoints(): Promise<number[] | null> {
    const s = await this.raw<StatsReply>({ op: 'stats' });
    return s.durableSeq ?? null;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null; // from now on nothing of this incarnation is reported
    this.failPending(new TargetError('ERR_TARGET_DOWN', 'broker process killed'));
    child.kill('SIGKILL');
    await this.exited;
  }

  async tear(durable: number[], random: () => number): Promise<TornReport[]> {
    return tearNewest(this.opts.dir, durable, random);
  }

  async restart(): Promise<unknown> {
    if (this.child !== null) throw new TargetError('ERR_TARGET_UP', 'broker process still running');
    return this.open();
  }

  async close(): Promise<void> {
    if (this.child === null) return;
    await this.raw({ op: 'close' });
    await this.exited;
  }

  diagnostics(): string {
    return this.stderr.trim().slice(-1500);
  }

  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.opts.dir, { recursive: true, force: true });
  }
}

/**
 * Cuts the newest segment of each shard's log under `dataDir` at a random
 * byte past the durable point (the first record above `durable[shard]`):
 * what a crash may lose, never what an fdatasync covered.
 */
export function tearNewest(dataDir: string, durable: number[], random: () => number): TornReport[] {
  const out: TornReport[] = [];
  for (let shard = 0; shard < durable.length; shard++) {
    const dir = join(dataDir, `shard-${shard}`);
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => SEGMENT_NAME_RE.test(n)).sort();
    } catch {
      continue;
    }
    const newest = names[names.length - 1];
    if (newest === undefined) continue;
    const file = join(dir, newest);
    const from = firstRecordPast(file, durable[shard]!);
    const size = statSync(file).size;
    if (from >= size) continue; // nothing past the durable point: nothing a crash could tear
    const cutAt = from + Math.floor(random() * (size - from));
    truncateSync(file, cutAt);
    out.push({ shard, file: `shard-${shard}/${newest}`, durableSeq: durable[shard]!, cutAt, size });
  }
  return out;
}

/** Byte offset of the first record with a sequence above `durableSeq` in a segment (or of its valid end). */
export function firstRecordPast(file: string, durableSeq: number): number {
  const fd = openSync(file, 'r');
  try {
    const size = statSync(file).size;
    const head = Buffer.alloc(RECORD_HEADER_SIZE);
    let off = SEGMENT_HEADER_SIZE;
    while (off + RECORD_HEADER_SIZE <= size) {
      if (readSync(fd, head, 0, RECORD_HEADER_SIZE, off) < RECORD_HEADER_SIZE) break;
      const len = readU32(head, LENGTH_OFFSET);
      const seq = readU64(head, SEQ_OFFSET);
      const end = off + RECORD_HEADER_SIZE + len;
      if (end > size || seq > durableSeq) break;
      off = end;
    }
    return Math.min(off, size);
  } finally {
    closeSync(fd);
  }
}
