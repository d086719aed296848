/**
 * The broker process of the embedded fuzz target (target-embedded.ts forks
 * the compiled file): hosts one `Broker` on the run's data directory and runs
 * the driver's commands (target.ts) verbatim, reporting what it observes
 * (deliveries, confirms, returns, ack timeouts, rpc outcomes, errors) as IPC
 * messages in the order it observes them. It keeps no history of its own: it
 * can be SIGKILLed at any instant.
 *
 * IPC: parent → child `{ id, cmd }` (cmd: a Command, or `{ op: 'open', ... }`,
 * `{ op: 'close' }`); child → parent `{ id, ok, value | error }` for a call and
 * `{ ev }` for an observation.
 */
import { Broker, type Consumer, type Message } from '../broker.js';
import { BrokerError } from '../errors.js';
import { bodyCrc, makeBody, messageOfBody, type Death } from './history.js';
import type { Command, StatsReply, TargetEvent, TargetOptions } from './target.js';

type Call = Command | ({ op: 'open' } & TargetOptions) | { op: 'close' };

let broker: Broker | null = null;
let nextTag = 0;
/** Unsettled deliveries by tag, and the tags each consumer holds. */
const held = new Map<number, Message>();
const heldBy = new Map<string, Set<number>>();
const consumers = new Map<string, Consumer>();
const consumerNames = new Map<Consumer, string>();

function emit(ev: TargetEvent): void {
  process.send!({ ev });
}

function b(): Broker {
  if (broker === null) throw new BrokerError('ERR_CLOSED', 'no broker open');
  return broker;
}

function deathOf(msg: Message): Death | undefined {
  const h = msg.headers;
  const xd = h['x-death'];
  if (!Array.isArray(xd) || xd.length === 0) return undefined;
  const d = xd[0] as Record<string, unknown>;
  const keys = Array.isArray(d['routing-keys']) ? (d['routing-keys'] as unknown[]).map(String) : [];
  const death: Death = {
    queue: String(d.queue), reason: String(d.reason), count: Number(d.count), exchange: String(d.exchange), keys,
    time: d.time instanceof Date || typeof d.time === 'number' || typeof d.time === 'bigint',
  };
  if (h['x-first-death-reason'] !== undefined) death.firstReason = String(h['x-first-death-reason']);
  if (h['x-first-death-queue'] !== undefined) death.firstQueue = String(h['x-first-death-queue']);
  return death;
}

/** Reports a delivery; returns its tag. auto: the broker settles it itself (noAck, subscription). */
function deliver(msg: Message, c: string, auto: boolean): number {
  const tag = ++nextTag;
  const idHeader = msg.headers['fz-id'];
  const m = idHeader !== undefined ? Number(idHeader) : messageOfBody(msg.body);
  const ev: TargetEvent = {
    k: 'deliver', m, q: msg.queue, c, tag, red: msg.redelivered, count: msg.deliveryCount,
    crc: bodyCrc(msg.body), len: msg.body.length,
  };
  if (auto) ev.auto = true;
  const death = deathOf(msg);
  if (death !== undefined) ev.death = death;
  if (!auto) {
    held.set(tag, msg);
    let s = heldBy.get(c);
    if (s === undefined) heldBy.set(c, (s = new Set()));
    s.add(tag);
  }
  emit(ev);
  return tag;
}

