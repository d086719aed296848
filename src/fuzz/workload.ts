/**
 * Seeded workloads: everything a run does, generated up front from its seed
 * (prng.ts), so `--replay SEED` repeats the same operations and the same
 * fault schedule. What cannot be replayed exactly is the interleaving with
 * the broker's threads (when a delivery arrives relative to the next
 * operation); consumers decide ack/nack/reject/hold from their own seeded
 * stream, in the order their deliveries arrive.
 *
 * A workload is a topology (queues with TTL, max length and every overflow
 * mode, delivery limits, ack timeouts, a dead-letter exchange and queue; one
 * exchange of each type with bindings) and a list of steps: publishes
 * (persistent or not, with or without confirms, mandatory, per-message TTL,
 * to every exchange type and the default exchange, bodies from 1 B to
 * 100 KiB), consumers (prefetch, noAck, ack/nack/reject/hold/forget mixes),
 * cancels, gets, purges, deletes, bind/unbind, subscriptions, RPC requests,
 * consumer/connection loss, sleeps, quiet points (G6), and faults (SIGKILL,
 * torn tail, clean restart). Every step is interpretable by the checker: the
 * history records each one and what it makes legitimately disappear.
 */
import type { ExchangeType, Overflow, QueueSpec } from './history.js';
import { Rng } from './prng.js';

export type Fault = 'kill' | 'torn' | 'restart' | 'disconnect' | 'timeout' | 'ring';

/**
 * Broker bugs the fuzzer found (docs/fuzz.md, "Findings"; all three fixed).
 * A workload can still steer clear of them (--avoid), to bisect an older
 * build; `ringmq fuzz` exercises them unless told.
 *  - binding-args: durable bindings were keyed by (exchange, queue, routing
 *    key) without their arguments, so two headers bindings of one queue
 *    collapse into one across a restart (and an unbind of one removes both).
 *  - noack-cancel: messages dispatched to a noAck consumer while its cancel
 *    (or its owner's release) is in flight are auto-acked by the shard and
 *    dropped by the I/O thread: lost.
 *  - dl-close: a dead letter whose copy is not yet confirmed when the broker
 *    closes cleanly is dead-lettered again after the restart (a duplicate
 *    without a crash). Avoided by letting the broker go quiet before a clean
 *    close.
 */
export type KnownBug = 'binding-args' | 'noack-cancel' | 'dl-close';
export const KNOWN_BUGS: readonly KnownBug[] = ['binding-args', 'noack-cancel', 'dl-close'];
export const ALL_FAULTS: readonly Fault[] = ['kill', 'torn', 'restart', 'disconnect', 'timeout', 'ring'];

export interface Behavior {
  /** Relative weights of what the consumer does with each delivery. */
  ack: number;
  nackRequeue: number;
  nackDrop: number;
  reject: number;
  rejectRequeue: number;
  /** Ack after holdMs (a slow consumer; may overrun the queue's ack timeout). */
  hold: number;
  /** Never settle (until cancel, disconnect, ack timeout or crash). */
  forget: number;
  holdMs: [number, number];
  /** Seed of the consumer's own decision stream. */
  seed: number;
}

export type Step =
  | { op: 'declareQueue'; spec: QueueSpec }
  | { op: 'declareExchange'; x: string; type: ExchangeType }
  | { op: 'bind'; q: string; x: string; key: string; args?: Record<string, string> }
  | { op: 'unbind'; q: string; x: string; key: string; args?: Record<string, string> }
  | { op: 'publish'; m: number; p: number; x: string; key: string; persistent: boolean; mandatory: boolean; confirm: boolean; len: number; headers?: Record<string, string>; expiration?: number }
  | { op: 'consume'; c: string; q: string; prefetch: number; noAck: boolean; owner: number; behavior: Behavior }
  | { op: 'cancel'; c: string }
  | { op: 'get'; q: string; owner: number; noAck: boolean; then: 'ack' | 'requeue' | 'reject' | 'hold' }
  | { op: 'purge'; q: string }
  | { op: 'delete'; q: string }
  | { op: 'subscribe'; c: string; x: string; key: string }
  | { op: 'rpc'; r: number; timeout: number }
  | { op: 'disconnect'; owner: number }
  | { op: 'sleep'; ms: number }
  | { op: 'quiet' }
  /** SIGKILL after `afterMs` while the next steps keep running (a random moment). torn: cut the tails while down. */
  | { op: 'kill'; afterMs: number; torn: boolean }
  | { op: 'restart' };

