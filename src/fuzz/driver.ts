/**
 * Runs one workload (workload.ts) against a target (target.ts) and records
 * the history (history.ts). The driver is the only writer of the history
 * and it lives outside the broker process, so a SIGKILL loses nothing it
 * recorded; it records each action before sending it.
 *
 * Consumers react to deliveries as they arrive (ack, nack, reject, hold,
 * forget), drawing from their own seeded stream. A quiet point pauses those
 * reactions, waits for outstanding confirms, lets the broker apply
 * everything (quiesce) and takes the counters (G6). A kill step arms a timer
 * and the following steps keep running until it fires: the broker dies in
 * the middle of whatever is in flight. At the end every consumer is
 * cancelled, every owner released, every queue drained with get+ack, the
 * counters taken once more, and the broker closed cleanly.
 */
import { bodyCrc, makeBody, Recorder, type QueueSpec } from './history.js';
import { Rng } from './prng.js';
import type { StatsReply, Target, TargetEvent } from './target.js';
import type { Behavior, Step, Workload } from './workload.js';

export interface DriverCounters {
  /** Shared progress counters (Int32Array over a SharedArrayBuffer): ops, crashes, recoveries. */
  progress?: Int32Array;
}

export const P_OPS = 0, P_CRASHES = 1, P_RECOVERIES = 2, P_VIOLATIONS = 3, P_RUNS = 4, P_FIELDS = 8;

interface LiveConsumer {
  q: string;
  owner: number;
  behavior: Behavior;
  rng: Rng;
  /** Subscription: its private queue. */
  subQueue?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const DRAIN_OWNER = 99;

export class Driver {
  readonly rec = new Recorder();
  ops = 0;
  crashes = 0;
  recoveries = 0;
  /** Why the run stopped early (the broker died by itself, a stall); null if it completed. */
  failure: string | null = null;
  private down = false;
  private paused = false;
  private deferred: (() => void)[] = [];
  private readonly consumers = new Map<string, LiveConsumer>();
  /** Unsettled deliveries of this epoch: tag -> consumer ('get:<owner>' for gets). */
  private readonly held = new Map<number, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private inflight = 0;
  private crashDone: Promise<void> | null = null;
  private readonly faultRng: Rng;
  /** Queues that exist in the broker now (name -> spec). */
  private readonly queues = new Map<string, QueueSpec>();
  /** Queues the workload declared and did not delete: non-durable ones are declared again after a restart. */
  private readonly declared = new Map<string, QueueSpec>();
  private lastGetTag = 0;
  /**
   * A topology step or purge that a crash interrupted (it may or may not have
   * happened): issued again after the restart, so the broker's topology is
   * known again before anything is published (all of them are idempotent, and
   * a purge repeated only removes what the checker already counts as purgeable).
   */
  private interrupted: Step | null = null;

  constructor(private readonly target: Target, private readonly wl: Workload, private readonly replay: string, private readonly counters: DriverCounters = {}, private readonly plantedBug?: string) {
    this.faultRng = new Rng(wl.seed ^ 0x5bd1e995);
    target.onEvent = (ev) => this.onEvent(ev);
  }

  private bump(field: number, n = 1): void {
    if (this.counters.progress) Atomics.add(this.counters.progress, field, n);
  }

  // ---- observations --------------------------------------------------------------

  private onEvent(ev: TargetEvent): void {
    if (ev.k === 'exit') {
      if (!this.down && this.failure === null) {
        this.failure = `broker process died by itself (code ${ev.code}, signal ${ev.signal})${ev.stderr ? `: ${ev.stderr.trim().slice(-600)}` : ''}`;
        this.rec.add({ k: 'error', code: 'ERR_TARGET_EXIT', message: this.failure });
      }
      return;
    }
    if (this.down || this.rec.frozen) return;
    switch (ev.k) {
      case 'deliver': {
        this.rec.add(ev);
        if (ev.auto) return;
        if (ev.c.startsWith('get:')) {
          this.held.set(ev.tag, ev.c);
          this.lastGetTag = ev.tag;
          return;
        }
        const c = this.consumers.get(ev.c);
        if (c === undefined) return; // cancelled meanwhile: the cancel returned it
        this.held.set(ev.tag, ev.c);
        const tag = ev.tag;
        if (this.paused) this.deferred.push(() => this.decide(tag, c));
        else this.decide(tag, c);
        return;
      }
      case 'confirm':
        this.inflight--;
        this.rec.add(ev);
        return;
      case 'timeout':
        this.rec.add(ev);
        this.dropConsumer(ev.c);
        return;
      default:
        this.rec.add(ev);
    }
  }

