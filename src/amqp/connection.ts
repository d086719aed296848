/**
 * One AMQP 0-9-1 connection: the handshake, channel 0, heartbeats, closing,
 * and the routing of frames to channels.
 *
 * Handshake (§2.2.4): the client sends the protocol header; we send
 * connection.start (mechanisms PLAIN and AMQPLAIN, our capabilities); the
 * client answers start-ok with its credentials; we send tune (channel-max,
 * frame-max, heartbeat); tune-ok fixes them (the client may only lower
 * them); connection.open names the vhost; open-ok. A connection not open
 * within the handshake timeout is dropped, as RabbitMQ's handshake_timeout.
 *
 * Closing (§4.2.5 / connection.close): a hard error sends connection.close
 * with the reply code and the method that caused it; from then on only
 * close and close-ok are read ("After sending this method, any received
 * methods except Close and Close-OK MUST be discarded"). A frame the reader
 * cannot parse leaves it failed: we send connection.close and stop reading.
 * Either way the socket is dropped on close-ok, when the peer closes, or
 * after a short timeout.
 *
 * When the connection goes, by close or by socket loss, every channel
 * returns its unacked messages (redelivered) and cancels its consumers, and
 * the broker releases what this connection owned: exclusive queues and
 * messages pulled with basic.get.
 */
import type { Socket } from 'node:net';
import type { Broker } from '../broker.js';
import { FRAME_MIN_SIZE, MethodId, PROTOCOL_HEADER, PROTOCOL_HEADER_SIZE, ReplyCode } from './codec/constants.js';
import { method, methodInfo, type Method } from './codec/methods.js';
import type { ContentHeader } from './codec/properties.js';
import { writeHeartbeatFrame, writeMethodFrame } from './codec/frames.js';
import type { FieldTable } from './codec/field-table.js';
import { AmqpError, AmqpProtocolHeaderError } from './errors.js';
import { FrameReader, type FrameHandler } from './frame-reader.js';
import { AmqpChannel } from './channel.js';
import { Output } from './output.js';
import type { AmqpServer } from './server.js';
import { MECHANISMS } from './auth.js';

const S_HEADER = 0; // waiting for the protocol header
const S_START = 1; // connection.start sent
const S_TUNE = 2; // connection.tune sent
const S_OPEN_WAIT = 3; // tune-ok received, waiting for connection.open
const S_OPEN = 4;
const S_CLOSING = 5; // we sent connection.close
const S_CLOSED = 6;

/** How long we wait for close-ok (or the peer's FIN) after sending connection.close. */
const CLOSE_TIMEOUT_MS = 2000;

export class AmqpConnection implements FrameHandler {
  readonly id: number;
  readonly server: AmqpServer;
  readonly broker: Broker;
  readonly socket: Socket;
  readonly out: Output;
  private readonly reader: FrameReader;
  /** The broker owner id of this connection (exclusive queues, pulled messages). */
  readonly owner: number;
  readonly remote: string;
  user: string;
  vhost: string;
  frameMax: number;
  channelMax: number;
  heartbeatSeconds: number;
  consumerCancelNotify: boolean;
  private blockedCapable: boolean;
  private authFailureClose: boolean;
  /** Set by channels: what the broker must release when the connection goes. */
  usedGet: boolean;
  usedExclusive: boolean;
  private state: number;
  private readonly channels: (AmqpChannel | undefined)[];
  private headerBytes: number;
  private readerFailed: boolean;
  // flow control
  private pausedForRing: boolean;
  private blocked: boolean;
  published: boolean;
  private readonly drainWaiters: Set<AmqpChannel>;
  private readonly alarmHeld: Set<AmqpChannel>;
  // timers
  private handshakeTimer: NodeJS.Timeout | null;
  private closeTimer: NodeJS.Timeout | null;
  private heartbeatTimer: NodeJS.Timeout | null;
  private receivedSinceTick: boolean;
  private silentTicks: number;
  private released: boolean;