export interface Workload {
  seed: number;
  fsync: 'always' | 'interval' | 'never';
  shards: number;
  ringBytes: number;
  segmentBytes: number;
  faults: Fault[];
  /** Known broker bugs this workload steers clear of. */
  avoid: KnownBug[];
  /** The RPC request queue (served by the target's replier). */
  rpcQueue: string;
  steps: Step[];
}

export interface WorkloadOptions {
  seed: number;
  faults?: readonly Fault[];
  /** Fixed fsync policy (default: drawn per run). */
  fsync?: 'always' | 'interval' | 'never';
  /** Steps after setup (default: drawn in [300, 900]). */
  steps?: number;
  /** Most crashes (kill/torn/restart) in a run. Default 4. */
  maxCrashes?: number;
  /** Known broker bugs to steer clear of. */
  avoid?: readonly KnownBug[];
  /** Target supports these (the AMQP target has no counters/torn). */
  caps?: { torn: boolean; restart: boolean; kill: boolean };
}

export const DLX = 'fz.dlx';
export const DLQ = 'fz.dlq';
export const RPC_QUEUE = 'fz.rpc';
export const EXCHANGES: readonly { x: string; type: ExchangeType }[] = [
  { x: 'fz.direct', type: 'direct' }, { x: 'fz.fanout', type: 'fanout' }, { x: 'fz.topic', type: 'topic' }, { x: 'fz.headers', type: 'headers' },
];
const TOPIC_KEYS = ['a', 'a.b', 'a.c', 'a.b.c', 'b', 'b.c', 'x.y.z'];
const TOPIC_PATTERNS = ['a.*', 'a.#', '#.c', '#', '*.b', 'b', 'a.b.c', '*'];
const DIRECT_KEYS = ['k1', 'k2', 'k3', 'shared'];

interface Publisher {
  p: number;
  persistent: number;
  confirm: boolean;
  mandatory: number;
  ttl: number;
  big: number;
}