  private decide(tag: number, c: LiveConsumer): void {
    if (this.down || !this.held.has(tag)) return;
    const b = c.behavior;
    const what = c.rng.weighted({ ack: b.ack, nackRequeue: b.nackRequeue, nackDrop: b.nackDrop, reject: b.reject, rejectRequeue: b.rejectRequeue, hold: b.hold, forget: b.forget });
    switch (what) {
      case 'ack': return this.settle(tag, 'ack', false);
      case 'nackRequeue': return this.settle(tag, 'nack', true);
      case 'nackDrop': return this.settle(tag, 'nack', false);
      case 'reject': return this.settle(tag, 'reject', false);
      case 'rejectRequeue': return this.settle(tag, 'reject', true);
      case 'hold': {
        const ms = c.rng.int(b.holdMs[0], b.holdMs[1]);
        const t = setTimeout(() => {
          this.timers.delete(t);
          if (this.paused) this.deferred.push(() => this.settle(tag, 'ack', false));
          else this.settle(tag, 'ack', false);
        }, ms);
        this.timers.add(t);
        return;
      }
      case 'forget': return;
    }
  }

  private settle(tag: number, kind: 'ack' | 'nack' | 'reject', requeue: boolean): void {
    if (this.down || !this.held.has(tag)) return;
    this.held.delete(tag);
    this.rec.add({ k: 'settle', tag, kind, requeue });
    this.target.send({ op: 'settle', tag, kind, requeue });
  }

  /** Forgets a consumer's unsettled deliveries (the broker returned them). */
  private dropConsumer(c: string): void {
    this.consumers.delete(c);
    for (const [tag, holder] of this.held) if (holder === c) this.held.delete(tag);
  }

  // ---- the run ---------------------------------------------------------------------

  async run(): Promise<void> {
    const w = this.wl;
    this.rec.add({
      k: 'run', seed: w.seed, target: this.target.name, fsync: w.fsync, shards: w.shards, ringBytes: w.ringBytes, segmentBytes: w.segmentBytes,
      faults: w.faults, replay: this.replay, ...(this.plantedBug ? { plantedBug: this.plantedBug } : {}),
      deliveryCounts: this.target.caps.deliveryCount, orderedDeliveries: this.target.caps.orderedAcrossConsumers,
    });
    const recovery = await this.target.start();
    this.rec.add({ k: 'restart', recovery: summarizeRecovery(recovery) });
    await this.baseline();
    let i = 0;
    for (const step of w.steps) {
      if (this.failure !== null) break;
      if (this.down && this.crashDone) await this.crashDone;
      if (this.failure !== null) break;
      const topo = step.op === 'bind' || step.op === 'unbind' || step.op === 'purge' || step.op === 'delete';
      if (topo) this.interrupted = step;
      try {
        await this.exec(step);
        if (topo && !this.down) this.interrupted = null;
      } catch (e) {
        this.commandFailed(step.op, e);
        if (topo && !this.down) this.interrupted = null;
      }
      this.ops++;
      this.bump(P_OPS);
      if ((++i & 7) === 0) await new Promise<void>((r) => setImmediate(r));
      for (let spins = 0; this.inflight > 400 && !this.down && spins < 2000; spins++) await sleep(1);
    }
    if (this.crashDone) await this.crashDone;
    if (this.failure === null) await this.finish();
  }

  private commandFailed(op: string, e: unknown): void {
    if (this.down) return; // the broker is being killed: calls in flight fail, as expected
    const err = e as { code?: string; message?: string };
    if (err.code === 'ERR_TARGET_EXIT' || err.code === 'ERR_TARGET_DOWN') return;
    this.rec.add({ k: 'error', code: err.code ?? 'ERR', message: err.message ?? String(e), op });
  }

