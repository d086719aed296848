/**
 * Checks a recorded history (history.ts) against the delivery guarantees of
 * guarantees.md: G1 confirmed is durable, G2 at-least-once, G3 once without
 * failure, G4 order, G6 conservation, G7 dead letters say why, G8 fan-out,
 * G9 request-response, G10 backpressure, not loss. (G5 is folded into G3: a
 * delivery after a certain ack is a duplicate; G11 is the AMQP conformance
 * suite's.)
 *
 * The unit is a *copy*: message m in queue q. A publish creates one copy per
 * queue its routing reaches (the checker routes with its own model,
 * model-router.ts); a dead-lettering creates a copy in the dead-letter queue
 * (keyed by its origin queue). The checker walks the history once, keeping
 * per copy: status (ready, unacked by a holder, acked, dead, gone), the last
 * delivery count it saw, whether a further delivery is allowed (a failure
 * happened: nack with requeue, cancel, ack timeout, disconnect, kill, close)
 * and whether one is required (G2), and why it may legitimately be missing
 * (purged, deleted, transient across a restart, unconfirmed at a crash,
 * expired or dropped by overflow where no dead-letter exchange shows it,
 * refused by reject-publish). At the final accounting point (`drained`) every
 * copy must be acked, dead-lettered (and arrived, where a DLX exists), or
 * excused; anything else is a loss, attributed to the guarantee that promised
 * it: G2 if it had been returned by a failure, G1 if a crash intervened and
 * it was a confirmed persistent message in a durable queue, G10 if it was
 * confirmed under backpressure, G8 if it was one copy of a fan-out, else G3.
 *
 * Uncertainty is explicit: an action sent just before a kill may or may not
 * have happened, so settles of the killed epoch may be undone (then G2
 * applies to the copy that comes back); torn tails relax the "count raised"
 * part of G2 (delivery counts are written without fsync by design); a
 * consumer cancelled while deliveries were in flight may have received
 * messages the history never saw (their counts are then uncertain).
 */
import { excerptFor, formatEvent, type Death, type History, type HistoryEvent, type QueueSpec, type QueueStatsSnapshot } from './history.js';
import { ModelRouter } from './model-router.js';

export const GUARANTEES = ['G1', 'G2', 'G3', 'G4', 'G6', 'G7', 'G8', 'G9', 'G10'] as const;
export type Guarantee = (typeof GUARANTEES)[number];

export const GUARANTEE_NAMES: Record<Guarantee, string> = {
  G1: 'confirmed is durable', G2: 'at-least-once', G3: 'once without failure', G4: 'order', G6: 'conservation',
  G7: 'dead letters say why', G8: 'fan-out', G9: 'request-response', G10: 'backpressure, not loss',
};

export interface Violation {
  g: Guarantee;
  message: string;
  m?: number;
  q?: string;
  /** The events about the offending message (or queue, or request), one per line. */
  excerpt: string[];
}

export interface CheckResult {
  violations: Violation[];
  /** Violations found per guarantee (the list above keeps the first few of each). */
  violationCounts: Record<Guarantee, number>;
  /** Checks made per guarantee (each a place where the guarantee could have failed). */
  checks: Record<Guarantee, number>;
  /** The history reached its final accounting point (losses were checked). */
  complete: boolean;
  seed: number | null;
  replay: string | null;
}

type Status = 'ready' | 'unacked' | 'acked' | 'dead' | 'gone';

interface Pub {
  m: number;
  p: number;
  x: string;
  key: string;
  persistent: boolean;
  mandatory: boolean;
  confirm: boolean;
  len: number;
  crc: number;
  expiration: number | undefined;
  at: number;
  epoch: number;
  targets: string[];
  confirmed: boolean | null;
  backpressure: boolean;
  returned: boolean;
}

interface MustReturn {
  count: number;
  why: string;
  at: number;
  /** Count may not be raised: a torn tail lost the count record. */
  relaxed: boolean;
  /** It may also never come back (an ack or reject that a crash may or may not have undone). */
  optional: boolean;
}

interface Copy {
  key: string;
  m: number;
  q: string;
  pub: Pub;
  /** Dead-letter copy: the queue it was dead-lettered from. */
  origin: string | null;
  status: Status;
  settledEpoch: number;
  /** Event index of the settle (or dead-lettering). */
  settledAt: number;
  settledBy: string | null;
  holder: string | null;
  tag: number;
  deliveries: number;
  lastCount: number;
  mayRedeliver: boolean;
  mustReturn: MustReturn | null;
  crashes: number;
  cleanRestarts: number;
  countUncertain: boolean;
  excuse: string | null;
  rejectSent: boolean;
  dlArrived: number;
  dlArrivedEpoch: number;
  /** Kills at which it was ready while noAck gets were in flight on its queue ("<kill>|<queue>"). */
  noAckExposure: string[];
  /** A settle of it may have been lost with a closed connection (network targets). */
  settleRaced: boolean;
  /**
   * Event index of a dead letter of it that arrived while the history still
   * had it held by a consumer, else -1 (network targets: the close that
   * returned it can be recorded after its dead letter). Its next return may
   * be that dead letter's cause.
   */
  deadLetteredWhileHeld: number;
  /** Epoch of its last delivery (-1: none yet). */
  lastDeliveryEpoch: number;
}

interface QState {
  name: string;
  spec: QueueSpec;
  gone: boolean;
  /** Receives dead letters (bound to some queue's dead-letter exchange). */
  dlTarget: boolean;
  /** Used by the RPC helper: deliveries are not in the history. */
  opaque: boolean;
  consumers: Set<string>;
}

interface ConsumerState {
  q: string;
  prefetch: number;
  noAck: boolean;
  owner: number;
  alive: boolean;
  sub: boolean;
}

interface EpochCounts {
  base: Record<string, QueueStatsSnapshot>;
  routed: Map<string, number>;
  acks: Map<string, number>;
  rejects: Map<string, number>;
  timeouts: Set<string>;
  /** Queues declared after the baseline snapshot (their baseline is zero). */
  fresh: Set<string>;
}

const ZERO_COUNTERS: Record<string, number> = {};

export interface CheckOptions {
  /** Detailed violations kept per guarantee (all are counted). Default 5. */
  maxPerGuarantee?: number;
}

export function checkHistory(h: History, opts: CheckOptions = {}): CheckResult {
  return new Checker(h, opts.maxPerGuarantee ?? 5).run();
}