export function generateWorkload(o: WorkloadOptions): Workload {
  const rng = new Rng(o.seed);
  const faults = [...(o.faults ?? ALL_FAULTS)];
  const has = (f: Fault): boolean => faults.includes(f);
  const caps = o.caps ?? { torn: true, restart: true, kill: true };
  const fsync = o.fsync ?? rng.pick(['always', 'always', 'interval', 'never'] as const);
  const shards = rng.int(1, 2);
  const ringBytes = has('ring') && rng.chance(0.4) ? 64 * 1024 : 1 << 20;
  const segmentBytes = rng.pick([64 * 1024, 256 * 1024, 4 * 1024 * 1024]);
  const steps: Step[] = [];
  const nSteps = o.steps ?? rng.int(300, 900);
  const maxCrashes = o.maxCrashes ?? 4;

  // ---- topology ----
  steps.push({ op: 'declareExchange', x: DLX, type: 'fanout' });
  steps.push({ op: 'declareQueue', spec: { name: DLQ, durable: true } });
  steps.push({ op: 'bind', q: DLQ, x: DLX, key: '' });
  for (const e of EXCHANGES) steps.push({ op: 'declareExchange', x: e.x, type: e.type });
  steps.push({ op: 'declareQueue', spec: { name: RPC_QUEUE, durable: false } });

  const nQueues = rng.int(3, 6);
  const queues: QueueSpec[] = [];
  for (let i = 0; i < nQueues; i++) {
    const spec: QueueSpec = { name: `fz.q${i}`, durable: rng.chance(0.85) };
    if (rng.chance(0.2)) spec.messageTtl = rng.int(30, 400);
    if (rng.chance(0.25)) {
      spec.maxLength = rng.int(2, 30);
      spec.overflow = rng.pick(['drop-head', 'reject-publish', 'reject-publish-dlx'] as Overflow[]);
    }
    if (rng.chance(0.55) || spec.overflow === 'reject-publish-dlx') spec.deadLetterExchange = DLX;
    if (rng.chance(0.25)) spec.deliveryLimit = rng.int(0, 3);
    if (has('timeout') && rng.chance(0.25)) spec.consumerTimeout = rng.int(80, 400);
    queues.push(spec);
    steps.push({ op: 'declareQueue', spec });
  }
  const bindings: { q: string; x: string; key: string; args?: Record<string, string> }[] = [];
  const avoid = new Set(o.avoid ?? []);
  const bindingFor = (q: string): { q: string; x: string; key: string; args?: Record<string, string> } => {
    let e = rng.pick(EXCHANGES);
    if (e.type === 'headers' && avoid.has('binding-args') && bindings.some((b) => b.q === q && b.x === e.x)) e = EXCHANGES[0]!;
    switch (e.type) {
      case 'direct': return { q, x: e.x, key: rng.pick(DIRECT_KEYS) };
      case 'fanout': return { q, x: e.x, key: '' };
      case 'topic': return { q, x: e.x, key: rng.pick(TOPIC_PATTERNS) };
      case 'headers': {
        const args: Record<string, string> = { 'x-match': rng.pick(['all', 'any']) };
        if (rng.chance(0.7)) args.color = rng.pick(['red', 'blue']);
        if (rng.chance(0.6) || args.color === undefined) args.size = rng.pick(['big', 'small']);
        return { q, x: e.x, key: '', args };
      }
    }
  };
  for (const q of queues) {
    const n = rng.int(0, 3);
    for (let k = 0; k < n; k++) {
      const b = bindingFor(q.name);
      bindings.push(b);
      steps.push({ op: 'bind', ...b });
    }
  }

  // ---- publishers ----
  const publishers: Publisher[] = [];
  for (let p = 0, n = rng.int(1, 4); p < n; p++) {
    publishers.push({
      p, persistent: rng.pick([1, 1, 0.8, 0.3]), confirm: rng.chance(0.8), mandatory: rng.pick([0, 0.1]),
      ttl: rng.pick([0, 0, 0.15]), big: rng.pick([0, 0.02, 0.05]),
    });
  }

  // ---- steps ----
  let m = 0;
  let c = 0;
  let r = 0;
  let crashes = 0;
  const live = new Set(queues.map((q) => q.name));
  const consumers = new Map<string, { q: string; owner: number }>();
  const subs = new Set<string>();
  const owners = 6;
  const behavior = (): Behavior => {
    const kind = rng.weighted({ acker: 4, mixed: 3, requeuer: 1, slow: has('timeout') ? 1.5 : 0.5, forgetful: 0.7 });
    const b: Behavior = { ack: 1, nackRequeue: 0, nackDrop: 0, reject: 0, rejectRequeue: 0, hold: 0, forget: 0, holdMs: [5, 60], seed: rng.seed() };
    if (kind === 'mixed') Object.assign(b, { ack: 6, nackRequeue: 1, nackDrop: 0.5, reject: 0.5, rejectRequeue: 0.3, hold: 0.5, forget: 0.1 });
    else if (kind === 'requeuer') Object.assign(b, { ack: 2, nackRequeue: 2 });
    else if (kind === 'slow') Object.assign(b, { ack: 1, hold: 3, holdMs: [50, 600] as [number, number] });
    else if (kind === 'forgetful') Object.assign(b, { ack: 3, forget: 1 });
    return b;
  };
  const publish = (pub: Publisher): Step => {
    const id = ++m;
    const route = rng.weighted({ default: 3, direct: 2, fanout: 1.5, topic: 1.5, headers: 1, unroutable: 0.2 });
    let x = '';
    let key = '';
    let headers: Record<string, string> | undefined;
    const names = [...live];
    switch (route) {
      case 'default': key = names.length > 0 ? rng.pick(names) : 'fz.none'; break;
      case 'direct': x = 'fz.direct'; key = rng.pick(DIRECT_KEYS); break;
      case 'fanout': x = 'fz.fanout'; break;
      case 'topic': x = 'fz.topic'; key = rng.pick(TOPIC_KEYS); break;
      case 'headers':
        x = 'fz.headers';
        headers = {};
        if (rng.chance(0.7)) headers.color = rng.pick(['red', 'blue', 'green']);
        if (rng.chance(0.7)) headers.size = rng.pick(['big', 'small']);
        break;
      case 'unroutable': x = 'fz.direct'; key = 'nobody'; break;
    }
    const len = rng.chance(pub.big) ? rng.int(20_000, 100_000) : rng.chance(0.1) ? rng.int(1000, 8000) : rng.int(8, 200);
    const s: Step = {
      op: 'publish', m: id, p: pub.p, x, key, persistent: rng.chance(pub.persistent), mandatory: rng.chance(pub.mandatory || 0),
      confirm: pub.confirm, len,
    };
    if (headers !== undefined) s.headers = headers;
    if (pub.ttl > 0 && rng.chance(pub.ttl)) s.expiration = rng.int(20, 300);
    return s;
  };

  for (let i = 0; i < nSteps; i++) {
    const canCrash = crashes < maxCrashes && i > 10;
    const w = {
      publish: 40,
      consume: consumers.size < 6 ? 6 : 0.5,
      cancel: consumers.size > 0 ? 2.5 : 0,
      get: 3,
      sleep: 4,
      purge: 0.6,
      delete: live.size > 2 ? 0.25 : 0,
      bind: 1.5,
      unbind: bindings.length > 0 ? 1 : 0,
      subscribe: subs.size < 3 ? 1.2 : 0.2,
      unsubscribe: subs.size > 0 ? 0.8 : 0,
      rpc: 2.5,
      disconnect: has('disconnect') && consumers.size > 0 ? 1 : 0,
      quiet: 1.5,
      kill: has('kill') && caps.kill && canCrash ? 0.9 : 0,
      torn: has('torn') && caps.torn && caps.kill && canCrash && fsync === 'always' ? 0.6 : 0,
      restart: has('restart') && caps.restart && canCrash ? 0.5 : 0,
    };
    const what = rng.weighted(w);
    switch (what) {
      case 'publish': {
        const pub = rng.pick(publishers);
        for (let k = 0, n = rng.pick([1, 1, 2, 5, 10, 30]); k < n; k++) steps.push(publish(pub));
        break;
      }
      case 'consume': {
        if (live.size === 0) break;
        const q = rng.pick([...live, ...(rng.chance(0.15) ? [DLQ] : [])]);
        const id = `c${++c}`;
        const owner = rng.int(1, owners);
        const noAck = rng.chance(0.1) && !avoid.has('noack-cancel');
        steps.push({ op: 'consume', c: id, q, prefetch: rng.pick([0, 1, 1, 3, 10, 50]), noAck, owner, behavior: behavior() });
        consumers.set(id, { q, owner });
        break;
      }
      case 'cancel': {
        const id = rng.pick([...consumers.keys()]);
        consumers.delete(id);
        steps.push({ op: 'cancel', c: id });
        break;
      }
      case 'get': {
        if (live.size === 0) break;
        steps.push({ op: 'get', q: rng.pick([...live]), owner: rng.int(1, owners), noAck: rng.chance(0.2), then: rng.pick(['ack', 'ack', 'requeue', 'reject', 'hold'] as const) });
        break;
      }
      case 'sleep':
        steps.push({ op: 'sleep', ms: rng.chance(0.2) ? rng.int(100, 400) : rng.int(1, 30) });
        break;
      case 'purge':
        if (live.size > 0) steps.push({ op: 'purge', q: rng.pick([...live]) });
        break;
      case 'delete': {
        const q = rng.pick([...live]);
        live.delete(q);
        for (const [id, cc] of consumers) if (cc.q === q) consumers.delete(id);
        for (let k = bindings.length - 1; k >= 0; k--) if (bindings[k]!.q === q) bindings.splice(k, 1);
        steps.push({ op: 'delete', q });
        break;
      }
      case 'bind': {
        if (live.size === 0) break;
        const b = bindingFor(rng.pick([...live]));
        bindings.push(b);
        steps.push({ op: 'bind', ...b });
        break;
      }
      case 'unbind': {
        const k = rng.int(0, bindings.length - 1);
        const b = bindings[k]!;
        bindings.splice(k, 1);
        steps.push({ op: 'unbind', ...b });
        break;
      }
      case 'subscribe': {
        const id = `s${++c}`;
        const e = rng.pick(EXCHANGES.filter((x) => x.type !== 'headers'));
        const key = e.type === 'topic' ? rng.pick(TOPIC_PATTERNS) : e.type === 'direct' ? rng.pick(DIRECT_KEYS) : '';
        subs.add(id);
        steps.push({ op: 'subscribe', c: id, x: e.x, key });
        break;
      }
      case 'unsubscribe': {
        const id = rng.pick([...subs]);
        subs.delete(id);
        steps.push({ op: 'cancel', c: id });
        break;
      }
      case 'rpc':
        for (let k = 0, n = rng.int(1, 4); k < n; k++) steps.push({ op: 'rpc', r: ++r, timeout: rng.int(20, 300) });
        break;
      case 'disconnect': {
        const owner = rng.pick([...consumers.values()]).owner;
        for (const [id, cc] of consumers) if (cc.owner === owner) consumers.delete(id);
        steps.push({ op: 'disconnect', owner });
        break;
      }
      case 'quiet':
        steps.push({ op: 'quiet' });
        break;
      case 'kill':
      case 'torn':
        crashes++;
        steps.push({ op: 'kill', afterMs: rng.int(0, 40), torn: what === 'torn' });
        consumers.clear();
        subs.clear();
        break;
      case 'restart':
        crashes++;
        steps.push({ op: 'restart' });
        consumers.clear();
        subs.clear();
        break;
    }
  }
  return { seed: o.seed, fsync, shards, ringBytes, segmentBytes, faults, avoid: [...avoid], rpcQueue: RPC_QUEUE, steps };
}