  constructor(server: AmqpServer, socket: Socket, id: number) {
    this.id = id;
    this.server = server;
    this.broker = server.broker;
    this.socket = socket;
    this.out = new Output(socket);
    this.reader = new FrameReader(this, { frameMax: FRAME_MIN_SIZE, protocolHeader: true });
    this.owner = this.broker.newOwner();
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.user = '';
    this.vhost = '';
    this.frameMax = FRAME_MIN_SIZE;
    this.channelMax = 0;
    this.heartbeatSeconds = 0;
    this.consumerCancelNotify = false;
    this.blockedCapable = false;
    this.authFailureClose = false;
    this.usedGet = false;
    this.usedExclusive = false;
    this.state = S_HEADER;
    this.channels = [];
    this.headerBytes = 0;
    this.readerFailed = false;
    this.pausedForRing = false;
    this.blocked = false;
    this.published = false;
    this.drainWaiters = new Set();
    this.alarmHeld = new Set();
    this.handshakeTimer = null;
    this.closeTimer = null;
    this.heartbeatTimer = null;
    this.receivedSinceTick = false;
    this.silentTicks = 0;
    this.released = false;

    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.onData(chunk);
      server.spinner.poke();
    });
    socket.on('end', () => this.onPeerEnd());
    socket.on('error', () => { /* 'close' follows */ });
    socket.on('close', () => this.onSocketClose());
    socket.on('drain', () => this.onDrain());
    this.handshakeTimer = setTimeout(() => {
      this.server.log(`connection ${this.remote}: handshake not completed within ${this.server.handshakeTimeoutMs} ms, dropped`);
      this.socket.destroy();
    }, this.server.handshakeTimeoutMs);
  }

  get isOpen(): boolean {
    return this.state === S_OPEN;
  }

  log(line: string): void {
    this.server.log(`connection ${this.remote}${this.user ? ` (${this.user})` : ''}: ${line}`);
  }

  // ---------------------------------------------------------------- input

  private onData(chunk: Buffer): void {
    if (this.state === S_CLOSED || this.readerFailed) return;
    this.receivedSinceTick = true;
    try {
      this.reader.push(chunk);
    } catch (e) {
      this.readerFailed = true;
      this.onReaderError(e);
      return;
    }
    if (this.state === S_HEADER) {
      this.headerBytes += chunk.length;
      if (this.headerBytes >= PROTOCOL_HEADER_SIZE) this.sendStart();
    }
  }

  private onReaderError(e: unknown): void {
    if (e instanceof AmqpProtocolHeaderError) {
      // §4.2.2: write a valid protocol header, then close the socket (no connection.close).
      this.log(e.message);
      this.state = S_CLOSED;
      this.socket.end(PROTOCOL_HEADER);
      return;
    }
    const err = e instanceof AmqpError ? e : new AmqpError(ReplyCode.INTERNAL_ERROR, `internal error: ${String(e)}`);
    if (!(e instanceof AmqpError)) this.log(`internal error: ${(e as Error)?.stack ?? String(e)}`);
    if (this.state === S_HEADER) {
      this.socket.destroy();
      return;
    }
    this.closeWithError(err);
    // The reader is failed, so close-ok could not be read anyway: end our side now (the peer still
    // gets connection.close first; the close timer destroys the socket if it never closes its side).
    this.out.flush();
    this.socket.end();
  }

  /** §4.2.7: any octet counts as a sign of life, so a heartbeat frame needs nothing more (receivedSinceTick is set). */
  heartbeat(): void {}

  method(channel: number, m: Method): void {
    try {
      this.onMethod(channel, m);
    } catch (e) {
      // Keep the reader alive so that close-ok can still be read.
      if (e instanceof AmqpError && e.closes === 'connection') this.closeWithError(e.classId === 0 ? withMethod(e, m, channel) : e);
      else if (e instanceof AmqpError) this.channels[channel]?.fail(e, m);
      else {
        this.log(`internal error: ${(e as Error)?.stack ?? String(e)}`);
        this.closeWithError(withMethod(new AmqpError(ReplyCode.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`), m, channel));
      }
    }
  }

  header(channel: number, h: ContentHeader): void {
    if (this.state !== S_OPEN) return;
    this.channels[channel]?.onHeader(h);
  }

  body(channel: number, payload: Buffer, remaining: number): void {
    if (this.state !== S_OPEN) return;
    this.channels[channel]?.onBody(payload, remaining);
  }

  private onMethod(channel: number, m: Method): void {
    switch (this.state) {
      case S_HEADER:
      case S_START:
        if (m.id === MethodId.ConnectionStartOk) return this.onStartOk(m);
        if (m.id === MethodId.ConnectionClose) return this.onPeerClose();
        throw new AmqpError(ReplyCode.COMMAND_INVALID, `expected connection.start-ok, got ${methodName(m)}`);
      case S_TUNE:
        if (m.id === MethodId.ConnectionTuneOk) return this.onTuneOk(m);
        if (m.id === MethodId.ConnectionClose) return this.onPeerClose();
        throw new AmqpError(ReplyCode.COMMAND_INVALID, `expected connection.tune-ok, got ${methodName(m)}`);
      case S_OPEN_WAIT:
        if (m.id === MethodId.ConnectionOpen) return this.onOpen(m.virtualHost);
        if (m.id === MethodId.ConnectionClose) return this.onPeerClose();
        throw new AmqpError(ReplyCode.COMMAND_INVALID, `expected connection.open, got ${methodName(m)}`);
      case S_OPEN:
        break;
      case S_CLOSING:
        if (m.id === MethodId.ConnectionCloseOk) this.finish();
        else if (m.id === MethodId.ConnectionClose) {
          this.sendMethod(0, method('ConnectionCloseOk', {}));
          this.finish();
        }
        return;
      default:
        return;
    }
    if (channel === 0) {
      switch (m.id) {
        case MethodId.ConnectionClose:
          return this.onPeerClose();
        case MethodId.ConnectionUpdateSecret:
          // No expiring credentials here: accept and carry on (RabbitMQ re-checks the user).
          this.sendMethod(0, method('ConnectionUpdateSecretOk', {}));
          return;
        case MethodId.ConnectionBlocked:
        case MethodId.ConnectionUnblocked:
        case MethodId.ConnectionCloseOk:
          return;
        default:
          throw new AmqpError(ReplyCode.COMMAND_INVALID, `unexpected ${methodName(m)} on an open connection`);
      }
    }
    const ch = this.channels[channel];
    if (ch !== undefined) {
      ch.onMethod(m);
      return;
    }
    if (m.id !== MethodId.ChannelOpen) {
      // RabbitMQ: CHANNEL_ERROR - expected 'channel.open'
      throw new AmqpError(ReplyCode.CHANNEL_ERROR, `expected 'channel.open' on channel ${channel}, got ${methodName(m)}`);
    }
    if (channel > this.channelMax) {
      throw new AmqpError(ReplyCode.NOT_ALLOWED, `channel ${channel} is above the negotiated channel_max (${this.channelMax})`);
    }
    this.channels[channel] = new AmqpChannel(this, channel);
    this.sendMethod(channel, method('ChannelOpenOk', {}));
  }

  // ---------------------------------------------------------------- handshake

  private sendStart(): void {
    this.state = S_START;
    const s = this.server;
    this.sendMethod(0, method('ConnectionStart', {
      versionMajor: 0,
      versionMinor: 9,
      serverProperties: {
        product: 'ringmq',
        version: s.version,
        platform: `Node.js ${process.version}`,
        copyright: 'MIT licensed',
        information: 'https://github.com/ringmq (AMQP 0-9-1; see docs/amqp-server.md)',
        capabilities: {
          publisher_confirms: true,
          exchange_exchange_bindings: false,
          'basic.nack': true,
          consumer_cancel_notify: true,
          'connection.blocked': true,
          consumer_priorities: false,
          authentication_failure_close: true,
          per_consumer_qos: true,
          direct_reply_to: true,
        },
        cluster_name: 'ringmq',
      },
      mechanisms: Buffer.from(MECHANISMS.join(' ')),
      locales: Buffer.from('en_US'),
    }));
  }

  private onStartOk(m: Extract<Method, { id: typeof MethodId.ConnectionStartOk }>): void {
    const caps = (m.clientProperties?.capabilities ?? {}) as FieldTable;
    this.consumerCancelNotify = caps.consumer_cancel_notify === true;
    this.blockedCapable = caps['connection.blocked'] === true;
    this.authFailureClose = caps.authentication_failure_close === true;
    const mechanism = m.mechanism;
    if (!(MECHANISMS as readonly string[]).includes(mechanism)) {
      // RabbitMQ: COMMAND_INVALID - unknown authentication mechanism
      throw new AmqpError(ReplyCode.COMMAND_INVALID, `unknown authentication mechanism '${mechanism}' (offered: ${MECHANISMS.join(' ')})`);
    }
    const r = this.server.auth.authenticate(mechanism, Buffer.from(m.response), this.socket.remoteAddress);
    if (!r.ok) {
      this.log(`login refused: ${r.reason}`);
      if (this.authFailureClose) {
        this.closeWithError(new AmqpError(ReplyCode.ACCESS_REFUSED, `Login was refused using authentication mechanism ${mechanism}. For details see the broker logfile.`));
      } else {
        // Without authentication_failure_close, RabbitMQ just closes the socket.
        this.state = S_CLOSED;
        this.out.flush();
        this.socket.destroy();
      }
      return;
    }
    this.user = r.user;
    this.state = S_TUNE;
    this.sendMethod(0, method('ConnectionTune', { channelMax: this.server.channelMax, frameMax: this.server.frameMax, heartbeat: this.server.heartbeat }));
  }

  private onTuneOk(m: Extract<Method, { id: typeof MethodId.ConnectionTuneOk }>): void {
    const s = this.server;
    // tune-ok: "the client may only lower" what the server proposed; 0 means "no limit" (take ours).
    const frameMax = m.frameMax === 0 ? s.frameMax : m.frameMax;
    if (frameMax < FRAME_MIN_SIZE) throw new AmqpError(ReplyCode.NOT_ALLOWED, `frame_max=${frameMax} < ${FRAME_MIN_SIZE} min size`);
    if (frameMax > s.frameMax) throw new AmqpError(ReplyCode.NOT_ALLOWED, `frame_max=${frameMax} > ${s.frameMax} max size`);
    const channelMax = m.channelMax === 0 ? s.channelMax : m.channelMax;
    if (channelMax > s.channelMax) throw new AmqpError(ReplyCode.NOT_ALLOWED, `channel_max=${channelMax} > ${s.channelMax} max`);
    this.frameMax = frameMax;
    this.channelMax = channelMax;
    this.heartbeatSeconds = m.heartbeat;
    this.reader.setFrameMax(frameMax);
    this.state = S_OPEN_WAIT;
    if (this.heartbeatSeconds > 0) this.startHeartbeat();
  }

  private onOpen(vhost: string): void {
    if (!this.server.auth.canAccess(this.user, vhost)) {
      throw new AmqpError(ReplyCode.NOT_ALLOWED, `access to vhost '${vhost}' refused for user '${this.user}'`);
    }
    if (this.server.openCount >= this.server.maxConnections) {
      throw new AmqpError(ReplyCode.NOT_ALLOWED, `connection limit (${this.server.maxConnections}) is reached`);
    }
    this.vhost = vhost;
    this.state = S_OPEN;
    this.server.opened(this);
    if (this.handshakeTimer !== null) {
      clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
    }
    this.sendMethod(0, method('ConnectionOpenOk', {}));
    const reason = this.server.blockedReason;
    if (reason !== null) this.setBlocked(reason);
  }

  // ---------------------------------------------------------------- heartbeats

  /**
   * §4.2.7 heartbeats, as RabbitMQ: we send one when we have sent nothing for
   * half the interval, and drop a peer we heard nothing from for two intervals.
   */
  private startHeartbeat(): void {
    const tickMs = (this.heartbeatSeconds * 1000) / 2;
    this.heartbeatTimer = setInterval(() => {
      if (this.state === S_CLOSED) return;
      if (!this.out.wroteSinceCheck()) {
        writeHeartbeatFrame(this.out.w);
        this.out.schedule();
      }
      if (this.receivedSinceTick) {
        this.receivedSinceTick = false;
        this.silentTicks = 0;
      } else if (++this.silentTicks >= 4) {
        this.log(`missed heartbeats from client, timeout: ${this.heartbeatSeconds}s`);
        this.socket.destroy();
      }
    }, tickMs);
    this.heartbeatTimer.unref();
  }

  // ---------------------------------------------------------------- flow control

  /** The broker's ring to a shard is full: stop reading until it drains (backpressure, never loss). */
  ringFull(): void {
    if (this.pausedForRing) return;
    this.pausedForRing = true;
    this.updateReading();
    this.broker.drained().then(() => {
      this.pausedForRing = false;
      this.updateReading();
    }, () => {});
  }

  /** connection.blocked (RabbitMQ extension): the broker refuses publishes for now (memory or disk alarm). */
  setBlocked(reason: string): void {
    if (this.state !== S_OPEN) return;
    this.blocked = true;
    if (this.blockedCapable) this.sendMethod(0, method('ConnectionBlocked', { reason }));
    this.updateReading();
  }

  setUnblocked(): void {
    if (!this.blocked || this.state !== S_OPEN) return;
    this.blocked = false;
    if (this.blockedCapable) this.sendMethod(0, method('ConnectionUnblocked', {}));
    this.updateReading();
    const held = [...this.alarmHeld];
    this.alarmHeld.clear();
    for (const ch of held) ch.resumeAfterAlarm();
  }

  /** A channel's publish was refused by a resource alarm: it waits for 'unblocked'; the socket stops being read. */
  waitUnblocked(ch: AmqpChannel): void {
    this.alarmHeld.add(ch);
    if (!this.blocked) {
      const reason = this.broker.blocked;
      if (reason !== null) this.setBlocked(reason);
      else {
        // The alarm cleared between the refusal and now: go on at once (next tick, not re-entrantly).
        setImmediate(() => { if (this.alarmHeld.delete(ch)) ch.resumeAfterAlarm(); });
        return;
      }
    }
    this.published = true;
    this.updateReading();
  }

  /** A publishing connection stops being read while blocked (as RabbitMQ blocks publishers, not consumers). */
  notePublish(): void {
    if (!this.published) {
      this.published = true;
      if (this.blocked) this.updateReading();
    }
  }

  private updateReading(): void {
    if (this.state === S_CLOSED) return;
    if (this.pausedForRing || (this.blocked && this.published)) this.socket.pause();
    else this.socket.resume();
  }

  /** A channel waits for the socket to drain before acking its no-ack window. */
  whenDrained(ch: AmqpChannel): void {
    this.drainWaiters.add(ch);
  }

  private onDrain(): void {
    if (this.drainWaiters.size === 0) return;
    const ws = [...this.drainWaiters];
    this.drainWaiters.clear();
    for (const ch of ws) ch.settleNoAck();
  }

  // ---------------------------------------------------------------- closing

  /** A connection exception: connection.close to the peer, then wait for close-ok. */
  closeWithError(err: AmqpError): void {
    if (this.state >= S_CLOSING) return;
    if (err.replyCode !== ReplyCode.CONNECTION_FORCED) this.log(`closing: ${err.replyCode} ${err.replyText}`);
    this.sendMethod(0, method('ConnectionClose', { replyCode: err.replyCode, replyText: err.replyText, classId: err.classId, methodId: err.methodId }));
    this.state = S_CLOSING;
    this.releaseChannels();
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  /** The client closes: every channel is released, close-ok, done. */
  private onPeerClose(): void {
    this.releaseChannels();
    this.sendMethod(0, method('ConnectionCloseOk', {}));
    this.finish();
  }

  /** The handshake of closing is over: flush and close the socket. */
  private finish(): void {
    this.state = S_CLOSED;
    this.out.flush();
    this.socket.end();
    if (this.closeTimer === null) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
      this.closeTimer.unref();
    }
  }

  private onPeerEnd(): void {
    // allowHalfOpen is off: the socket ends our side too and 'close' follows.
  }

  private onSocketClose(): void {
    this.state = S_CLOSED;
    this.out.dead = true;
    for (const t of [this.handshakeTimer, this.closeTimer]) if (t !== null) clearTimeout(t);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.releaseChannels();
    this.server.closed(this);
  }

  /** Every channel gives back what it holds; then the broker releases what the connection owned. Once. */
  private releaseChannels(): void {
    for (const ch of this.channels) ch?.release();
    this.channels.length = 0;
    if (this.released) return;
    this.released = true;
    if ((this.usedGet || this.usedExclusive) && !this.broker.isClosed) {
      this.broker.releaseOwner(this.owner).catch((e: unknown) => this.log(`releasing owned queues failed: ${String(e)}`));
    }
  }

  /** A channel finished closing (close-ok either way): its number is free again. */
  channelGone(ch: AmqpChannel): void {
    if (this.channels[ch.id] === ch) this.channels[ch.id] = undefined;
  }

  /** Every open channel (for the server's broadcast of broker events). */
  openChannels(): AmqpChannel[] {
    return this.channels.filter((c): c is AmqpChannel => c !== undefined && c.isOpen);
  }

  sendMethod(channel: number, m: Method): void {
    if (this.state === S_CLOSED) return;
    writeMethodFrame(this.out.w, channel, m);
    this.out.schedule();
  }
}

function methodName(m: Method): string {
  return methodInfo(m.id)?.name ?? `method 0x${m.id.toString(16)}`;
}

function withMethod(e: AmqpError, m: Method, channel: number): AmqpError {
  return new AmqpError(e.replyCode, e.message, m.id >>> 16, m.id & 0xffff, channel);
}