class Checker {
  private readonly checks = zeroCounts();
  private readonly counts = zeroCounts();
  private readonly violations: Violation[] = [];
  private readonly router = new ModelRouter();
  private readonly queues = new Map<string, QState>();
  private readonly dlxOf = new Map<string, string>();
  private readonly dlxSet = new Set<string>();
  private readonly bindingsOf = new Map<string, Set<string>>();
  private readonly pubs = new Map<number, Pub>();
  private readonly copies = new Map<string, Copy>();
  /** Dead letters: every life of (message, dead-letter queue, origin queue). */
  private readonly dlLives = new Map<string, Copy[]>();
  private readonly copiesOfQueue = new Map<string, Set<Copy>>();
  private readonly consumers = new Map<string, ConsumerState>();
  private readonly tags = new Map<string, { copy: Copy; c: string }>();
  /** Consumers released by an ack timeout. */
  private readonly timedOut = new Set<string>();
  /** Deliveries reported after their redelivery, waiting for their consumer's ack timeout to explain them (deliverCopy). */
  private lateDeliveries: { m: number; q: string; c: string; i: number }[] = [];
  private readonly streams = new Map<string, { order: number; m: number }>();
  private readonly requeueExpect = new Map<string, { c: string; order: number; m: number }>();
  private readonly getsInFlight = new Map<string, number>();
  /** noAck gets in flight per queue: each may have taken (and the broker acked) a message the history never saw. */
  private readonly noAckGets = new Map<string, number>();
  /** "<kill>|<queue>" -> how many unseen noAck takes a kill may have swallowed. */
  private readonly noAckAllowance = new Map<string, number>();
  private readonly rpcs = new Map<number, { at: number; epoch: number; ended: boolean; crashed: boolean }>();
  private lastEnded: Copy[] = [];
  private epoch = 0;
  private ep: EpochCounts = newEpoch({});
  private fsync = 'always';
  private tinyRing = false;
  private deliveryCounts = true;
  private ordered = true;
  private complete = false;
  private seed: number | null = null;
  private replay: string | null = null;

  constructor(private readonly h: History, private readonly maxPer: number) {}

  run(): CheckResult {
    for (const ev of this.h.events) this.step(ev);
    this.finalRpc();
    return {
      violations: this.violations, violationCounts: this.counts, checks: this.checks, complete: this.complete, seed: this.seed, replay: this.replay,
    };
  }

  // ---- reporting ---------------------------------------------------------------------

  private fail(g: Guarantee, message: string, m: number | null, q: string | null, extra?: (ev: HistoryEvent) => boolean): void {
    this.counts[g]++;
    if (this.counts[g] > this.maxPer) return;
    const v: Violation = { g, message, excerpt: excerptFor(this.h, m, extra) };
    if (m !== null) v.m = m;
    if (q !== null) v.q = q;
    this.violations.push(v);
  }

  // ---- the walk ----------------------------------------------------------------------

  private step(ev: HistoryEvent): void {
    this.epoch = ev.e;
    switch (ev.k) {
      case 'run':
        this.seed = ev.seed;
        this.replay = ev.replay;
        this.fsync = ev.fsync;
        this.tinyRing = ev.ringBytes <= 64 * 1024;
        this.deliveryCounts = ev.deliveryCounts ?? true;
        this.ordered = ev.orderedDeliveries ?? true;
        return;
      case 'queue': return this.onQueue(ev.q, ev.spec);
      case 'exchange':
        this.router.declareExchange(ev.x, ev.type);
        return;
      case 'bind':
        this.router.bind(ev.x, ev.q, ev.key, ev.args);
        this.addBinding(ev.x, ev.q);
        return;
      case 'unbind':
        this.router.unbind(ev.x, ev.q, ev.key, ev.args);
        return;
      case 'subscribe': {
        this.onQueue(ev.q, { name: ev.q, durable: false, exclusive: true });
        this.router.bind(ev.x, ev.q, ev.key);
        this.addConsumer(ev.c, ev.q, 0, true, 0, true);
        return;
      }
      case 'publish': return this.onPublish(ev);
      case 'backpressure': {
        const p = this.pubs.get(ev.m);
        if (p) p.backpressure = true;
        return;
      }
      case 'confirm': {
        const p = this.pubs.get(ev.m);
        if (p && p.confirmed === null) p.confirmed = ev.ok;
        return;
      }
      case 'return': return this.onReturn(ev);
      case 'deliver': return this.onDeliver(ev);
      case 'settle': return this.onSettle(ev);
      case 'get':
        this.getsInFlight.set(ev.q, (this.getsInFlight.get(ev.q) ?? 0) + 1);
        if (ev.noAck) this.noAckGets.set(ev.q, (this.noAckGets.get(ev.q) ?? 0) + 1);
        this.requeueExpect.delete(ev.q);
        return;
      case 'get-empty':
        this.getsInFlight.set(ev.q, Math.max(0, (this.getsInFlight.get(ev.q) ?? 0) - 1));
        this.noAckGets.set(ev.q, Math.max(0, (this.noAckGets.get(ev.q) ?? 0) - 1));
        return;
      case 'consume':
        this.addConsumer(ev.c, ev.q, ev.prefetch, ev.noAck, ev.owner, false);
        this.requeueExpect.delete(ev.q);
        return;
      case 'cancel': return this.release(ev.c, 'cancel', ev.i);
      case 'timeout': return this.release(ev.c, 'ack timeout', ev.i);
      case 'disconnect': {
        if (!this.ordered) {
          // Over a network a connection close can overtake the settles sent just before it on its
          // channels: those acks and rejects may be lost, and the messages requeued.
          const mine = new Set([`get:${ev.owner}`]);
          for (const [id, c] of this.consumers) if (!c.sub && c.owner === ev.owner) mine.add(id);
          for (const copy of this.copies.values()) {
            if (copy.settledBy !== null && mine.has(copy.settledBy) && copy.settledEpoch === ev.e && (copy.status === 'acked' || copy.status === 'dead')) {
              copy.mayRedeliver = true;
              copy.settleRaced = true;
              copy.mustReturn = { count: copy.lastCount, why: `the close of owner ${ev.owner}'s connection (racing its settle)`, at: ev.i, relaxed: false, optional: true };
            }
          }
        }
        if (!this.ordered) {
          // noAck over a network is at-most-once: what the broker wrote to a connection that then closes
          // is gone with it (RabbitMQ the same). The embedded target returns such deliveries instead.
          for (const c of this.consumers.values()) {
            if (!c.alive || c.sub || !c.noAck || c.owner !== ev.owner) continue;
            for (const copy of this.copiesOf(c.q)) if (copy.status === 'ready') copy.excuse ??= `ready while noAck consumer's connection (owner ${ev.owner}) closed: a delivery on the wire is lost with it`;
          }
        }
        for (const [id, c] of this.consumers) if (c.alive && !c.sub && c.owner === ev.owner) this.release(id, 'disconnect', ev.i);
        this.release(`get:${ev.owner}`, 'disconnect');
        return;
      }
      case 'purge': {
        // Ready copies go; so may a rejected one that a kill may have put back (its reject undone).
        for (const c of this.copiesOf(ev.q)) if (c.status === 'ready' || (c.status === 'dead' && c.mayRedeliver)) c.excuse ??= 'purged';
        this.requeueExpect.delete(ev.q);
        return;
      }
      case 'delete': {
        for (const c of this.copiesOf(ev.q)) {
          if (c.status === 'ready' || c.status === 'unacked') { c.excuse ??= 'queue deleted'; c.status = 'gone'; }
          // A dead letter still on its way when its queue goes has nowhere to go (dropped, as RabbitMQ does),
          // unless a quiet point since its reject shows it was processed already.
          if (c.status === 'dead' && c.dlArrived === 0 && (c.settledAt > this.lastQuiet || c.mayRedeliver)) c.excuse ??= 'queue deleted before its dead letter was processed';
        }
        const q = this.queues.get(ev.q);
        if (q) q.gone = true;
        this.router.removeQueue(ev.q);
        return;
      }
      case 'kill':
        this.kills.push(ev.i);
        return this.endEpoch('kill', ev.i);
      case 'close': return this.endEpoch('close');
      case 'torn': {
        for (const c of this.lastEnded) {
          if (c.mustReturn) c.mustReturn.relaxed = true;
          if (this.fsync !== 'always' && (c.status === 'ready' || c.status === 'unacked')) c.excuse ??= `torn tail under fsync=${this.fsync}`;
        }
        return;
      }
      case 'restart':
        this.ep = newEpoch({});
        this.awaitingBaseline = true;
        return;
      case 'stats': return this.onStats(ev);
      case 'rpc-request':
        this.rpcs.set(ev.r, { at: ev.i, epoch: ev.e, ended: false, crashed: false });
        { const q = this.queues.get(ev.q); if (q) q.opaque = true; }
        return;
      case 'rpc-reply':
      case 'rpc-timeout':
      case 'rpc-error':
        return this.onRpcEnd(ev);
      case 'drained': return this.finalAccounting();
      default:
        return;
    }
  }

