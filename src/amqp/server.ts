/**
 * The AMQP 0-9-1 server: a net.Server in front of one embedded Broker.
 *
 * It accepts connections (each an AmqpConnection), counts the open ones
 * against `maxConnections` (refused at connection.open with 530, as
 * RabbitMQ's connection limit), and turns broker events into protocol:
 *
 *   'return'            (mandatory, unroutable) -> basic.return to the channel publishing it;
 *                       the broker emits it synchronously inside publish(), so the publisher
 *                       is the one in `currentPublisher`
 *   'queue-deleted'     -> basic.cancel to that queue's consumers (consumer_cancel_notify)
 *   'consumer-cancelled'(ack timeout) -> channel.close 406 on the consumer's channel
 *   'blocked'/'unblocked' -> connection.blocked / unblocked, publishers stop being read
 *
 * Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`) lives here too: a
 * channel consuming the pseudo-queue gets a secret address; a publish to
 * the default exchange with that address as routing key is delivered
 * straight to the channel, never queued.
 *
 * close(): connection.close 320 CONNECTION_FORCED to every connection (their
 * unacked messages go back to the queues), wait briefly for them to go,
 * stop listening. The Broker is not closed here (its owner closes it).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Broker, Consumer } from '../broker.js';
import { spinSetting } from '../engine/placement.js';
import { cpuYield } from '../engine/cpu-yield.js';
import { FRAME_MIN_SIZE, ReplyCode } from './codec/constants.js';
import type { BasicProperties } from './codec/properties.js';
import { AmqpError } from './errors.js';
import { Authenticator } from './auth.js';
import { AmqpConnection } from './connection.js';
import { REPLY_TO_PREFIX, type AmqpChannel } from './channel.js';

export interface AmqpServerOptions {
  /** Default 127.0.0.1 (loopback only, as design.md fixes). */
  host?: string;
  /** Default 5672; 0 picks a free port. */
  port?: number;
  auth?: Authenticator;
  /** Open connections at most; more are refused at connection.open (530). Default 4096. */
  maxConnections?: number;
  /** Proposed in connection.tune; clients may only lower it. Default 131072 (RabbitMQ's). */
  frameMax?: number;
  /** Default 2047 (RabbitMQ's). */
  channelMax?: number;
  /** Seconds; proposed in connection.tune. Default 60 (RabbitMQ's). */
  heartbeat?: number;
  /** A connection must be open within this long. Default 10 s (RabbitMQ's handshake_timeout). */
  handshakeTimeoutMs?: number;
  /** Where the server logs (refused logins, closed connections, internal errors). Default stderr. */
  log?: (line: string) => void;
  /**
   * µs the event loop keeps polling its sockets (without sleeping in
   * epoll_wait) after socket data, so that a client answering within that
   * time (request-response) is read without a wake of this thread. Default
   * 40 when there are 2 cores or more and the broker's shards <= cores,
   * else 0; RINGMQ_LOOP_SPIN_US
   * overrides. See docs/amqp-server.md.
   */
  loopSpinUs?: number;
}

/**
 * Keeps the event loop polling for a while after socket data: a pending
 * immediate makes libuv poll with a zero timeout, so the thread does not
 * sleep in epoll_wait. On a VM, the wake of a sleeping thread (of its idle
 * vCPU) costs tens of µs; a client that answers within the spin is read at
 * once. One Immediate per loop turn while spinning, none otherwise.
 */
export class LoopSpinner {
  private until = 0;
  private running = false;
  stopped = false;
  /** Loop turns spun so far (for tests and diagnostics). */
  turns = 0;
  constructor(private readonly spinMs: number) {}

  /** Socket data came: spin until spinMs from now. */
  poke(): void {
    if (this.spinMs <= 0 || this.stopped) return;
    this.until = performance.now() + this.spinMs;
    if (!this.running) {
      this.running = true;
      setImmediate(this.step);
    }
  }

  private readonly step = (): void => {
    this.turns++;
    // The peer our last write woke may be queued on this core: let it run first.
    cpuYield();
    if (!this.stopped && performance.now() < this.until) setImmediate(this.step);
    else this.running = false;
  };
}

export class AmqpServer {
  readonly broker: Broker;
  readonly auth: Authenticator;
  readonly host: string;
  readonly maxConnections: number;
  readonly frameMax: number;
  readonly channelMax: number;
  readonly heartbeat: number;
  readonly handshakeTimeoutMs: number;
  readonly version: string;
  /** The channel inside broker.publish() right now (its 'return' event goes there). */
  currentPublisher: AmqpChannel | null;
  /** Why the broker blocks publishers, or null. */
  blockedReason: string | null;
  private readonly port: number;
  private readonly net: Server;
  private readonly connections = new Set<AmqpConnection>();
  private open = 0;
  private nextConnection = 1;
  private nextConsumerTag = 1;
  private readonly tagPrefix = randomBytes(6).toString('base64url');
  private readonly replyTo = new Map<string, AmqpChannel>();
  private readonly replyTokens = new Map<AmqpChannel, string>();
  private readonly logFn: (line: string) => void;
  private readonly listeners: [string, (...args: never[]) => void][];
  private closing = false;
  /** @internal Connections poke it on socket data (AmqpServerOptions.loopSpinUs). */
  readonly spinner: LoopSpinner;
  readonly loopSpinUs: number;