  private async exec(s: Step): Promise<void> {
    const t = this.target;
    switch (s.op) {
      case 'declareQueue': {
        await t.call({ op: 'declareQueue', spec: s.spec });
        this.queues.set(s.spec.name, s.spec);
        this.declared.set(s.spec.name, s.spec);
        this.rec.add({ k: 'queue', q: s.spec.name, spec: s.spec });
        if (s.spec.name === this.wl.rpcQueue) await this.startReplier();
        return;
      }
      case 'declareExchange':
        await t.call({ op: 'declareExchange', x: s.x, type: s.type });
        this.rec.add({ k: 'exchange', x: s.x, type: s.type, durable: true });
        return;
      case 'bind':
      case 'unbind': {
        if (!this.queues.has(s.q)) return;
        await t.call(s);
        this.rec.add({ k: s.op, q: s.q, x: s.x, key: s.key, ...(s.args ? { args: s.args } : {}) });
        return;
      }
      case 'publish': {
        const crc = bodyCrc(makeBody(s.m, s.len));
        const { op: _op, ...pub } = s;
        this.rec.add({ k: 'publish', ...pub, crc });
        if (s.confirm) this.inflight++;
        t.send(s);
        return;
      }
      case 'consume': {
        if (!this.queues.has(s.q)) return;
        this.consumers.set(s.c, { q: s.q, owner: s.owner, behavior: s.behavior, rng: new Rng(s.behavior.seed) });
        this.rec.add({ k: 'consume', c: s.c, q: s.q, prefetch: s.prefetch, noAck: s.noAck, owner: s.owner });
        try {
          await t.call({ op: 'consume', c: s.c, q: s.q, prefetch: s.prefetch, noAck: s.noAck, owner: s.owner });
        } catch (e) {
          if (!this.down && this.consumers.has(s.c)) {
            this.rec.add({ k: 'cancel', c: s.c });
            this.dropConsumer(s.c);
          }
          throw e;
        }
        return;
      }
      case 'cancel': {
        const c = this.consumers.get(s.c);
        if (c === undefined) return;
        this.rec.add({ k: 'cancel', c: s.c });
        this.dropConsumer(s.c);
        await t.call({ op: 'cancel', c: s.c });
        if (c.subQueue !== undefined) this.rec.add({ k: 'delete', q: c.subQueue, count: -1 });
        return;
      }
      case 'subscribe': {
        const q = await t.call<string>({ op: 'subscribe', c: s.c, x: s.x, key: s.key });
        if (this.down) return;
        this.consumers.set(s.c, { q, owner: 0, behavior: NO_BEHAVIOR, rng: new Rng(0), subQueue: q });
        this.rec.add({ k: 'subscribe', c: s.c, q, x: s.x, key: s.key });
        return;
      }
      case 'get': {
        if (!this.queues.has(s.q)) return;
        const before = this.lastGetTag;
        this.rec.add({ k: 'get', q: s.q, owner: s.owner, ...(s.noAck ? { noAck: true } : {}) });
        const tag = await t.call<number | null>({ op: 'get', q: s.q, noAck: s.noAck, owner: s.owner });
        if (tag === null && !this.down) this.rec.add({ k: 'get-empty', q: s.q, owner: s.owner });
        if (tag === null || s.noAck || this.down || this.lastGetTag === before) return;
        if (s.then === 'ack') this.settle(tag, 'ack', false);
        else if (s.then === 'requeue') this.settle(tag, 'nack', true);
        else if (s.then === 'reject') this.settle(tag, 'reject', false);
        return;
      }
      case 'disconnect':
        return this.disconnect(s.owner);
      case 'purge': {
        if (!this.queues.has(s.q)) return;
        const count = await t.call<number>({ op: 'purge', q: s.q });
        if (!this.down) this.rec.add({ k: 'purge', q: s.q, count });
        return;
      }
      case 'delete': {
        if (!this.queues.has(s.q)) return;
        for (const [id, c] of this.consumers) if (c.q === s.q) this.dropConsumer(id);
        const count = await t.call<number>({ op: 'deleteQueue', q: s.q });
        // Answered while a crash was under way: it is issued again after the
        // restart (this.interrupted), which records it. Forgetting the queue
        // here made that repeat a no-op: the delete was never recorded and
        // the checker kept expecting the queue's messages (seed 1426560093).
        if (this.down) return;
        this.queues.delete(s.q);
        this.declared.delete(s.q);
        this.rec.add({ k: 'delete', q: s.q, count });
        return;
      }
      case 'rpc':
        this.rec.add({ k: 'rpc-request', r: s.r, q: this.wl.rpcQueue, timeout: s.timeout });
        t.send({ op: 'request', r: s.r, q: this.wl.rpcQueue, timeout: s.timeout });
        return;
      case 'sleep':
        await sleep(s.ms);
        return;
      case 'quiet':
        await this.quiet('quiet');
        return;
      case 'kill': {
        if (this.crashDone) await this.crashDone;
        const torn = s.torn;
        this.crashDone = sleep(s.afterMs).then(() => this.crash(torn)).finally(() => { this.crashDone = null; });
        return;
      }
      case 'restart': {
        if (this.crashDone) await this.crashDone;
        await this.cleanRestart();
        return;
      }
    }
  }

