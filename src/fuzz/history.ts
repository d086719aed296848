/**
 * The history of one fuzz run: every operation the driver issued and every
 * observation it made, in the order the driver saw them, and the recorder
 * that writes it. The checker (checker.ts) reads nothing else, so a history
 * saved to a file can be checked again, and hand-written histories
 * (selfcheck.ts) exercise the checker without a broker.
 *
 * Rules the driver follows so the history can be judged:
 * - An action is recorded *before* it is sent to the broker (a settle, a
 *   cancel, a kill): if the broker dies before applying it, the history says
 *   "sent", never "not sent" for something that happened.
 * - An observation (a delivery, a confirm) is recorded when it reaches the
 *   driver; observations the broker made but the driver never received (lost
 *   with a killed process) are simply absent, which only weakens checks.
 * - `e` is the epoch: the broker incarnation (0 = first open; +1 at every
 *   restart after a kill or a clean close). Delivery tags are per epoch.
 *
 * Message identity: each published message gets a run-unique number `m`,
 * carried in the header `fz-id` and at the start of its body (`<m>:`); the
 * body is a deterministic function of (m, len), so a delivery's body is
 * checked by its CRC-32 and length.
 */
import { crc32 } from '../log/crc32.js';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

/** A queue as the workload declares it (a subset of Broker QueueOptions / AMQP x-arguments). */
export interface QueueSpec {
  name: string;
  durable: boolean;
  messageTtl?: number;
  maxLength?: number;
  overflow?: Overflow;
  deadLetterExchange?: string;
  deliveryLimit?: number;
  consumerTimeout?: number;
  /** Subscription queues (exclusive, server-named, auto-delete). */
  exclusive?: boolean;
}

/** What a dead-lettered delivery's x-death header said (its newest entry) and the x-first-death-* headers. */
export interface Death {
  queue: string;
  reason: string;
  count: number;
  exchange: string;
  keys: string[];
  /** The entry has a time. */
  time: boolean;
  firstReason?: string;
  firstQueue?: string;
}

export interface QueueStatsSnapshot {
  ready: number;
  unacked: number;
  consumers: number;
  counters: Record<string, number>;
}

export type HistoryEventBody =
  /**
   * deliveryCounts: the target reports delivery counts; orderedDeliveries: deliveries to all consumers
   * arrive in dispatch order (else order is judged per consumer). Both default to true.
   */
  | { k: 'run'; seed: number; target: string; fsync: string; shards: number; ringBytes: number; segmentBytes: number; faults: string[]; replay: string; plantedBug?: string; deliveryCounts?: boolean; orderedDeliveries?: boolean }
  | { k: 'queue'; q: string; spec: QueueSpec }
  | { k: 'exchange'; x: string; type: ExchangeType; durable: boolean }
  | { k: 'bind'; q: string; x: string; key: string; args?: Record<string, string> }
  | { k: 'unbind'; q: string; x: string; key: string; args?: Record<string, string> }
  /** A publish, recorded before it is sent. confirm: the publisher waits for (and records) the confirm. */
  | { k: 'publish'; m: number; p: number; x: string; key: string; persistent: boolean; mandatory: boolean; confirm: boolean; len: number; crc: number; headers?: Record<string, string>; expiration?: number }
  /** The publish waited for ring space (backpressure). */
  | { k: 'backpressure'; m: number }
  | { k: 'confirm'; m: number; ok: boolean; code?: string }
  | { k: 'return'; m: number }
  /**
   * A delivery: to consumer `c` ('get:<owner>' for basic.get), tag unique in the epoch.
   * auto: settled by the broker at delivery (noAck, or a subscription's own ack).
   * death: the x-death summary when the message was dead-lettered.
   */
  | { k: 'deliver'; m: number; q: string; c: string; tag: number; red: boolean; count: number; crc: number; len: number; auto?: boolean; death?: Death; corr?: string }
  | { k: 'settle'; tag: number; kind: 'ack' | 'nack' | 'reject'; requeue: boolean }
  /** A basic.get issued (its message, if any, arrives as a delivery to 'get:<owner>'; else get-empty). */
  | { k: 'get'; q: string; owner: number; noAck?: boolean }
  | { k: 'get-empty'; q: string; owner: number }
  | { k: 'consume'; c: string; q: string; prefetch: number; noAck: boolean; owner: number }
  | { k: 'cancel'; c: string }
  /** The broker cancelled consumer c: it overran the queue's ack timeout. */
  | { k: 'timeout'; c: string }
  /** Consumer/connection loss: every consumer and pulled message of `owner` is released. */
  | { k: 'disconnect'; owner: number }
  | { k: 'purge'; q: string; count: number }
  | { k: 'delete'; q: string; count: number }
  | { k: 'subscribe'; c: string; q: string; x: string; key: string }
  | { k: 'rpc-request'; r: number; q: string; timeout: number }
  | { k: 'rpc-reply'; r: number; body: string }
  | { k: 'rpc-timeout'; r: number }
  | { k: 'rpc-error'; r: number; code: string }
  /** SIGKILL of the broker process (or every shard): recorded before the signal. */
  | { k: 'kill' }
  /** While down: the newest segment of a shard's log was cut at byte `cutAt` (records past the durable point `durableSeq` only). */
  | { k: 'torn'; shard: number; file: string; durableSeq: number; cutAt: number; size: number }
  /** A clean close (drain, sync, stop). */
  | { k: 'close' }
  /** The broker is open again on the same data directory (what its recovery reported). */
  | { k: 'restart'; recovery?: unknown }
  /**
   * The broker's own counters. baseline: right after (re)open; quiet: at a quiet point (no
   * publish or settle in flight); final: after the final drain. clean: nothing was observed
   * between the quiesce and this snapshot (so history-derived counts apply exactly).
   */
  | { k: 'stats'; phase: 'baseline' | 'quiet' | 'final'; clean: boolean; queues: Record<string, QueueStatsSnapshot> }
  /** Every queue was drained with get+ack and the broker is quiet: the final accounting point. */
  | { k: 'drained' }
  /** An error the broker reported (its 'error' event) or a command that failed. */
  | { k: 'error'; code: string; message: string; op?: string }
  | { k: 'note'; text: string };

