/**
 * The AMQP target: the same commands as the embedded target, over AMQP
 * 0-9-1 with amqplib (a devDependency, loaded lazily), against `ringmq
 * serve` started per run on the run's data directory (SIGKILL and restart
 * supported), or against any broker given by `--url` (no process faults; the
 * run cleans up the queues and exchanges it declared).
 *
 * Mapping: one connection for publishers (a confirm channel and a plain one),
 * one connection per owner (its consumers each on their own channel, and a
 * channel for basic.get): a disconnect closes the owner's connection, so
 * everything it held is requeued. A cancel is basic.cancel then channel.close
 * (the close requeues what the consumer held, as the embedded cancel does).
 * Request/response: a private reply queue and correlation ids; the replier
 * answers `re:<body>` after a delay drawn from the body.
 *
 * What AMQP does not expose: the broker's counters (G6 is not checked),
 * delivery counts (no x-delivery-count: the "count raised" part of G2 is not
 * checked), and one dispatch order across connections (order is checked per
 * consumer).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bodyCrc, makeBody, messageOfBody, type Death } from './history.js';
import type { Command, StatsReply, Target, TargetCaps, TargetEvent, TargetOptions, TornReport } from './target.js';
import { TargetError, tearNewest } from './target-embedded.js';

type Amqp = typeof import('amqplib');
type ChannelModel = import('amqplib').ChannelModel;
type Channel = import('amqplib').Channel;
type ConfirmChannel = import('amqplib').ConfirmChannel;
type Msg = import('amqplib').Message;

const BIN = fileURLToPath(new URL('../../../bin/ringmq.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Owner {
  conn: ChannelModel;
  getCh: Channel | null;
}

export class AmqpTarget implements Target {
  readonly name: string;
  readonly caps: TargetCaps;
  onEvent: (ev: TargetEvent) => void = () => {};
  private amqp: Amqp | null = null;
  private server: ChildProcess | null = null;
  private serverExit: Promise<void> = Promise.resolve();
  private url = '';
  private stderr = '';
  /** `ringmq serve`'s metrics endpoint (durable points for torn tails). */
  private metricsUrl: string | null = null;
  /** Bumped at every kill/restart: callbacks of an older incarnation report nothing. */
  private gen = 0;
  /**
   * Rejected (ERR_TARGET_DOWN) when the clients of this incarnation are
   * dropped (kill, clean close): an amqplib call in flight on a connection
   * that dies does not always settle (a channel close waiting for its
   * close-ok), and the driver must not wait for it forever.
   */
  private down = downSignal();
  private pubConn: ChannelModel | null = null;
  private confirmCh: ConfirmChannel | null = null;
  private plainCh: Channel | null = null;
  private readonly owners = new Map<number, Owner>();
  private readonly consumers = new Map<string, { ch: Channel; tag: string; conn: ChannelModel }>();
  private readonly held = new Map<number, { ch: Channel; msg: Msg; c: string }>();
  private nextTag = 0;
  private replyQueue: Promise<string> | null = null;
  private readonly requests = new Map<string, { r: number; timer: NodeJS.Timeout }>();
  private readonly declaredQueues = new Set<string>();
  private readonly declaredExchanges = new Set<string>();

  constructor(private readonly opts: TargetOptions) {
    const external = opts.url !== undefined;
    this.name = external ? 'amqp-external' : 'amqp';
    this.caps = { kill: !external, torn: false, restart: !external, counters: false, deliveryCount: false, quiesce: false, orderedAcrossConsumers: false };
  }

  private async lib(): Promise<Amqp> {
    if (this.amqp === null) {
      try {
        const mod = (await import('amqplib')) as Amqp & { default?: Amqp };
        this.amqp = (mod.default ?? mod) as Amqp;
      } catch (e) {
        throw new TargetError('ERR_NO_AMQPLIB', `the AMQP target needs amqplib (npm i -D amqplib): ${(e as Error).message}`);
      }
    }
    return this.amqp;
  }

  // ---- the server ------------------------------------------------------------------

  private startServer(): Promise<string> {
    const { dir, fsync, shards } = this.opts;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.RINGMQ_PLANT_BUG;
    if (this.opts.plantedBug) env.RINGMQ_PLANT_BUG = this.opts.plantedBug;
    // The metrics endpoint tells the durable point of each shard's log (torn tails are cut past it).
    const p = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--metrics-port', '0', '--data', dir, '--fsync', fsync, '--shards', String(shards)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.server = p;
    this.stderr = '';
    this.metricsUrl = null;
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => {
      if (this.stderr.length < 8000) this.stderr += d;
      const m = /metrics on (http:\/\/\S+)/.exec(this.stderr);
      if (m && this.server === p) this.metricsUrl = m[1]!;
    });
    this.serverExit = new Promise((resolve) => p.on('exit', (code, signal) => {
      if (this.server === p) {
        this.server = null;
        this.onEvent({ k: 'exit', code, signal, stderr: this.stderr });
      }
      resolve();
    }));
    return new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new TargetError('ERR_TARGET_START', `ringmq serve did not start listening: ${out}${this.stderr}`)), 30_000);
      p.stdout!.setEncoding('utf8');
      p.stdout!.on('data', (d: string) => {
        out += d;
        const m = /listening on (amqp:\/\/[^\s]+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      p.on('exit', (code) => {
        clearTimeout(timer);
        reject(new TargetError('ERR_TARGET_START', `ringmq serve exited (${code}) before listening: ${out}${this.stderr}`));
      });
    });
  }

  private async connectAll(): Promise<void> {
    const amqp = await this.lib();
    const gen = this.gen;
    const conn = await amqp.connect(this.url);
    this.guard(conn);
    this.pubConn = conn;
    this.confirmCh = await conn.createConfirmChannel();
    this.plainCh = await conn.createChannel();
    for (const ch of [this.confirmCh, this.plainCh]) {
      this.guard(ch);
      ch.on('return', (msg: Msg) => {
        if (gen === this.gen) this.onEvent({ k: 'return', m: idOf(msg) });
      });
    }
  }

  /** Errors of a connection or channel must not crash the process; a closed one is replaced on next use. */
  private guard(x: import('node:events').EventEmitter): void {
    x.on('error', () => {});
  }

  async start(): Promise<unknown> {
    mkdirSync(this.opts.dir, { recursive: true });
    this.url = this.opts.url ?? (await this.startServer());
    await this.connectAll();
    return { url: this.url };
  }

  private async owner(n: number): Promise<Owner> {
    let o = this.owners.get(n);
    if (o === undefined) {
      const conn = await (await this.lib()).connect(this.url);
      this.guard(conn);
      o = { conn, getCh: null };
      this.owners.set(n, o);
    }
    return o;
  }

  /** A short-lived channel for a topology command (a refused command closes its channel in AMQP). */
  private async withChannel<T>(f: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await this.pubConn!.createChannel();
    this.guard(ch);
    try {
      return await f(ch);
    } finally {
      await ch.close().catch(() => {});
    }
  }

  // ---- commands ----------------------------------------------------------------------

  async call<T = unknown>(cmd: Command): Promise<T> {
    if (this.pubConn === null) throw new TargetError('ERR_TARGET_DOWN', 'not connected');
    return (await Promise.race([this.run(cmd), this.down.promise])) as T;
  }

  send(cmd: Command): void {
    this.run(cmd).catch((e: unknown) => {
      const err = e as { code?: string | number; message?: string };
      if (this.pubConn === null) return;
      this.onEvent({ k: 'error', code: String(err.code ?? 'ERR'), message: err.message ?? String(e), op: cmd.op });
    });
  }

  private async run(cmd: Command): Promise<unknown> {
    const gen = this.gen;
    switch (cmd.op) {
      case 'declareQueue': {
        const s = cmd.spec;
        const args: Record<string, unknown> = {};
        if (s.messageTtl !== undefined) args['x-message-ttl'] = s.messageTtl;
        if (s.maxLength !== undefined) args['x-max-length'] = s.maxLength;
        if (s.overflow !== undefined) args['x-overflow'] = s.overflow;
        if (s.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = s.deadLetterExchange;
        if (s.deliveryLimit !== undefined) args['x-delivery-limit'] = s.deliveryLimit;
        if (s.consumerTimeout !== undefined) args['x-consumer-timeout'] = s.consumerTimeout;
        const r = await this.withChannel((ch) => ch.assertQueue(s.name, { durable: s.durable, arguments: args }));
        this.declaredQueues.add(r.queue);
        return r.queue;
      }
      case 'declareExchange':
        await this.withChannel((ch) => ch.assertExchange(cmd.x, cmd.type, { durable: true }));
        this.declaredExchanges.add(cmd.x);
        return null;
      case 'bind':
        await this.withChannel((ch) => ch.bindQueue(cmd.q, cmd.x, cmd.key, cmd.args ?? {}));
        return null;
      case 'unbind':
        await this.withChannel((ch) => ch.unbindQueue(cmd.q, cmd.x, cmd.key, cmd.args ?? {}));
        return null;
      case 'purge':
        return (await this.withChannel((ch) => ch.purgeQueue(cmd.q))).messageCount;
      case 'deleteQueue':
        this.declaredQueues.delete(cmd.q);
        return (await this.withChannel((ch) => ch.deleteQueue(cmd.q))).messageCount;
      case 'publish': {
        const body = makeBody(cmd.m, cmd.len);
        const headers: Record<string, string> = { ...(cmd.headers ?? {}), 'fz-id': String(cmd.m) };
        const options = { persistent: cmd.persistent, mandatory: cmd.mandatory, headers, ...(cmd.expiration !== undefined ? { expiration: String(cmd.expiration) } : {}) };
        const m = cmd.m;
        let ok: boolean;
        if (cmd.confirm) {
          ok = this.confirmCh!.publish(cmd.x, cmd.key, body, options, (err: unknown) => {
            if (gen !== this.gen) return;
            this.onEvent(err ? { k: 'confirm', m, ok: false, code: 'ERR_REJECTED' } : { k: 'confirm', m, ok: true });
          });
        } else {
          ok = this.plainCh!.publish(cmd.x, cmd.key, body, options);
        }
        if (!ok) this.onEvent({ k: 'backpressure', m });
        return null;
      }
      case 'consume': {
        const o = await this.owner(cmd.owner);
        const ch = await o.conn.createChannel();
        this.guard(ch);
        if (cmd.prefetch > 0) await ch.prefetch(cmd.prefetch);
        const c = cmd.c;
        const noAck = cmd.noAck;
        ch.on('close', () => {
          // Closed by the broker (ack timeout, queue deleted): the consumer is gone and its messages requeued.
          if (gen === this.gen && this.consumers.get(c)?.ch === ch) {
            this.forget(c);
            this.onEvent({ k: 'timeout', c });
          }
        });
        const r = await ch.consume(cmd.q, (msg) => {
          if (gen !== this.gen) return;
          if (msg === null) {
            if (this.consumers.get(c)?.ch === ch) {
              this.forget(c);
              this.onEvent({ k: 'timeout', c });
            }
            return;
          }
          this.deliver(msg, cmd.q, c, ch, noAck);
        }, { noAck });
        this.consumers.set(c, { ch, tag: r.consumerTag, conn: o.conn });
        return null;
      }
      case 'subscribe': {
        const ch = await this.pubConn!.createChannel();
        this.guard(ch);
        const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
        await ch.bindQueue(queue, cmd.x, cmd.key);
        const c = cmd.c;
        const r = await ch.consume(queue, (msg) => {
          if (gen === this.gen && msg !== null) this.deliver(msg, queue, c, ch, true);
        }, { noAck: true });
        this.consumers.set(c, { ch, tag: r.consumerTag, conn: this.pubConn! });
        return queue;
      }
      case 'cancel': {
        const cons = this.consumers.get(cmd.c);
        this.forget(cmd.c);
        if (cons !== undefined) {
          await cons.ch.cancel(cons.tag).catch(() => {});
          await cons.ch.close().catch(() => {});
        }
        return null;
      }
      case 'settle': {
        const h = this.held.get(cmd.tag);
        if (h === undefined) return null;
        this.held.delete(cmd.tag);
        try {
          if (cmd.kind === 'ack') h.ch.ack(h.msg);
          else if (cmd.kind === 'nack') h.ch.nack(h.msg, false, cmd.requeue);
          else h.ch.reject(h.msg, cmd.requeue);
        } catch { /* its channel is closed: the broker requeued the message */ }
        return null;
      }
      case 'get': {
        const o = await this.owner(cmd.owner);
        if (o.getCh === null) {
          o.getCh = await o.conn.createChannel();
          this.guard(o.getCh);
        }
        const msg = await o.getCh.get(cmd.q, { noAck: cmd.noAck });
        if (msg === false || gen !== this.gen) return null;
        return this.deliver(msg, cmd.q, `get:${cmd.owner}`, o.getCh, cmd.noAck);
      }
      case 'release': {
        const o = this.owners.get(cmd.owner);
        this.owners.delete(cmd.owner);
        for (const [c, cons] of [...this.consumers]) if (o !== undefined && cons.conn === o.conn) this.forget(c);
        this.forget(`get:${cmd.owner}`);
        if (o !== undefined) await o.conn.close().catch(() => {});
        return null;
      }
      case 'replier': {
        const conn = await (await this.lib()).connect(this.url);
        this.guard(conn);
        const ch = await conn.createChannel();
        this.guard(ch);
        await ch.prefetch(16);
        await ch.consume(cmd.q, (msg) => {
          if (msg === null) return;
          const text = msg.content.toString();
          let h = 0;
          for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
          setTimeout(() => {
            try {
              if (msg.properties.replyTo) ch.sendToQueue(msg.properties.replyTo, Buffer.from(`re:${text}`), { correlationId: msg.properties.correlationId });
              ch.ack(msg);
            } catch { /* the connection closed meanwhile (a kill, a restart): the request stays unanswered */ }
          }, h % 40);
        });
        this.replierConns.push(conn);
        return null;
      }
      case 'request': {
        const replyTo = await this.ensureReplyQueue();
        const corr = `${this.gen}.${cmd.r}`;
        const r = cmd.r;
        const timer = setTimeout(() => {
          if (this.requests.delete(corr) && gen === this.gen) this.onEvent({ k: 'rpc-timeout', r });
        }, cmd.timeout);
        this.requests.set(corr, { r, timer });
        this.plainCh!.sendToQueue(cmd.q, Buffer.from(`rq:${r}`), { replyTo, correlationId: corr, persistent: false });
        return null;
      }
      case 'stats':
        return { queues: {} } satisfies StatsReply;
      case 'quiesce':
      case 'sync':
        await sleep(50);
        return null;
    }
  }

  private readonly replierConns: ChannelModel[] = [];

  private ensureReplyQueue(): Promise<string> {
    const gen = this.gen;
    this.replyQueue ??= (async () => {
      const ch = await this.pubConn!.createChannel();
      this.guard(ch);
      const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
      await ch.consume(queue, (msg) => {
        if (msg === null || gen !== this.gen) return;
        const corr = String(msg.properties.correlationId ?? '');
        const req = this.requests.get(corr);
        if (req === undefined) return; // late: after its timeout; dropped
        this.requests.delete(corr);
        clearTimeout(req.timer);
        this.onEvent({ k: 'rpc-reply', r: req.r, body: msg.content.toString() });
      }, { noAck: true });
      return queue;
    })();
    return this.replyQueue;
  }

  private deliver(msg: Msg, q: string, c: string, ch: Channel, auto: boolean): number {
    const tag = ++this.nextTag;
    const h = (msg.properties.headers ?? {}) as Record<string, unknown>;
    const ev: TargetEvent = {
      k: 'deliver', m: idOf(msg), q, c, tag, red: msg.fields.redelivered === true, count: Number(h['x-delivery-count'] ?? 0),
      crc: bodyCrc(msg.content), len: msg.content.length,
    };
    if (auto) ev.auto = true;
    const death = deathOf(h);
    if (death !== undefined) ev.death = death;
    if (!auto) this.held.set(tag, { ch, msg, c });
    this.onEvent(ev);
    return tag;
  }

  private forget(c: string): void {
    for (const [t, h] of this.held) if (h.c === c) this.held.delete(t);
    this.consumers.delete(c);
  }

  // ---- faults ----------------------------------------------------------------------

  /** Per shard, the durable sequence of its log, from `ringmq serve`'s metrics (null: not known, no tear). */
  async durablePoints(): Promise<number[] | null> {
    if (this.metricsUrl === null || this.server === null) return null;
    const text = await (await fetch(this.metricsUrl)).text();
    const out: number[] = [];
    for (const m of text.matchAll(/^ringmq_shard_log_durable_sequence\{shard="(\d+)"\} (\d+)$/gm)) out[Number(m[1])] = Number(m[2]);
    if (out.length !== this.opts.shards || out.some((x) => x === undefined)) return null;
    return out;
  }

  async tear(durable: number[], random: () => number): Promise<TornReport[]> {
    return tearNewest(this.opts.dir, durable, random);
  }

  private dropClients(): void {
    this.gen++;
    this.down.reject(new TargetError('ERR_TARGET_DOWN', 'the broker went down during the call'));
    this.down = downSignal();
    const conns = [this.pubConn, ...[...this.owners.values()].map((o) => o.conn), ...this.replierConns];
    this.pubConn = null;
    this.confirmCh = null;
    this.plainCh = null;
    this.owners.clear();
    this.consumers.clear();
    this.held.clear();
    this.replierConns.length = 0;
    this.replyQueue = null;
    for (const r of this.requests.values()) clearTimeout(r.timer);
    this.requests.clear();
    for (const c of conns) c?.close().catch(() => {});
  }

  async kill(): Promise<void> {
    const p = this.server;
    this.dropClients();
    if (p === null) return;
    this.server = null;
    p.kill('SIGKILL');
    await this.serverExit;
  }

  async restart(): Promise<unknown> {
    if (this.opts.url !== undefined) throw new TargetError('ERR_TARGET_RESTART', 'an external broker (--url) is not restarted by the fuzzer');
    if (this.server !== null) throw new TargetError('ERR_TARGET_UP', 'ringmq serve still running');
    this.url = await this.startServer();
    await this.connectAll();
    return { url: this.url };
  }

  async close(): Promise<void> {
    const p = this.server;
    // Close the connections gracefully first (close-ok comes after the broker has read their settles).
    const conns = [this.pubConn, ...[...this.owners.values()].map((o) => o.conn), ...this.replierConns];
    await Promise.race([Promise.all(conns.map((c) => c?.close().catch(() => {}))), sleep(2000)]);
    this.dropClients();
    if (p === null) return;
    this.server = null;
    p.kill('SIGTERM');
    await this.serverExit;
  }

  diagnostics(): string {
    return this.stderr.trim().slice(-1500);
  }

  async dispose(): Promise<void> {
    if (this.opts.url !== undefined && this.pubConn === null && this.amqp !== null) {
      try { await this.connectAll(); } catch { /* gone */ }
    }
    if (this.opts.url !== undefined && this.pubConn !== null) {
      // An external broker: remove what this run declared.
      for (const q of this.declaredQueues) await this.withChannel((ch) => ch.deleteQueue(q)).catch(() => {});
      for (const x of this.declaredExchanges) await this.withChannel((ch) => ch.deleteExchange(x)).catch(() => {});
    }
    this.dropClients();
    const p = this.server;
    this.server = null;
    if (p !== null) {
      p.kill('SIGKILL');
      await this.serverExit;
    }
    rmSync(this.opts.dir, { recursive: true, force: true });
  }
}

function idOf(msg: Msg): number {
  const id = (msg.properties.headers as Record<string, unknown> | undefined)?.['fz-id'];
  return id !== undefined ? Number(id) : messageOfBody(msg.content);
}

function deathOf(h: Record<string, unknown>): Death | undefined {
  const xd = h['x-death'];
  if (!Array.isArray(xd) || xd.length === 0) return undefined;
  const d = xd[0] as Record<string, unknown>;
  const death: Death = {
    queue: String(d.queue), reason: String(d.reason), count: Number(d.count ?? 0), exchange: String(d.exchange ?? ''),
    keys: Array.isArray(d['routing-keys']) ? (d['routing-keys'] as unknown[]).map(String) : [], time: d.time !== undefined && d.time !== null,
  };
  if (h['x-first-death-reason'] !== undefined) death.firstReason = String(h['x-first-death-reason']);
  if (h['x-first-death-queue'] !== undefined) death.firstQueue = String(h['x-first-death-queue']);
  return death;
}

function downSignal(): { promise: Promise<never>; reject: (e: Error) => void } {
  let reject!: (e: Error) => void;
  const promise = new Promise<never>((_res, rej) => { reject = rej; });
  promise.catch(() => {}); // only ever observed through a race
  return { promise, reject };
}