  private awaitingBaseline = true;
  /** (epoch|queue) where the broker's routed count disagreed with the history's routing (a G8 suspect). */
  private readonly misrouted = new Set<string>();
  private readonly kills: number[] = [];
  private lastQuiet = -1;
  /** noAck consumers cancelled or released, per queue (context for a loss). */
  private readonly noAckReleases = new Map<string, { c: string; i: number }[]>();

  private onQueue(name: string, spec: QueueSpec): void {
    const prev = this.queues.get(name);
    const q: QState = { name, spec, gone: false, dlTarget: prev?.dlTarget ?? false, opaque: prev?.opaque ?? false, consumers: new Set() };
    this.queues.set(name, q);
    this.router.addQueue(name);
    if (!this.awaitingBaseline) this.ep.fresh.add(name);
    if (spec.deadLetterExchange !== undefined) {
      this.dlxOf.set(name, spec.deadLetterExchange);
      this.dlxSet.add(spec.deadLetterExchange);
      for (const t of this.bindingsOf.get(spec.deadLetterExchange) ?? []) {
        const tq = this.queues.get(t);
        if (tq) tq.dlTarget = true;
      }
    }
  }

  private addBinding(x: string, q: string): void {
    let s = this.bindingsOf.get(x);
    if (s === undefined) this.bindingsOf.set(x, (s = new Set()));
    s.add(q);
    const qs = this.queues.get(q);
    if (qs && this.dlxSet.has(x)) qs.dlTarget = true;
  }

  private addConsumer(c: string, q: string, prefetch: number, noAck: boolean, owner: number, sub: boolean): void {
    this.consumers.set(c, { q, prefetch, noAck, owner, alive: true, sub });
    this.queues.get(q)?.consumers.add(c);
  }

  private copiesOf(q: string): Set<Copy> {
    let s = this.copiesOfQueue.get(q);
    if (s === undefined) this.copiesOfQueue.set(q, (s = new Set()));
    return s;
  }

  private newCopy(key: string, m: number, q: string, pub: Pub, origin: string | null): Copy {
    const c: Copy = {
      key, m, q, pub, origin, status: 'ready', settledEpoch: -1, settledAt: -1, settledBy: null, holder: null, tag: -1, deliveries: 0, lastCount: 0,
      mayRedeliver: false, mustReturn: null, crashes: 0, cleanRestarts: 0, countUncertain: false, excuse: null, rejectSent: false,
      dlArrived: 0, dlArrivedEpoch: -1, noAckExposure: [], settleRaced: false, deadLetteredWhileHeld: -1, lastDeliveryEpoch: -1,
    };
    this.copies.set(key, c);
    this.copiesOf(q).add(c);
    return c;
  }

  private onPublish(ev: Extract<HistoryEvent, { k: 'publish' }>): void {
    const targets = this.router.route(ev.x, ev.key, ev.headers);
    const pub: Pub = {
      m: ev.m, p: ev.p, x: ev.x, key: ev.key, persistent: ev.persistent, mandatory: ev.mandatory, confirm: ev.confirm, len: ev.len, crc: ev.crc,
      expiration: ev.expiration, at: ev.i, epoch: ev.e, targets, confirmed: null, backpressure: false, returned: false,
    };
    this.pubs.set(ev.m, pub);
    for (const q of targets) {
      this.newCopy(`${ev.m}@${q}`, ev.m, q, pub, null);
      this.ep.routed.set(q, (this.ep.routed.get(q) ?? 0) + 1);
    }
  }

  private onReturn(ev: Extract<HistoryEvent, { k: 'return' }>): void {
    const p = this.pubs.get(ev.m);
    if (p === undefined) return;
    this.checks.G8++;
    if (p.targets.length > 0) this.fail('G8', `message ${ev.m} was returned as unroutable, but it routes to ${p.targets.join(', ')}`, ev.m, null);
    if (!p.mandatory) this.fail('G8', `message ${ev.m} was returned but was not published mandatory`, ev.m, null);
    p.returned = true;
  }

  // ---- deliveries -------------------------------------------------------------------