  constructor(broker: Broker, opts: AmqpServerOptions = {}) {
    this.broker = broker;
    this.auth = opts.auth ?? new Authenticator();
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 5672;
    this.maxConnections = opts.maxConnections ?? 4096;
    this.frameMax = opts.frameMax ?? 131072;
    if (!Number.isInteger(this.frameMax) || this.frameMax < FRAME_MIN_SIZE) throw new RangeError(`frameMax must be an integer >= ${FRAME_MIN_SIZE}`);
    this.channelMax = opts.channelMax ?? 2047;
    this.heartbeat = opts.heartbeat ?? 60;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
    this.logFn = opts.log ?? ((line) => process.stderr.write(`ringmq: ${line}\n`));
    this.version = packageVersion();
    this.loopSpinUs = spinSetting(process.env['RINGMQ_LOOP_SPIN_US'], opts.loopSpinUs, 40, broker.shardCount);
    if (!Number.isFinite(this.loopSpinUs) || this.loopSpinUs < 0 || this.loopSpinUs > 10_000) throw new RangeError(`loopSpinUs must be in [0, 10000], got ${this.loopSpinUs}`);
    this.spinner = new LoopSpinner(this.loopSpinUs / 1000);
    this.currentPublisher = null;
    this.blockedReason = null;
    this.net = createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.net.on('error', (e) => this.log(`listener error: ${e.message}`));
    this.listeners = [
      ['return', (r: Parameters<AmqpChannel['sendReturn']>[0]) => this.currentPublisher?.sendReturn(r)],
      ['queue-deleted', (name: string) => { for (const c of this.connections) for (const ch of c.openChannels()) ch.onQueueDeleted(name); }],
      ['consumer-cancelled', (ev: { consumer: Consumer }) => {
        for (const c of this.connections) for (const ch of c.openChannels()) if (ch.onConsumerTimeout(ev.consumer)) return;
      }],
      ['blocked', (reason: unknown) => {
        this.blockedReason = typeof reason === 'string' ? reason : 'resource alarm';
        for (const c of this.connections) c.setBlocked(this.blockedReason);
      }],
      ['unblocked', () => {
        this.blockedReason = null;
        for (const c of this.connections) c.setUnblocked();
      }],
      ['error', (e: Error) => this.log(`broker: ${e.message}`)],
    ];
    for (const [ev, fn] of this.listeners) broker.on(ev, fn as (...a: unknown[]) => void);
  }

  /** Starts listening; resolves with the address (the real port when 0 was asked). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.net.once('error', onError);
      this.net.listen(this.port, this.host, () => {
        this.net.off('error', onError);
        resolve(this.net.address() as AddressInfo);
      });
    });
  }

  get address(): AddressInfo | null {
    return this.net.address() as AddressInfo | null;
  }

  /** Open connections (past connection.open). */
  get openCount(): number {
    return this.open;
  }

  /** For the metrics endpoint: open connections and their open channels. */
  stats(): { connections: number; channels: number } {
    let channels = 0;
    for (const c of this.connections) channels += c.openChannels().length;
    return { connections: this.open, channels };
  }

  log(line: string): void {
    this.logFn(line);
  }

  private accept(socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const c = new AmqpConnection(this, socket, this.nextConnection++);
    this.connections.add(c);
  }

  /** @internal A connection passed connection.open. */
  opened(c: AmqpConnection): void {
    void c;
    this.open++;
  }

  /** @internal A connection's socket closed. */
  closed(c: AmqpConnection): void {
    if (!this.connections.delete(c)) return;
    if (c.vhost !== '') this.open--;
  }

  newConsumerTag(): string {
    return `amq.ctag-${this.tagPrefix}-${this.nextConsumerTag++}`;
  }

  // ---- direct reply-to

  /** @internal A channel consumes amq.rabbitmq.reply-to: its secret token (the address is REPLY_TO_PREFIX + token). */
  registerReplyTo(ch: AmqpChannel): string {
    const token = randomBytes(12).toString('base64url');
    this.replyTo.set(token, ch);
    this.replyTokens.set(ch, token);
    return token;
  }

  /** @internal */
  unregisterReplyTo(ch: AmqpChannel): void {
    const t = this.replyTokens.get(ch);
    if (t === undefined) return;
    this.replyTokens.delete(ch);
    this.replyTo.delete(t);
  }

  /** @internal A publish to a reply-to address: straight to its channel; if it is gone, dropped (or returned, mandatory). */
  directReply(from: AmqpChannel, routingKey: string, mandatory: boolean, props: BasicProperties, body: Buffer): void {
    const ch = this.replyTo.get(routingKey.slice(REPLY_TO_PREFIX.length));
    if (ch !== undefined && ch.deliverDirect(routingKey, props, body)) return;
    if (mandatory) from.sendReturn({ exchange: '', routingKey, body, properties: props, replyCode: ReplyCode.NO_ROUTE, replyText: 'NO_ROUTE' });
  }

  /**
   * Closes every connection with 320 CONNECTION_FORCED and stops listening.
   * Waits up to `graceMs` for the clients to answer close-ok, then drops the rest.
   */
  async close(graceMs = 2000): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.spinner.stopped = true;
    const stopped = new Promise<void>((r) => this.net.close(() => r()));
    for (const c of this.connections) {
      if (c.isOpen) c.closeWithError(new AmqpError(ReplyCode.CONNECTION_FORCED, "broker forced connection closure with reason 'shutdown'"));
      else c.socket.destroy();
    }
    const until = Date.now() + graceMs;
    while (this.connections.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    for (const c of this.connections) c.socket.destroy();
    await stopped;
    for (const [ev, fn] of this.listeners) this.broker.off(ev, fn as (...a: unknown[]) => void);
  }
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