  private async disconnect(owner: number): Promise<void> {
    this.rec.add({ k: 'disconnect', owner });
    for (const [id, c] of this.consumers) if (c.owner === owner && c.subQueue === undefined) this.dropConsumer(id);
    for (const [tag, holder] of this.held) if (holder === `get:${owner}`) this.held.delete(tag);
    await this.target.call({ op: 'release', owner });
  }

  private async startReplier(): Promise<void> {
    await this.target.call({ op: 'replier', q: this.wl.rpcQueue });
  }

  private async waitConfirms(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.inflight > 0 && !this.down && Date.now() < until) await sleep(2);
  }

  private async quiet(phase: 'quiet' | 'final'): Promise<void> {
    this.paused = true;
    try {
      await this.waitConfirms(3000);
      if (this.down) return;
      if (this.target.caps.quiesce) await this.target.call({ op: 'quiesce' });
      else await sleep(100);
      const mark = this.rec.events.length;
      const s = await this.target.call<StatsReply>({ op: 'stats' });
      if (this.down) return;
      this.rec.add({ k: 'stats', phase, clean: this.rec.events.length === mark, queues: s.queues });
    } finally {
      this.paused = false;
      const d = this.deferred;
      this.deferred = [];
      for (const f of d) f();
    }
  }

  private async baseline(): Promise<void> {
    const s = await this.target.call<StatsReply>({ op: 'stats' });
    this.rec.add({ k: 'stats', phase: 'baseline', clean: true, queues: s.queues });
  }

  private goDown(): void {
    this.down = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.held.clear();
    this.consumers.clear();
    this.deferred = [];
    this.paused = false;
    this.inflight = 0;
  }

  private async crash(torn: boolean): Promise<void> {
    if (this.down || this.failure !== null) return;
    if (torn) this.writeBurst();
    this.goDown();
    this.rec.add({ k: 'kill' });
    this.crashes++;
    this.bump(P_CRASHES);
    if (torn) {
      this.rec.frozen = true;
      let durable: number[] | null = null;
      try {
        durable = await this.target.durablePoints();
      } catch { /* died meanwhile: no tear */ }
      await this.target.kill();
      if (durable !== null) {
        for (const r of await this.target.tear(durable, () => this.faultRng.next())) this.rec.add({ k: 'torn', ...r });
      }
    } else {
      await this.target.kill();
    }
    await this.reopen();
  }

  /**
   * Before a torn-tail kill: a burst of persistent publishes (no confirms) so
   * that the log has records past its durable point when the kill comes — an
   * idle broker has synced everything and there would be nothing to tear.
   */
  private writeBurst(): void {
    const durable = [...this.queues.values()].filter((q) => q.durable && q.name !== this.wl.rpcQueue);
    if (durable.length === 0) return;
    const q = durable[this.faultRng.int(0, durable.length - 1)]!.name;
    for (let k = 0; k < 32; k++) {
      const m = ++this.burstId;
      const len = this.faultRng.int(16, 400);
      this.rec.add({ k: 'publish', m, p: BURST_PUBLISHER, x: '', key: q, persistent: true, mandatory: false, confirm: false, len, crc: bodyCrc(makeBody(m, len)) });
      this.target.send({ op: 'publish', m, x: '', key: q, persistent: true, mandatory: false, confirm: false, len });
    }
  }
  private burstId = BURST_BASE;

  private async cleanRestart(): Promise<void> {
    if (this.down || this.failure !== null) return;
    await this.waitConfirms(2000);
    if (this.wl.avoid.includes('dl-close') && this.target.caps.quiesce) {
      // Let dead letters in flight be confirmed and their origins settled first (known bug dl-close:
      // they would be duplicated): apply everything, make it durable (confirms go out), apply the settles.
      try {
        await this.target.call({ op: 'quiesce' });
        await this.target.call({ op: 'sync' });
        await this.target.call({ op: 'quiesce' });
      } catch { /* killed meanwhile */ }
      if (this.down) return;
    }
    this.goDown();
    this.rec.add({ k: 'close' });
    this.crashes++;
    this.bump(P_CRASHES);
    try {
      await this.target.close();
    } catch (e) {
      this.failure = `clean close failed: ${(e as Error).message}`;
      this.rec.add({ k: 'error', code: 'ERR_CLOSE', message: this.failure });
      return;
    }
    await this.reopen();
  }