  private onDeliver(ev: Extract<HistoryEvent, { k: 'deliver' }>): void {
    const pub = this.pubs.get(ev.m);
    if (pub === undefined) {
      this.checks.G8++;
      this.fail('G8', `queue ${ev.q} delivered message ${ev.m}, which was never published`, ev.m, ev.q);
      return;
    }
    if (ev.c.startsWith('get:')) {
      this.requeueExpect.delete(ev.q);
      this.getsInFlight.set(ev.q, Math.max(0, (this.getsInFlight.get(ev.q) ?? 0) - 1));
      if (ev.auto) this.noAckGets.set(ev.q, Math.max(0, (this.noAckGets.get(ev.q) ?? 0) - 1));
    }
    if (ev.death !== undefined) return this.onDeadLetter(ev, pub, ev.death);
    const copy = this.copies.get(`${ev.m}@${ev.q}`);
    if (copy === undefined) {
      this.checks.G8++;
      this.fail('G8', `message ${ev.m} was delivered from queue ${ev.q}, which its routing did not reach at publish time (targets: ${pub.targets.join(', ') || 'none'})`, ev.m, ev.q);
      return;
    }
    this.deliverCopy(copy, ev);
  }

  private onDeadLetter(ev: Extract<HistoryEvent, { k: 'deliver' }>, pub: Pub, d: Death): void {
    const oc = this.copies.get(`${ev.m}@${d.queue}`);
    const dk = `${ev.m}@${ev.q}<${d.queue}`;
    let lives = this.dlLives.get(dk);
    if (lives === undefined) this.dlLives.set(dk, (lives = []));
    // After a kill the origin may have been dead-lettered again (at-least-once): several lives of
    // one dead letter can be in the queue at once. A delivery is the redelivery of a returned life
    // if it looks like one (count raised where that is required); otherwise it is a new arrival.
    const dupPossible = oc !== undefined && (oc.crashes > 0 || oc.settleRaced);
    // (Without delivery counts, the redelivered flag tells: a new arrival is not flagged.)
    const back = lives.find((c) => c.mayRedeliver && c.status !== 'unacked' && c.deliveries > 0
      && (!dupPossible || (this.deliveryCounts ? c.mustReturn === null || ev.count > c.mustReturn.count : ev.red)));
    if (back !== undefined) return this.deliverCopy(back, ev);
    if (lives.some((c) => c.status === 'unacked') && !dupPossible) {
      // Not a redelivery, not a possible duplicate: the same dead letter twice at once.
      return this.deliverCopy(lives.find((c) => c.status === 'unacked')!, ev);
    }
    this.checks.G7++;
    if (oc === undefined) {
      this.fail('G7', `dead letter of message ${ev.m} claims origin queue ${d.queue}, which the message was never routed to`, ev.m, ev.q);
    } else {
      const why = this.reasonProblem(oc, d.reason);
      if (why !== null) this.fail('G7', `message ${ev.m} dead-lettered from ${d.queue} with reason '${d.reason}': ${why}`, ev.m, d.queue);
      const fields: string[] = [];
      if (d.exchange !== pub.x) fields.push(`exchange '${d.exchange}' (published to '${pub.x}')`);
      if (!d.keys.includes(pub.key)) fields.push(`routing-keys ${JSON.stringify(d.keys)} (published with '${pub.key}')`);
      if (!d.time) fields.push('no time');
      if (!(d.count >= 1)) fields.push(`count ${d.count}`);
      if (d.firstReason === undefined) fields.push('no x-first-death-reason');
      if (ev.crc !== pub.crc || ev.len !== pub.len) fields.push(`body changed (${ev.len} B crc ${ev.crc} vs ${pub.len} B crc ${pub.crc})`);
      if (fields.length > 0) this.fail('G7', `dead letter of message ${ev.m} from ${d.queue}: wrong x-death / body: ${fields.join('; ')}`, ev.m, d.queue);
      // At-least-once dead-lettering: a second copy only after a crash.
      this.checks.G3++;
      if (oc.dlArrived > 0 && oc.crashes === 0 && !oc.settleRaced) {
        this.fail('G3', `message ${ev.m} was dead-lettered from ${d.queue} twice without a crash in between${oc.cleanRestarts > 0 ? ' (only clean restarts)' : ''}`, ev.m, d.queue);
      }
      oc.dlArrived++;
      oc.dlArrivedEpoch = ev.e;
      if (oc.status !== 'unacked') {
        oc.status = 'dead';
        oc.settledEpoch = ev.e;
        oc.settledAt = ev.i;
        oc.mustReturn = null;
      } else if (!this.ordered) {
        // Held, as far as the history knows; over a network the close that returned it (and so
        // dead-lettered it) may be recorded later. It stays held: it may also be an older life's
        // dead letter (after a kill) while this delivery is still live.
        oc.deadLetteredWhileHeld = ev.i;
      }
    }
    const life = this.newCopy(lives.length === 0 ? dk : `${dk}#${lives.length}`, ev.m, ev.q, pub, d.queue);
    lives.push(life);
    this.deliverCopy(life, ev);
  }

  private reasonProblem(oc: Copy, reason: string): string | null {
    const q = this.queues.get(oc.q);
    const spec = q?.spec ?? { name: oc.q, durable: true };
    switch (reason) {
      case 'rejected':
        return oc.rejectSent ? null : 'no consumer rejected it (no nack/reject without requeue was sent)';
      case 'expired':
        return spec.messageTtl !== undefined || oc.pub.expiration !== undefined ? null : 'neither the queue nor the message has a TTL';
      case 'maxlen':
        return spec.maxLength !== undefined ? null : 'the queue has no max length';
      case 'delivery_limit': {
        const L = spec.deliveryLimit;
        if (L === undefined) return 'the queue has no delivery limit';
        if (!this.deliveryCounts || oc.crashes > 0 || oc.countUncertain || oc.lastCount + 1 > L) return null;
        return `its last delivery count was ${oc.lastCount} and the limit is ${L}: one more return does not exceed it`;
      }
      default:
        return `unknown reason '${reason}'`;
    }
  }