function forget(c: string): void {
  const s = heldBy.get(c);
  if (s !== undefined) for (const t of s) held.delete(t);
  heldBy.delete(c);
  const cons = consumers.get(c);
  if (cons !== undefined) consumerNames.delete(cons);
  consumers.delete(c);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(cmd: Call): Promise<unknown> {
  switch (cmd.op) {
    case 'open': {
      broker = await Broker.open({
        dir: cmd.dir, shards: cmd.shards, fsync: cmd.fsync, ringBytes: cmd.ringBytes, segmentBytes: cmd.segmentBytes, fsyncIntervalMs: 20,
      });
      broker.on('error', (e: Error) => emit({ k: 'error', code: (e as { code?: string }).code ?? 'ERR', message: e.message }));
      broker.on('return', (r: { body: Buffer; properties?: { headers?: Record<string, unknown> } }) => {
        const id = r.properties?.headers?.['fz-id'];
        emit({ k: 'return', m: id !== undefined ? Number(id) : messageOfBody(r.body) });
      });
      broker.on('consumer-cancelled', (ev: { consumer: Consumer; reason: string }) => {
        const c = consumerNames.get(ev.consumer);
        if (c === undefined) return;
        forget(c);
        emit({ k: 'timeout', c });
      });
      return broker.recovery;
    }
    case 'close': {
      const br = b();
      broker = null;
      await br.close();
      return null;
    }
    case 'declareQueue': {
      const s = cmd.spec;
      const opts: Parameters<Broker['declareQueue']>[1] = { durable: s.durable };
      if (s.messageTtl !== undefined) opts.messageTtl = s.messageTtl;
      if (s.maxLength !== undefined) opts.maxLength = s.maxLength;
      if (s.overflow !== undefined) opts.overflow = s.overflow;
      if (s.deadLetterExchange !== undefined) opts.deadLetterExchange = s.deadLetterExchange;
      if (s.deliveryLimit !== undefined) opts.deliveryLimit = s.deliveryLimit;
      if (s.consumerTimeout !== undefined) opts.consumerTimeout = s.consumerTimeout;
      return (await b().declareQueue(s.name, opts)).queue;
    }
    case 'declareExchange':
      return b().declareExchange(cmd.x, cmd.type);
    case 'bind':
      return b().bindQueue(cmd.q, cmd.x, cmd.key, cmd.args ?? {});
    case 'unbind':
      return b().unbindQueue(cmd.q, cmd.x, cmd.key, cmd.args ?? {});
    case 'publish': {
      const body = makeBody(cmd.m, cmd.len);
      const headers: Record<string, string> = { ...(cmd.headers ?? {}), 'fz-id': String(cmd.m) };
      const m = cmd.m;
      let c;
      try {
        c = b().publish(cmd.x, cmd.key, body, {
          persistent: cmd.persistent, mandatory: cmd.mandatory, headers,
          ...(cmd.expiration !== undefined ? { expiration: cmd.expiration } : {}),
        });
      } catch (e) {
        emit({ k: 'confirm', m, ok: false, code: (e as { code?: string }).code ?? 'ERR' });
        return null;
      }
      if (!c.written) emit({ k: 'backpressure', m });
      if (cmd.confirm) c.then(() => emit({ k: 'confirm', m, ok: true }), (e: unknown) => emit({ k: 'confirm', m, ok: false, code: (e as { code?: string }).code ?? 'ERR' }));
      return null;
    }
    case 'consume': {
      const c = cmd.c;
      const noAck = cmd.noAck;
      const cons = await b().consume(cmd.q, (msg) => { deliver(msg, c, noAck); }, { prefetch: cmd.prefetch, noAck, owner: cmd.owner });
      consumers.set(c, cons);
      consumerNames.set(cons, c);
      return null;
    }
    case 'subscribe': {
      const c = cmd.c;
      // subscribe() acks each message after the handler: the broker settles it, as noAck.
      const cons = await b().subscribe(cmd.x, cmd.key, (msg) => { deliver(msg, c, true); });
      consumers.set(c, cons);
      consumerNames.set(cons, c);
      return cons.queue;
    }
    case 'cancel': {
      const cons = consumers.get(cmd.c);
      forget(cmd.c);
      if (cons !== undefined) await cons.cancel();
      return null;
    }
    case 'settle': {
      const msg = held.get(cmd.tag);
      if (msg === undefined) return null;
      held.delete(cmd.tag);
      for (const s of heldBy.values()) s.delete(cmd.tag);
      try {
        if (cmd.kind === 'ack') msg.ack();
        else if (cmd.kind === 'nack') msg.nack({ requeue: cmd.requeue });
        else msg.reject(cmd.requeue);
      } catch (e) {
        emit({ k: 'error', code: (e as { code?: string }).code ?? 'ERR', message: (e as Error).message, op: 'settle' });
      }
      return null;
    }
    case 'get': {
      const msg = await b().get(cmd.q, { noAck: cmd.noAck, owner: cmd.owner });
      if (msg === null) return null;
      return deliver(msg, `get:${cmd.owner}`, cmd.noAck);
    }
    case 'release': {
      for (const [c, cons] of [...consumers]) if (cons.owner === cmd.owner) forget(c);
      const mine = heldBy.get(`get:${cmd.owner}`);
      if (mine !== undefined) forget(`get:${cmd.owner}`);
      await b().releaseOwner(cmd.owner);
      return null;
    }
    case 'purge':
      return b().purgeQueue(cmd.q);
    case 'deleteQueue':
      return b().deleteQueue(cmd.q);
    case 'replier': {
      await b().reply(cmd.q, async (msg) => {
        const text = msg.text();
        // A deterministic delay per request: replies come out of order and some after their timeout.
        let h = 0;
        for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
        await sleep(h % 40);
        return `re:${text}`;
      }, { prefetch: 16 });
      return null;
    }
    case 'request': {
      const r = cmd.r;
      b().request(cmd.q, `rq:${r}`, { timeout: cmd.timeout }).then(
        (msg) => emit({ k: 'rpc-reply', r, body: msg.text() }),
        (e: unknown) => {
          const code = (e as { code?: string }).code ?? 'ERR';
          emit(code === 'ERR_TIMEOUT' ? { k: 'rpc-timeout', r } : { k: 'rpc-error', r, code });
        },
      );
      return null;
    }
    case 'stats': {
      const s = await b().stats();
      const out: StatsReply = { queues: {}, durableSeq: s.shards.map((sh) => sh.log.durableSeq ?? 0) };
      for (const [name, q] of Object.entries(s.queues)) {
        out.queues[name] = { ready: q.ready, unacked: q.unacked, consumers: q.consumers, counters: { ...q.counters } };
      }
      return out;
    }
    case 'quiesce':
      return b().quiesce();
    case 'sync':
      return b().sync();
    default:
      throw new BrokerError('ERR_INVALID_ARGUMENT', `unknown command ${(cmd as { op: string }).op}`);
  }
}

process.on('message', (msg: { id: number; cmd: Call }) => {
  const { id, cmd } = msg;
  run(cmd).then(
    (value) => {
      process.send!({ id, ok: true, value: value ?? null }, () => {
        if (cmd.op === 'close') process.exit(0);
      });
    },
    (e: unknown) => {
      const err = e as { code?: string; message?: string };
      process.send!({ id, ok: false, error: { code: err.code ?? 'ERR', message: err.message ?? String(e) } });
    },
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