export type HistoryEvent = HistoryEventBody & { i: number; e: number; t: number };

export interface History {
  events: HistoryEvent[];
}

/** Records events with their index, epoch and time since the start of the run. */
export class Recorder {
  readonly events: HistoryEvent[] = [];
  epoch = 0;
  private readonly t0 = Date.now();
  /** Observations are dropped while frozen (the simulated crash has happened; see target tear()). */
  frozen = false;

  add(ev: HistoryEventBody): HistoryEvent {
    const full = { ...ev, i: this.events.length, e: this.epoch, t: Date.now() - this.t0 } as HistoryEvent;
    this.events.push(full);
    return full;
  }

  history(): History {
    return { events: this.events };
  }
}

/** One event per line (JSON Lines). */
export function historyToJsonl(h: History): string {
  return h.events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}

export function historyFromJsonl(text: string): History {
  return { events: text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as HistoryEvent) };
}

/** Builds a history from bodies (tests, the self-check library): indexes, epochs (bumped at restart) and times. */
export function historyOf(bodies: HistoryEventBody[]): History {
  const r = new Recorder();
  let t = 0;
  let opened = false;
  for (const b of bodies) {
    // The first 'restart' is the first open (epoch 0); each later one starts a new epoch.
    if (b.k === 'restart') {
      if (opened) r.epoch++;
      opened = true;
    }
    const ev = r.add(b);
    ev.t = t++;
  }
  return r.history();
}

// ---- message bodies ---------------------------------------------------------------

const FILL = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** The body of message m with `len` bytes (at least its prefix "<m>:"): deterministic, so only (m, len, crc) travel. */
export function makeBody(m: number, len: number): Buffer {
  const prefix = `${m}:`;
  const n = Math.max(len, prefix.length);
  const b = Buffer.allocUnsafe(n);
  b.write(prefix, 0, 'latin1');
  for (let i = prefix.length; i < n; i++) b[i] = FILL.charCodeAt((m + i) % FILL.length);
  return b;
}

export function bodyCrc(b: Uint8Array): number {
  return crc32(b, 0, b.length) >>> 0;
}

/** The message number of a body made by makeBody (NaN if it is not one). */
export function messageOfBody(b: Uint8Array): number {
  const s = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 24)).toString('latin1');
  const i = s.indexOf(':');
  return i > 0 ? Number(s.slice(0, i)) : NaN;
}

// ---- excerpts -------------------------------------------------------------------

/** One line per event, compact, for reports. */
export function formatEvent(ev: HistoryEvent): string {
  const { i, e, t, k, ...rest } = ev;
  const body = JSON.stringify(rest);
  return `#${i} e${e} +${t}ms ${k} ${body === '{}' ? '' : body}`.trimEnd();
}

/**
 * The events about message m (its publish, confirm, deliveries, settles of
 * its tags, dead letters) plus the epoch events around them (kill, torn,
 * close, restart) and consumer events of the consumers that held it: the
 * minimal context to judge it. At most `max` lines (first and last kept).
 */
export function excerptFor(h: History, m: number | null, extra: (ev: HistoryEvent) => boolean = () => false, max = 40): string[] {
  const tags = new Set<string>();
  const consumers = new Set<string>();
  const own = new Set<number>();
  let first = Infinity;
  let last = -1;
  for (const ev of h.events) {
    let take = false;
    switch (ev.k) {
      case 'publish': case 'confirm': case 'return': case 'backpressure':
        take = ev.m === m;
        break;
      case 'deliver':
        if (ev.m === m) {
          take = true;
          tags.add(`${ev.e}:${ev.tag}`);
          consumers.add(ev.c);
        }
        break;
      case 'settle':
        take = tags.has(`${ev.e}:${ev.tag}`);
        break;
      default:
        break;
    }
    if (take || extra(ev)) {
      own.add(ev.i);
      if (ev.i < first) first = ev.i;
      if (ev.i > last) last = ev.i;
    }
  }
  const lines: HistoryEvent[] = [];
  for (const ev of h.events) {
    let take = own.has(ev.i);
    if (!take && ev.i >= first) {
      switch (ev.k) {
        // Failures and epoch changes within the message's life (and the first after it).
        case 'kill': case 'torn': case 'close': case 'restart': case 'drained': case 'purge': case 'delete':
          take = true;
          break;
        case 'cancel': case 'timeout':
          take = consumers.has(ev.c) && ev.i <= last;
          break;
        default:
          break;
      }
    }
    if (take) lines.push(ev);
  }
  let out = lines.map(formatEvent);
  if (out.length > max) out = [...out.slice(0, max / 2), `... ${out.length - max} more ...`, ...out.slice(-max / 2)];
  return out;
}