  private deliverCopy(copy: Copy, ev: Extract<HistoryEvent, { k: 'deliver' }>): void {
    const q = this.queues.get(copy.q);
    const spec = q?.spec;
    const pub = copy.pub;
    if (q === undefined || q.gone) return; // a deleted queue's last deliveries: nothing to hold it to
    // Integrity: the message delivered is the message published.
    if (copy.origin === null && (ev.crc !== pub.crc || ev.len !== pub.len)) {
      this.fail(copy.crashes > 0 ? 'G1' : 'G3', `message ${ev.m} delivered from ${ev.q} with a different body (${ev.len} B crc ${ev.crc}; published ${pub.len} B crc ${pub.crc})`, ev.m, ev.q);
    }
    // G3: once, unless a failure allows another delivery.
    this.checks.G3++;
    if (!this.ordered && spec?.consumerTimeout !== undefined && !ev.red && !ev.auto && copy.deliveries > 0 && copy.lastDeliveryEpoch === ev.e && copy.holder !== ev.c) {
      // An unflagged delivery of a message delivered before in this epoch: the first delivery,
      // reported only now. Over separate connections it can come after the redelivery that its
      // consumer's ack timeout caused (the broker returns a timed-out consumer's deliveries).
      // Its settle is stale (the broker took it back); the timeout must be reported too.
      this.tags.set(`${ev.e}:${ev.tag}`, { copy, c: ev.c });
      if (!this.timedOut.has(ev.c)) this.lateDeliveries.push({ m: ev.m, q: ev.q, c: ev.c, i: ev.i });
      return;
    }
    if (copy.status === 'unacked' && !this.ordered && spec?.consumerTimeout !== undefined) {
      // Over separate connections the holder's ack timeout may be reported after this redelivery.
      this.returnCopy(copy, `an ack timeout of ${copy.holder} (reported later)`, ev.i);
      copy.mustReturn = null;
    }
    if (copy.status === 'unacked') {
      this.fail('G3', `message ${ev.m} delivered from ${ev.q} to ${ev.c} while still unacked by ${copy.holder} (no failure in between)`, ev.m, ev.q);
    } else if (copy.deliveries > 0 && !copy.mayRedeliver) {
      const g: Guarantee = pub.targets.length > 1 && copy.origin === null ? 'G8' : 'G3';
      this.fail(g, `message ${ev.m} delivered again from ${ev.q} (delivery ${copy.deliveries + 1}) after it was ${copy.status === 'acked' ? 'acked' : copy.status === 'dead' ? 'rejected' : 'delivered'}, with no failure in between`, ev.m, ev.q);
    }
    // G2: a returned message comes back flagged, its count raised.
    if (copy.mustReturn !== null) {
      this.checks.G2++;
      const r = copy.mustReturn;
      if (!ev.red) this.fail('G2', `message ${ev.m} came back to ${ev.q} after ${r.why} without the redelivered flag`, ev.m, ev.q);
      else if (this.deliveryCounts && !r.relaxed && ev.count <= r.count) {
        this.fail('G2', `message ${ev.m} came back to ${ev.q} after ${r.why} with delivery count ${ev.count}, not raised above ${r.count}`, ev.m, ev.q);
      }
    }
    const L = spec?.deliveryLimit;
    if (L !== undefined && this.deliveryCounts) {
      this.checks.G2++;
      if (ev.count > L) this.fail('G2', `message ${ev.m} delivered from ${ev.q} with delivery count ${ev.count} over the queue's limit ${L}: it should have been dead-lettered (delivery_limit)`, ev.m, ev.q);
    }
    // G4: one publisher, one queue: first deliveries (never returned, never recovered: not redelivered) in publish order.
    if (copy.origin === null && !ev.red && !ev.c.startsWith('get:')) {
      this.checks.G4++;
      const key = this.ordered ? `${copy.q}|${ev.e}|${pub.p}` : `${copy.q}|${ev.e}|${pub.p}|${ev.c}`;
      const last = this.streams.get(key);
      if (last !== undefined && pub.at < last.order) {
        this.fail('G4', `queue ${ev.q}: message ${ev.m} of publisher ${pub.p} was delivered after message ${last.m}, which was published later`, ev.m, ev.q, (e) => (e.k === 'publish' || e.k === 'deliver') && e.m === last.m);
      } else this.streams.set(key, { order: pub.at, m: ev.m });
    }
    // G4: a message requeued by the only consumer (prefetch 1) goes back to its place: nothing later comes first.
    const exp = this.requeueExpect.get(copy.q);
    if (exp !== undefined && exp.c === ev.c) {
      this.requeueExpect.delete(copy.q);
      this.checks.G4++;
      if (copy.origin === null && pub.at > exp.order) {
        this.fail('G4', `queue ${ev.q}: message ${exp.m} was requeued by ${ev.c} (its only consumer, prefetch 1), but the next delivery was the later message ${ev.m}`, exp.m, ev.q, (e) => (e.k === 'publish' || e.k === 'deliver') && e.m === ev.m);
      }
    }
    copy.deliveries++;
    copy.lastCount = ev.count;
    copy.mustReturn = null;
    copy.mayRedeliver = false;
    copy.deadLetteredWhileHeld = -1;
    copy.lastDeliveryEpoch = ev.e;
    const consumer = this.consumers.get(ev.c);
    const alive = ev.c.startsWith('get:') || (consumer !== undefined && consumer.alive);
    if (ev.auto) {
      copy.status = 'acked';
      copy.settledEpoch = ev.e;
      copy.settledBy = ev.c;
      this.ep.acks.set(copy.q, (this.ep.acks.get(copy.q) ?? 0) + 1);
    } else if (alive) {
      copy.status = 'unacked';
      copy.holder = ev.c;
      copy.tag = ev.tag;
      this.tags.set(`${ev.e}:${ev.tag}`, { copy, c: ev.c });
    } else {
      // Delivered to a consumer already cancelled: the cancel returned it.
      this.returnCopy(copy, `cancel of ${ev.c}`, ev.i);
    }
  }

  private returnCopy(copy: Copy, why: string, at: number): void {
    copy.status = 'ready';
    copy.holder = null;
    copy.tag = -1;
    copy.mayRedeliver = true;
    copy.mustReturn = { count: copy.lastCount, why, at, relaxed: false, optional: false };
  }

  private onSettle(ev: Extract<HistoryEvent, { k: 'settle' }>): void {
    const t = this.tags.get(`${ev.e}:${ev.tag}`);
    if (t === undefined) return;
    this.tags.delete(`${ev.e}:${ev.tag}`);
    const copy = t.copy;
    if (copy.status !== 'unacked' || copy.tag !== ev.tag || copy.holder !== t.c) return; // stale: it was returned meanwhile
    copy.settledBy = t.c;
    copy.holder = null;
    if (ev.kind === 'ack') {
      copy.status = 'acked';
      copy.settledEpoch = ev.e;
      this.ep.acks.set(copy.q, (this.ep.acks.get(copy.q) ?? 0) + 1);
      return;
    }
    if (ev.requeue) {
      this.returnCopy(copy, `${ev.kind} with requeue`, ev.i);
      this.expectRequeue(copy, t.c);
      return;
    }
    copy.status = 'dead';
    copy.rejectSent = true;
    copy.settledEpoch = ev.e;
    copy.settledAt = ev.i;
    this.ep.rejects.set(copy.q, (this.ep.rejects.get(copy.q) ?? 0) + 1);
  }