  private async reopen(): Promise<void> {
    this.rec.epoch++;
    let recovery: unknown;
    try {
      recovery = await this.target.restart();
    } catch (e) {
      const diag = this.target.diagnostics?.() ?? '';
      this.failure = `restart failed: ${(e as Error).message}${diag ? `\n  broker stderr: ${diag}` : ''}`;
      this.rec.frozen = false;
      this.rec.add({ k: 'error', code: 'ERR_RESTART', message: this.failure });
      return;
    }
    this.rec.frozen = false;
    this.rec.add({ k: 'restart', recovery: summarizeRecovery(recovery) });
    this.recoveries++;
    this.bump(P_RECOVERIES);
    // Non-durable queues did not survive; declare them again (empty, unbound), as an application would.
    for (const [name, spec] of [...this.queues]) if (!spec.durable) this.queues.delete(name);
    this.down = false;
    try {
      await this.baseline();
      for (const spec of [...this.declared.values()]) if (!spec.durable) await this.exec({ op: 'declareQueue', spec });
      const again = this.interrupted;
      this.interrupted = null;
      if (again !== null) await this.exec(again);
    } catch (e) {
      this.commandFailed('restart', e);
    }
  }

  /** Cancels everything, drains every queue with get+ack, takes the final counters, closes cleanly. */
  private async finish(): Promise<void> {
    try {
      await this.waitConfirms(5000);
      for (const [id, c] of [...this.consumers]) {
        this.rec.add({ k: 'cancel', c: id });
        this.dropConsumer(id);
        await this.target.call({ op: 'cancel', c: id });
        if (c.subQueue !== undefined) this.rec.add({ k: 'delete', q: c.subQueue, count: -1 });
      }
      for (let owner = 1; owner <= 8; owner++) await this.disconnect(owner);
      await this.quiet('quiet');
      const names = [...this.queues.keys()].filter((q) => q !== this.wl.rpcQueue);
      // Work queues first, the dead-letter queue last (draining may dead-letter more: expiry).
      names.sort((a, b) => (a === 'fz.dlq' ? 1 : 0) - (b === 'fz.dlq' ? 1 : 0));
      for (let round = 0, empty = 0; round < 6 && empty < 2; round++) {
        let got = 0;
        for (const q of names) {
          for (let n = 0; n < 100_000; n++) {
            const before = this.lastGetTag;
            this.rec.add({ k: 'get', q, owner: DRAIN_OWNER });
            const tag = await this.target.call<number | null>({ op: 'get', q, noAck: false, owner: DRAIN_OWNER });
            if (tag === null) this.rec.add({ k: 'get-empty', q, owner: DRAIN_OWNER });
            if (tag === null || this.lastGetTag === before) break;
            got++;
            this.settle(tag, 'ack', false);
          }
        }
        if (this.target.caps.quiesce) await this.target.call({ op: 'quiesce' });
        else await sleep(200);
        empty = got === 0 ? empty + 1 : 0;
      }
      await this.quiet('final');
      this.rec.add({ k: 'drained' });
      this.goDown();
      await this.target.close();
      this.rec.add({ k: 'close' });
    } catch (e) {
      if (this.failure === null) {
        this.failure = `final drain failed: ${(e as Error).message}`;
        this.rec.add({ k: 'error', code: 'ERR_FINISH', message: this.failure });
      }
    }
  }
}

/** Messages of the pre-kill bursts: numbered apart from the workload's, from their own publisher. */
const BURST_BASE = 10_000_000;
const BURST_PUBLISHER = 99;

const NO_BEHAVIOR: Behavior = { ack: 1, nackRequeue: 0, nackDrop: 0, reject: 0, rejectRequeue: 0, hold: 0, forget: 0, holdMs: [0, 0], seed: 0 };

function summarizeRecovery(r: unknown): unknown {
  if (!Array.isArray(r)) return r ?? null;
  return r.map((s: Record<string, unknown>) => ({ messages: s.messages, truncatedBytes: s.truncatedBytes ?? s.truncated, dropped: s.dropped }));
}