  private expectRequeue(copy: Copy, c: string): void {
    const q = this.queues.get(copy.q);
    const cons = this.consumers.get(c);
    this.requeueExpect.delete(copy.q);
    if (q === undefined || cons === undefined || copy.origin !== null || cons.sub) return;
    const live = [...q.consumers].filter((id) => this.consumers.get(id)?.alive);
    const spec = q.spec;
    const L = spec.deliveryLimit;
    if (cons.prefetch !== 1 || live.length !== 1 || live[0] !== c) return;
    if ((this.getsInFlight.get(copy.q) ?? 0) > 0) return; // a get in flight may take the requeued message first
    if (spec.messageTtl !== undefined || spec.maxLength !== undefined || copy.pub.expiration !== undefined) return;
    // Without delivery counts (AMQP) the checker cannot tell whether this return reached the limit (dead-lettered).
    if (L !== undefined && (!this.deliveryCounts || copy.lastCount + 1 > L)) return;
    this.requeueExpect.set(copy.q, { c, order: copy.pub.at, m: copy.m });
  }

  /** Consumer c is gone (cancel, ack timeout, disconnect): its unacked deliveries are returned. */
  private release(c: string, why: string, i = -1): void {
    const cons = this.consumers.get(c);
    const q = cons?.q;
    if (why === 'ack timeout') {
      this.timedOut.add(c);
      this.lateDeliveries = this.lateDeliveries.filter((l) => l.c !== c);
    }
    for (const t of this.tags.values()) {
      const copy = t.copy;
      if (t.c === c && copy.status === 'unacked' && copy.holder === c) {
        this.returnCopy(copy, `${why} of ${c}`, -1);
        if (copy.deadLetteredWhileHeld >= 0) {
          // Its dead letter came already, reported before this return: it was most likely dead-lettered
          // by it (delivery_limit). It may still come back (if that was an older life's dead letter).
          copy.status = 'dead';
          copy.settledEpoch = this.epoch;
          copy.settledAt = copy.deadLetteredWhileHeld;
          copy.mustReturn!.optional = true;
        }
      }
    }
    const timeoutQueue = q !== undefined && this.queues.get(q)?.spec.consumerTimeout !== undefined;
    if (why === 'ack timeout' || (timeoutQueue && cons !== undefined && !cons.sub)) {
      // Settles sent by a consumer of a queue with an ack timeout may have come too late: the broker
      // returned the message first (a timeout, seen as an event, or unseen when the consumer was
      // cancelled before it could be reported).
      for (const copy of q === undefined ? [] : this.copiesOf(q)) {
        if (copy.settledBy === c && copy.settledEpoch === this.epoch && (copy.status === 'acked' || copy.status === 'dead')) {
          copy.mayRedeliver = true;
          copy.mustReturn = { count: copy.lastCount, why: `an ack timeout of ${c} (racing its settle)`, at: -1, relaxed: false, optional: true };
        }
      }
      if (q !== undefined) this.ep.timeouts.add(q);
    }
    if (why !== 'ack timeout' && cons !== undefined && q !== undefined && !cons.sub) {
      // Deliveries in flight to a cancelled consumer are returned unseen: counts of ready copies become uncertain.
      for (const copy of this.copiesOf(q)) if (copy.status === 'ready') copy.countUncertain = true;
    }
    if (cons !== undefined && cons.noAck && !cons.sub && q !== undefined && i >= 0) {
      let l = this.noAckReleases.get(q);
      if (l === undefined) this.noAckReleases.set(q, (l = []));
      l.push({ c, i });
    }
    if (cons !== undefined) {
      cons.alive = false;
      this.queues.get(cons.q)?.consumers.delete(c);
      this.requeueExpect.delete(cons.q);
    }
  }

  // ---- epochs -----------------------------------------------------------------------

  private endEpoch(kind: 'kill' | 'close', at = -1): void {
    const ended: Copy[] = [];
    const e = this.epoch;
    // noAck takes in flight at a kill: the broker acked them at once, their deliveries died with the process.
    const noAckConsumerQueues = new Set<string>();
    for (const c of this.consumers.values()) if (c.alive && c.noAck && !c.sub) noAckConsumerQueues.add(c.q);
    if (kind === 'kill') for (const [q, n] of this.noAckGets) if (n > 0) this.noAckAllowance.set(`${at}|${q}`, n);
    for (const copy of this.copies.values()) {
      const q = this.queues.get(copy.q);
      if (q === undefined || q.gone) {
        // Its queue was deleted after it was dead-lettered: a transient dead letter not yet seen dies with the restart.
        if (copy.status === 'dead' && copy.dlArrived === 0 && !copy.pub.persistent) copy.excuse ??= 'transient dead letter across a restart';
        continue;
      }
      const volatile = !q.spec.durable || q.spec.exclusive === true || !copy.pub.persistent;
      const settledNow = (copy.status === 'acked' || copy.status === 'dead') && copy.settledEpoch === e;
      const deadNoArrival = copy.status === 'dead' && copy.dlArrived === 0 && this.dlxOf.has(copy.q);
      const live = copy.status === 'ready' || copy.status === 'unacked';
      if (kind === 'kill' && copy.status === 'ready') {
        if (noAckConsumerQueues.has(copy.q)) copy.excuse ??= 'ready while a noAck consumer was live at the kill (an unseen delivery is acked at once)';
        if ((this.noAckGets.get(copy.q) ?? 0) > 0) copy.noAckExposure.push(`${at}|${copy.q}`);
      }
      // Over a network, settles sent right before a clean close may be overtaken by it, as by a kill.
      const undoable = kind === 'kill' || !this.ordered;
      if (!live && !(undoable && settledNow) && !deadNoArrival) continue;
      if (kind === 'kill') copy.crashes++;
      else copy.cleanRestarts++;
      if (volatile) {
        // Gone with the restart, and so is a transient dead letter not yet seen in the dead-letter queue.
        if (live || deadNoArrival) {
          if (live) copy.status = 'gone';
          copy.excuse ??= !copy.pub.persistent ? 'transient message across a restart' : 'non-durable queue across a restart';
        }
        continue;
      }
      if (kind === 'kill' && copy.pub.confirmed !== true && copy.origin === null) copy.excuse ??= 'not confirmed when the broker was killed';
      if (kind === 'kill' && copy.origin !== null && copy.status !== 'acked') copy.excuse ??= 'dead letter not yet settled at the kill (at-least-once dead-lettering)';
      if (copy.status === 'unacked') {
        this.returnCopy(copy, kind === 'kill' ? 'the broker was killed' : 'a clean restart', -1);
      } else if (!live) {
        // A settle the crash may have undone, or a dead letter not yet arrived: it may come back.
        if (kind === 'close' && settledNow) copy.settleRaced = true;
        copy.mayRedeliver = true;
        copy.mustReturn = { count: copy.lastCount, why: kind === 'kill' ? `the broker was killed after it was ${copy.status === 'acked' ? 'acked' : 'rejected'}` : 'a clean restart before its dead letter arrived', at: -1, relaxed: false, optional: true };
      } else if (copy.deliveries > 0 || kind === 'kill') {
        copy.mayRedeliver = copy.mayRedeliver || copy.deliveries > 0;
      }
      ended.push(copy);
    }
    this.lastEnded = ended;
    for (const c of this.consumers.values()) c.alive = false;
    for (const q of this.queues.values()) {
      q.consumers.clear();
      if (!q.spec.durable || q.spec.exclusive) {
        q.gone = true;
        this.router.removeQueue(q.name);
      }
    }
    this.tags.clear();
    this.requeueExpect.clear();
    this.getsInFlight.clear();
    this.noAckGets.clear();
    for (const r of this.rpcs.values()) if (!r.ended) r.crashed = true;
  }

  // ---- G6 -------------------------------------------------------------------------

  private onStats(ev: Extract<HistoryEvent, { k: 'stats' }>): void {
    for (const [name, s] of Object.entries(ev.queues)) {
      const c = s.counters;
      const n = (k: string): number => c[k] ?? 0;
      this.checks.G6++;
      const out = n('acked') + s.ready + s.unacked + n('rejected') + n('deliveryLimit') + n('expired') + n('maxlen') + n('purged') + n('deleted');
      if (n('routed') !== out) {
        this.fail('G6', `queue ${name} (${ev.phase} stats #${ev.i}): routed ${n('routed')} != acked ${n('acked')} + ready ${s.ready} + unacked ${s.unacked} + rejected ${n('rejected')} + delivery_limit ${n('deliveryLimit')} + expired ${n('expired')} + maxlen ${n('maxlen')} + purged ${n('purged')} + deleted ${n('deleted')} = ${out}`, null, name, (e) => e.i === ev.i);
      }
    }
    if (ev.phase === 'baseline') {
      this.ep = newEpoch(ev.queues);
      this.awaitingBaseline = false;
      return;
    }
    this.lastQuiet = ev.i;
    if (!ev.clean) return;
    for (const [name, s] of Object.entries(ev.queues)) {
      const q = this.queues.get(name);
      if (q === undefined || q.gone || q.opaque || q.dlTarget) continue;
      const base = this.ep.fresh.has(name) ? ZERO_COUNTERS : (this.ep.base[name]?.counters ?? ZERO_COUNTERS);
      const d = (k: string): number => (s.counters[k] ?? 0) - (base[k] ?? 0);
      const where = `queue ${name} (${ev.phase} stats #${ev.i}, epoch ${ev.e})`;
      const routed = this.ep.routed.get(name) ?? 0;
      this.checks.G6++;
      if (d('routed') + d('rejectedPublishes') !== routed) {
        this.misrouted.add(`${ev.e}|${name}`);
        this.fail('G6', `${where}: the broker counted ${d('routed')} routed + ${d('rejectedPublishes')} refused since the epoch began; the history routed ${routed} publishes there`, null, name, (e) => e.i === ev.i);
      }
      let unacked = 0;
      for (const copy of this.copiesOf(name)) if (copy.status === 'unacked') unacked++;
      this.checks.G6++;
      if (s.unacked !== unacked) this.fail('G6', `${where}: the broker reports ${s.unacked} unacked, the history has ${unacked} delivered and not settled`, null, name, (e) => e.i === ev.i);
      const acks = this.ep.acks.get(name) ?? 0;
      const rejects = this.ep.rejects.get(name) ?? 0;
      const raced = this.ep.timeouts.has(name) || q.spec.consumerTimeout !== undefined;
      this.checks.G6 += 2;
      if (raced ? d('acked') > acks : d('acked') !== acks) this.fail('G6', `${where}: the broker counted ${d('acked')} acks since the epoch began, the history sent ${acks}`, null, name, (e) => e.i === ev.i);
      if (raced ? d('rejected') > rejects : d('rejected') !== rejects) this.fail('G6', `${where}: the broker counted ${d('rejected')} rejected since the epoch began, the history sent ${rejects}`, null, name, (e) => e.i === ev.i);
    }
  }

  // ---- G9 -------------------------------------------------------------------------

  private onRpcEnd(ev: Extract<HistoryEvent, { k: 'rpc-reply' | 'rpc-timeout' | 'rpc-error' }>): void {
    const r = this.rpcs.get(ev.r);
    this.checks.G9++;
    const about = (e: HistoryEvent): boolean => (e.k === 'rpc-request' || e.k === 'rpc-reply' || e.k === 'rpc-timeout' || e.k === 'rpc-error') && e.r === ev.r;
    if (r === undefined) {
      this.fail('G9', `an outcome for request ${ev.r}, which was never sent`, null, null, about);
      return;
    }
    if (r.ended) this.fail('G9', `request ${ev.r} ended twice`, null, null, about);
    r.ended = true;
    if (ev.k === 'rpc-reply' && ev.body !== `re:rq:${ev.r}`) {
      this.fail('G9', `request ${ev.r} got the reply '${ev.body.slice(0, 60)}', which answers another request`, null, null, about);
    }
  }

  private finalRpc(): void {
    if (!this.complete) return;
    for (const [r, s] of this.rpcs) {
      if (s.ended || s.crashed) continue;
      this.checks.G9++;
      this.fail('G9', `request ${r} never ended (no reply, no timeout)`, null, null, (e) => e.k === 'rpc-request' && e.r === r);
    }
  }

  // ---- final accounting -------------------------------------------------------------

  private finalAccounting(): void {
    this.complete = true;
    for (const l of this.lateDeliveries) {
      this.fail('G3', `message ${l.m} delivered again from ${l.q} to ${l.c} without the redelivered flag, after an earlier delivery of it, and no ack timeout of ${l.c} explains it`, l.m, l.q);
    }
    for (const p of this.pubs.values()) {
      if (p.targets.length === 0 && p.mandatory) {
        this.checks.G8++;
        if (!p.returned && !this.crashedAfter(p)) this.fail('G8', `message ${p.m} was unroutable and mandatory but never returned`, p.m, null);
      }
    }
    for (const copy of this.copies.values()) {
      const q = this.queues.get(copy.q);
      if (q === undefined || q.opaque) continue;
      let g = this.lossGuarantee(copy, q);
      if (g === null) continue;
      this.checks[g]++;
      let problem = this.missing(copy, q);
      if (problem === null) continue;
      const allowance = copy.noAckExposure.find((k) => (this.noAckAllowance.get(k) ?? 0) > 0);
      if (allowance !== undefined) {
        // One of the noAck gets in flight at that kill may have taken it.
        this.noAckAllowance.set(allowance, this.noAckAllowance.get(allowance)! - 1);
        continue;
      }
      if (copy.deliveries === 0 && copy.origin === null && copy.pub.x !== '' && this.misrouted.has(`${copy.pub.epoch}|${copy.q}`)) {
        // Never seen, and the broker's own routed count for that queue and epoch is short: it was not routed there.
        g = 'G8';
        problem += ` (the broker's routed counter for ${copy.q} in epoch ${copy.pub.epoch} is short of the history's routing: it was most likely never routed there; topology: ${this.topologyOf(copy.q)})`;
      }
      this.fail(g, `message ${copy.m} ${copy.origin !== null ? `(dead-lettered from ${copy.origin}) ` : ''}is missing from ${copy.q}: ${problem}`, copy.m, copy.q);
    }
  }

  private topologyOf(q: string): string {
    const bs = this.h.events.filter((e) => (e.k === 'bind' || e.k === 'unbind') && e.q === q)
      .map((e) => `${e.k} ${(e as { x: string }).x} '${(e as { key: string }).key}'${(e as { args?: object }).args ? ` ${JSON.stringify((e as { args?: object }).args)}` : ''} (#${e.i})`);
    return bs.join('; ') || 'no bindings';
  }

  private crashedAfter(p: Pub): boolean {
    return this.h.events.some((e) => e.i > p.at && (e.k === 'kill' || e.k === 'close') && e.e === p.epoch);
  }

  /** Which guarantee promised this copy would be accounted for (null: none applies). */
  private lossGuarantee(copy: Copy, q: QState): Guarantee | null {
    if (copy.mustReturn !== null && !copy.mustReturn.optional) return 'G2';
    if (copy.status === 'dead') {
      // Rejected (or dead-lettered) and its dead letter never seen: G7, or G1 if a kill came in between.
      if (!this.kills.some((k) => k > copy.settledAt)) return 'G7';
      return copy.pub.persistent && copy.pub.confirmed === true ? 'G1' : null;
    }
    const spec = q.spec;
    if (copy.crashes + copy.cleanRestarts > 0) {
      return spec.durable && !spec.exclusive && copy.pub.persistent && (copy.pub.confirmed === true || copy.origin !== null || copy.crashes === 0) ? 'G1' : null;
    }
    if (copy.pub.confirmed === true && (copy.pub.backpressure || this.tinyRing || spec.overflow === 'reject-publish' || spec.overflow === 'reject-publish-dlx')) return 'G10';
    if (copy.origin === null && copy.pub.targets.length > 1) return 'G8';
    return 'G3';
  }

  /** Why a copy that is neither acked nor dead-lettered counts as lost (null: it is accounted for or excused). */
  private missing(copy: Copy, q: QState): string | null {
    const spec = q.spec;
    const hasDlx = this.dlxOf.has(copy.q);
    if (copy.status === 'acked' || copy.status === 'gone') return null;
    if (copy.excuse !== null) return null;
    if (copy.status === 'dead') {
      if (!hasDlx || copy.dlArrived > 0) return null;
      return copy.rejectSent ? 'it was rejected without requeue but never arrived in the dead-letter queue' : 'it was dead-lettered but never arrived in the dead-letter queue';
    }
    if (q.gone) return null;
    if (copy.pub.confirmed === false) return null; // refused (reject-publish): the publisher knows
    if (!hasDlx) {
      if (spec.messageTtl !== undefined || copy.pub.expiration !== undefined) return null; // may have expired (no dead-letter exchange to show it)
      if (spec.maxLength !== undefined && (spec.overflow ?? 'drop-head') === 'drop-head') return null; // dropped from the head by overflow
      const L = spec.deliveryLimit;
      if (L !== undefined && (!this.deliveryCounts || copy.crashes > 0 || copy.countUncertain || copy.lastCount + 1 > L)) return null;
    }
    if ((spec.overflow === 'reject-publish' || (spec.overflow === 'reject-publish-dlx' && !hasDlx)) && copy.pub.confirmed !== true) return null;
    const life: string[] = [];
    if (copy.deliveries > 0) life.push(`delivered ${copy.deliveries}x (last count ${copy.lastCount})`);
    else life.push('never delivered');
    if (copy.mustReturn) life.push(`returned by ${copy.mustReturn.why}`);
    if (copy.crashes > 0) life.push(`${copy.crashes} kill(s) in its life`);
    if (copy.cleanRestarts > 0) life.push(`${copy.cleanRestarts} clean restart(s)`);
    if (copy.pub.confirmed === true) life.push('confirmed');
    if (copy.status === 'unacked') life.push(`still unacked by ${copy.holder}`);
    const readySince = copy.mustReturn !== null && copy.mustReturn.at >= 0 ? copy.mustReturn.at : copy.pub.at;
    const noAck = (this.noAckReleases.get(copy.q) ?? []).filter((r) => r.i > readySince).map((r) => `${r.c} (#${r.i})`);
    if ((copy.deliveries === 0 || copy.mustReturn !== null) && noAck.length > 0) life.push(`noAck consumer(s) of ${copy.q} cancelled or released while it was there: ${noAck.slice(0, 4).join(', ')}`);
    return `${life.join(', ')}; not acked, not dead-lettered, not in the final drain`;
  }
}

function zeroCounts(): Record<Guarantee, number> {
  return { G1: 0, G2: 0, G3: 0, G4: 0, G6: 0, G7: 0, G8: 0, G9: 0, G10: 0 };
}

function newEpoch(base: Record<string, QueueStatsSnapshot>): EpochCounts {
  const b: Record<string, QueueStatsSnapshot> = {};
  for (const [k, v] of Object.entries(base)) b[k] = v;
  return { base: b, routed: new Map(), acks: new Map(), rejects: new Map(), timeouts: new Set(), fresh: new Set() };
}

/** A violation as printed: guarantee, message, the replay command, the excerpt. */
export function formatViolation(v: Violation, seed: number | null, replay: string | null): string {
  const lines = [`VIOLATION ${v.g} (${GUARANTEE_NAMES[v.g]}): ${v.message}`];
  if (seed !== null) lines.push(`  seed ${seed}; replay: ${replay ?? `ringmq fuzz --replay ${seed}`}`);
  lines.push('  history excerpt:');
  for (const l of v.excerpt) lines.push(`    ${l}`);
  return lines.join('\n');
}

export { formatEvent };
