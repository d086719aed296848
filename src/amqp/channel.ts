/**
 * One AMQP channel: its methods mapped onto the embedded Broker.
 *
 * Order. A channel handles its methods in the order they arrive (§4.2.1
 * "the order of method frames on a channel is significant"). Most complete
 * at once; those that wait for the broker (declare, bind, consume, get, ...)
 * make the channel busy, and methods and completed publishes that arrive
 * meanwhile wait in `pending`, so a publish pipelined after a queue.declare
 * sees the queue. The hot methods (basic.publish and its content, basic.ack)
 * run synchronously when the channel is not busy and allocate nothing of
 * their own.
 *
 * Content (§4.2.6): basic.publish, then one content header, then body frames
 * adding up to the header's body size (the frame reader checks the
 * sequence). A body in one frame is passed to the broker as a view of the
 * socket chunk, not copied; a body in several frames is copied once into a
 * buffer of its declared size, checked against the max message size first.
 *
 * Deliveries get channel delivery tags 1, 2, 3, ... (§1.8.3.13 "The server
 * MUST NOT use a zero value for delivery tags"). Unacked ones are kept by
 * tag in a Map, whose insertion order is tag order, so `multiple` walks it
 * from the front.
 *
 * Errors: a soft error (403, 404, 405, 406) closes this channel with
 * channel.close naming the method that caused it; a hard one closes the
 * connection. When the channel goes (either way), its unacked messages go
 * back to their queues (nack with requeue: redelivered) and its consumers
 * are cancelled.
 */
import { Confirm, type Broker, type Consumer, type Message, type PublishOptions, type Transaction } from '../broker.js';
import { BrokerError } from '../errors.js';
import { ReplyCode } from './codec/constants.js';
import { method, methodInfo, MethodId, type BasicPublish, type Method } from './codec/methods.js';
import type { BasicProperties, ContentHeader } from './codec/properties.js';
import type { FieldTable } from './codec/field-table.js';
import { writeHeaderFrame, writeMethodFrame } from './codec/frames.js';
import { AmqpError } from './errors.js';
import { plainArguments, queueOptionsFromArguments } from './arguments.js';
import type { AmqpConnection } from './connection.js';
import { microtask } from '../engine/microtask.js';

/** Direct reply-to (RabbitMQ): consume from this pseudo-queue, publish with reply-to set to it. */
export const REPLY_TO = 'amq.rabbitmq.reply-to';
export const REPLY_TO_PREFIX = 'amq.rabbitmq.reply-to.';

/**
 * A no-ack AMQP consumer is a broker consumer with acks and this prefetch
 * window, acked (multiple) by the server once the deliveries have been
 * handed to the socket and the socket is not congested: a slow client then
 * stops the queue instead of filling the server's memory. Messages count as
 * acked when written, as RabbitMQ counts them when sent.
 */
const NO_ACK_WINDOW = 2048;

const OPEN = 0;
/** We sent channel.close and wait for channel.close-ok; everything else on the channel is dropped (§4.2.5 / channel.close). */
const CLOSING = 1;
const CLOSED = 2;

const EMPTY = Buffer.alloc(0);
/** The confirm of a publish that is done at once (direct reply-to). */
const DONE = new Confirm(0);

const EXCHANGE_TYPES = new Set(['direct', 'fanout', 'topic', 'headers']);

class ChannelConsumer {
  readonly tag: string;
  /** The tag as an AMQP short string (length octet first), written into every basic.deliver. */
  readonly tagBytes: Buffer;
  readonly queue: string;
  readonly noAck: boolean;
  consumer: Consumer | null;
  /** False until consume-ok is written; deliveries that come before wait in `early`. */
  ready: boolean;
  early: Message[] | null;
  /** no-ack: the written delivery with the highest message id since the last window ack. */
  ackMark: Message | null;
  constructor(tag: string, queue: string, noAck: boolean) {
    this.tag = tag;
    const b = Buffer.from(tag);
    this.tagBytes = Buffer.concat([Buffer.from([b.length]), b]);
    this.queue = queue;
    this.noAck = noAck;
    this.consumer = null;
    this.ready = false;
    this.early = null;
    this.ackMark = null;
  }
}

interface PendingOp {
  m: Method;
  /** For a basic.publish: its properties and body. */
  props: BasicProperties | null;
  body: Buffer | null;
}

export class AmqpChannel {
  readonly id: number;
  private readonly conn: AmqpConnection;
  private readonly broker: Broker;
  private state: number;
  // ordering
  private busy: boolean;
  private pending: PendingOp[];
  // content being received
  private pubMethod: BasicPublish | null;
  private pubHeader: ContentHeader | null;
  private pubBuf: Buffer | null;
  private pubFilled: number;
  /** Reused for every publish outside a transaction (the broker reads it synchronously). */
  private readonly pubOpts: PublishOptions;
  // deliveries
  private nextTag: number;
  private readonly unacked: Map<number, Message>;
  private readonly consumers: Map<string, ChannelConsumer>;
  private prefetch: number;
  private flowActive: boolean;
  private held: { cc: ChannelConsumer; m: Message }[];
  private noAckScheduled: boolean;
  private lastQueue: string;
  // publisher confirms
  private confirmMode: boolean;
  private confirms: (Confirm | null)[];
  private confirmHead: number;
  /** Publish sequence number of confirms[0]. */
  private confirmBase: number;
  private publishSeq: number;
  private confirmsDone: number;
  private confirmScheduled: boolean;
  // transactions
  private tx: Transaction | null;
  private txSettled: Set<number> | null;
  // direct reply-to
  private replyConsumer: ChannelConsumer | null;
  private replyAddress: string;

  private readonly onConfirmSettled: () => void;
  private readonly flushConfirmsFn: () => void;
  private readonly settleNoAckFn: () => void;

  constructor(conn: AmqpConnection, id: number) {
    this.id = id;
    this.conn = conn;
    this.broker = conn.broker;
    this.state = OPEN;
    this.busy = false;
    this.pending = [];
    this.pubMethod = null;
    this.pubHeader = null;
    this.pubBuf = null;
    this.pubFilled = 0;
    this.pubOpts = { persistent: false, mandatory: false, properties: {}, expiration: undefined };
    this.nextTag = 1;
    this.unacked = new Map();
    this.consumers = new Map();
    this.prefetch = 0;
    this.flowActive = true;
    this.held = [];
    this.noAckScheduled = false;
    this.lastQueue = '';
    this.confirmMode = false;
    this.confirms = [];
    this.confirmHead = 0;
    this.confirmBase = 1;
    this.publishSeq = 0;
    this.confirmsDone = 0;
    this.confirmScheduled = false;
    this.tx = null;
    this.txSettled = null;
    this.replyConsumer = null;
    this.replyAddress = '';
    this.onConfirmSettled = () => {
      this.confirmsDone++;
      this.scheduleConfirms();
    };
    this.flushConfirmsFn = () => this.flushConfirms();
    this.settleNoAckFn = () => this.settleNoAck();
  }

  get isOpen(): boolean {
    return this.state === OPEN;
  }

  /** Unacked deliveries (tests, diagnostics). */
  get unackedCount(): number {
    return this.unacked.size;
  }

  // ---------------------------------------------------------------- frames in

  onMethod(m: Method): void {
    if (this.state !== OPEN) {
      // §4.2.5 channel.close: "After sending this method, any received methods except Close and
      // Close-OK MUST be discarded."
      if (m.id === MethodId.ChannelClose) this.send(method('ChannelCloseOk', {}));
      else if (m.id === MethodId.ChannelCloseOk && this.state === CLOSING) this.conn.channelGone(this);
      return;
    }
    if (m.id === MethodId.BasicPublish) {
      // Its content follows; it is handled (in order) once complete.
      this.pubMethod = m;
      return;
    }
    if (this.busy) {
      this.pending.push({ m, props: null, body: null });
      return;
    }
    this.run(m, null, null);
  }

  onHeader(h: ContentHeader): void {
    if (this.state !== OPEN || this.pubMethod === null) return;
    const max = this.broker.maxMessageBytes;
    if (h.bodySize > max) {
      const m = this.pubMethod;
      this.pubMethod = null;
      // RabbitMQ: PRECONDITION_FAILED - message size N is larger than configured max size M. The body frames that follow are dropped (closing).
      this.fail(new AmqpError(ReplyCode.PRECONDITION_FAILED, `message size ${h.bodySize} is larger than configured max size ${max}`), m);
      return;
    }
    this.pubHeader = h;
    this.pubFilled = 0;
    if (h.bodySize === 0) this.completePublish(EMPTY);
  }

  onBody(payload: Buffer, remaining: number): void {
    if (this.state !== OPEN || this.pubHeader === null) return;
    if (remaining === 0 && this.pubFilled === 0) {
      this.completePublish(payload); // the whole body in one frame: a view of the socket chunk
      return;
    }
    let buf = this.pubBuf;
    if (buf === null) buf = this.pubBuf = Buffer.allocUnsafe(this.pubHeader.bodySize);
    payload.copy(buf, this.pubFilled);
    this.pubFilled += payload.length;
    if (remaining === 0) {
      this.pubBuf = null;
      this.completePublish(buf);
    }
  }

  private completePublish(body: Buffer): void {
    const m = this.pubMethod!;
    const props = this.pubHeader!.properties;
    this.pubMethod = null;
    this.pubHeader = null;
    if (this.busy) this.pending.push({ m, props, body });
    else this.publish(m, props, body);
  }

  // ---------------------------------------------------------------- ordering

  private run(m: Method, props: BasicProperties | null, body: Buffer | null): void {
    if (props !== null) {
      this.publish(m as BasicPublish, props, body!);
      return;
    }
    let r: Promise<void> | void;
    try {
      r = this.dispatch(m);
    } catch (e) {
      this.fail(e, m);
      return;
    }
    if (r !== undefined) {
      this.busy = true;
      r.then(() => this.resume(), (e: unknown) => {
        this.fail(e, m);
        this.resume();
      });
    }
  }

  /** @internal The broker's resource alarm cleared: publishes held by it go on. */
  resumeAfterAlarm(): void {
    if (this.state === OPEN) this.resume();
  }

  private resume(): void {
    this.busy = false;
    while (!this.busy && this.state === OPEN && this.pending.length > 0) {
      const op = this.pending.shift()!;
      this.run(op.m, op.props, op.body);
    }
  }

  // ---------------------------------------------------------------- errors

  /** Turns a thrown error into a channel or connection close, naming the method that caused it. */
  fail(e: unknown, m: Method | null): void {
    const info = m === null ? undefined : methodInfo(m.id);
    const classId = info?.classId ?? 0;
    const methodId = info?.methodId ?? 0;
    let err: AmqpError;
    if (e instanceof AmqpError) {
      err = e.classId === 0 && classId !== 0 ? new AmqpError(e.replyCode, e.message, classId, methodId, this.id) : e;
    } else if (e instanceof BrokerError) {
      err = new AmqpError(e.replyCode, e.message, classId, methodId, this.id);
    } else {
      this.conn.log(`internal error on channel ${this.id}${info ? ` in ${info.name}` : ''}: ${(e as Error)?.stack ?? String(e)}`);
      err = new AmqpError(ReplyCode.INTERNAL_ERROR, `internal error: ${(e as Error)?.message ?? String(e)}`, classId, methodId, this.id);
    }
    if (err.closes === 'connection') this.conn.closeWithError(err);
    else this.closeWithError(err);
  }

  /** Server-initiated channel.close (a soft error). */
  closeWithError(err: AmqpError): void {
    if (this.state !== OPEN) return;
    this.send(method('ChannelClose', { replyCode: err.replyCode, replyText: err.replyText, classId: err.classId, methodId: err.methodId }));
    this.state = CLOSING;
    this.release();
  }

  // ---------------------------------------------------------------- the methods

  private dispatch(m: Method): Promise<void> | void {
    switch (m.id) {
      case MethodId.BasicAck: return this.settle(m.deliveryTag, m.multiple, 0, false);
      case MethodId.BasicNack: return this.settle(m.deliveryTag, m.multiple, 1, m.requeue);
      case MethodId.BasicReject: return this.settle(m.deliveryTag, false, 1, m.requeue);
      case MethodId.BasicQos: {
        // RabbitMQ: prefetch_size is not implemented (540). global=true would share the count
        // across the channel's consumers; here every consumer gets it (docs/amqp-server.md).
        if (m.prefetchSize !== 0) throw new AmqpError(ReplyCode.NOT_IMPLEMENTED, `prefetch_size!=0 (${m.prefetchSize})`);
        this.prefetch = m.prefetchCount;
        this.send(method('BasicQosOk', {}));
        return;
      }
      case MethodId.BasicConsume: return this.consume(m.queue, m.consumerTag, m.noAck, m.exclusive, m.nowait);
      case MethodId.BasicCancel: return this.cancel(m.consumerTag, m.nowait);
      case MethodId.BasicGet: return this.get(m.queue, m.noAck);
      case MethodId.BasicRecover:
      case MethodId.BasicRecoverAsync: {
        // Both requeue (requeue=false, "redeliver to the same consumer", is served as requeue: docs).
        for (const [t, msg] of this.unacked) {
          if (this.txSettled?.has(t)) continue;
          this.unacked.delete(t);
          settleQuiet(msg, 1, true);
        }
        if (m.id === MethodId.BasicRecover) this.send(method('BasicRecoverOk', {}));
        return;
      }
      case MethodId.QueueDeclare: return this.queueDeclare(m);
      case MethodId.QueueBind: return this.queueBind(m.queue, m.exchange, m.routingKey, m.arguments, m.nowait, true);
      case MethodId.QueueUnbind: return this.queueBind(m.queue, m.exchange, m.routingKey, m.arguments, false, false);
      case MethodId.QueuePurge: return this.queuePurge(m.queue, m.nowait);
      case MethodId.QueueDelete: return this.queueDelete(m.queue, m.ifUnused, m.ifEmpty, m.nowait);
      case MethodId.ExchangeDeclare: return this.exchangeDeclare(m);
      case MethodId.ExchangeDelete: return this.exchangeDelete(m.exchange, m.ifUnused, m.nowait);
      case MethodId.ExchangeBind:
      case MethodId.ExchangeUnbind:
        throw new AmqpError(ReplyCode.NOT_IMPLEMENTED, 'exchange-to-exchange bindings are not implemented');
      case MethodId.ConfirmSelect: {
        if (this.tx !== null) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'cannot switch from tx to confirm mode');
        this.confirmMode = true;
        if (!m.nowait) this.send(method('ConfirmSelectOk', {}));
        return;
      }
      case MethodId.TxSelect: {
        if (this.confirmMode) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'cannot switch from confirm to tx mode');
        if (this.tx === null) {
          this.tx = this.broker.transaction();
          this.txSettled = new Set();
        }
        this.send(method('TxSelectOk', {}));
        return;
      }
      case MethodId.TxCommit: return this.txCommit();
      case MethodId.TxRollback: {
        if (this.tx === null) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'channel is not transactional');
        this.tx.rollback();
        this.txSettled!.clear();
        this.send(method('TxRollbackOk', {}));
        return;
      }
      case MethodId.ChannelFlow: {
        this.flowActive = m.active;
        this.send(method('ChannelFlowOk', { active: m.active }));
        if (m.active) this.releaseHeld();
        return;
      }
      case MethodId.ChannelClose: {
        this.state = CLOSED;
        this.release();
        this.send(method('ChannelCloseOk', {}));
        this.conn.channelGone(this);
        return;
      }
      case MethodId.ChannelOpen:
        // §4.2.5 / RabbitMQ: "second 'channel.open' seen"
        throw new AmqpError(ReplyCode.CHANNEL_ERROR, `second 'channel.open' seen on channel ${this.id}`);
      case MethodId.ChannelFlowOk:
      case MethodId.ChannelCloseOk:
        return; // answers to methods we never send on an open channel: ignored
      default: {
        const info = methodInfo(m.id);
        // A method only a server sends (deliver, get-ok, ...) or of class connection on a channel.
        throw new AmqpError(ReplyCode.COMMAND_INVALID, `unexpected method ${info?.name ?? m.id} from a client`);
      }
    }
  }

  // ---- basic.publish

  private publish(m: BasicPublish, props: BasicProperties, body: Buffer): void {
    try {
      // RabbitMQ: immediate is not implemented (540 closes the connection).
      if (m.immediate) throw new AmqpError(ReplyCode.NOT_IMPLEMENTED, 'immediate=true');
      if (props.userId !== undefined && props.userId !== this.conn.user) {
        throw new AmqpError(ReplyCode.PRECONDITION_FAILED, `user_id property set to '${props.userId}' but authenticated user was '${this.conn.user}'`);
      }
      let expiration: number | undefined;
      if (props.expiration !== undefined) {
        // RabbitMQ: the expiration property is a string of a non-negative integer (ms).
        if (!/^\d{1,15}$/.test(props.expiration)) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, `invalid expiration '${props.expiration}' (must be a string of a non-negative integer, in ms)`);
        expiration = Number(props.expiration);
      }
      if (props.replyTo === REPLY_TO) {
        if (this.replyConsumer === null) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'fast reply consumer does not exist');
        props.replyTo = this.replyAddress;
      }
      if (m.exchange === '' && m.routingKey.startsWith(REPLY_TO_PREFIX)) {
        this.conn.server.directReply(this, m.routingKey, m.mandatory, props, body);
        if (this.confirmMode) this.trackConfirm(DONE);
        return;
      }
      if (this.tx !== null) {
        this.tx.publish(m.exchange, m.routingKey, body, { persistent: props.deliveryMode === 2, mandatory: m.mandatory, properties: props, expiration });
        return;
      }
      if (!this.conn.published) this.conn.notePublish();
      const o = this.pubOpts;
      o.persistent = props.deliveryMode === 2;
      o.mandatory = m.mandatory;
      o.properties = props;
      o.expiration = expiration;
      const server = this.conn.server;
      server.currentPublisher = this;
      let c: Confirm;
      try {
        c = this.broker.publish(m.exchange, m.routingKey, body, o);
      } finally {
        server.currentPublisher = null;
        o.properties = undefined;
      }
      if (c.error !== null && c.error.code === 'ERR_BLOCKED') {
        // A resource alarm (G10): as RabbitMQ, the publisher is blocked, not refused. The publish
        // waits at the head of this channel's queue (the socket stops being read) and runs again
        // once the alarm clears; nothing is lost and order is kept.
        this.pending.unshift({ m, props, body });
        this.busy = true;
        this.conn.waitUnblocked(this);
        return;
      }
      if (this.confirmMode) this.trackConfirm(c);
      if (!c.written) this.conn.ringFull();
    } catch (e) {
      this.fail(e, m);
    }
  }

  /** basic.return of an unroutable mandatory publish (called while this channel publishes). */
  sendReturn(r: { exchange: string; routingKey: string; body: Buffer; properties: BasicProperties | undefined; replyCode: number; replyText: string }): void {
    if (this.state !== OPEN) return;
    const out = this.conn.out;
    writeMethodFrame(out.w, this.id, method('BasicReturn', { replyCode: r.replyCode, replyText: r.replyText, exchange: r.exchange, routingKey: r.routingKey }));
    writeHeaderFrame(out.w, this.id, r.body.length, r.properties ?? {});
    out.body(this.id, r.body, this.conn.frameMax);
    out.schedule();
  }

  // ---- publisher confirms

  private trackConfirm(c: Confirm): void {
    this.publishSeq++;
    this.confirms.push(c);
    if (c.done) {
      this.confirmsDone++;
      this.scheduleConfirms();
    } else {
      c.onSettled = this.onConfirmSettled;
    }
  }

  private scheduleConfirms(): void {
    if (!this.confirmScheduled) {
      this.confirmScheduled = true;
      microtask(this.flushConfirmsFn);
    }
  }

  /**
   * basic.ack / basic.nack to the publisher, delivery-tag = publish sequence
   * number. The settled prefix goes as one ack with `multiple` (split around
   * nacks); confirms settled out of order behind an unsettled one go one by one.
   */
  private flushConfirms(): void {
    this.confirmScheduled = false;
    if (this.state !== OPEN) return;
    const q = this.confirms;
    let i = this.confirmHead;
    let ackTo = 0;
    let ackN = 0;
    for (; i < q.length; i++) {
      const c = q[i];
      if (c === null) continue;
      if (!c!.done) break;
      q[i] = null;
      this.confirmsDone--;
      const seq = this.confirmBase + i;
      if (c!.error !== null) {
        if (ackN > 0) this.sendConfirm(true, ackTo, ackN > 1);
        ackN = 0;
        this.sendConfirm(false, seq, false);
      } else {
        ackTo = seq;
        ackN++;
      }
    }
    if (ackN > 0) this.sendConfirm(true, ackTo, ackN > 1);
    this.confirmHead = i;
    if (this.confirmsDone > 0) {
      for (let j = i + 1; j < q.length && this.confirmsDone > 0; j++) {
        const c = q[j];
        if (c === null || !c!.done) continue;
        q[j] = null;
        this.confirmsDone--;
        this.sendConfirm(c!.error === null, this.confirmBase + j, false);
      }
    }
    if (this.confirmHead === q.length) {
      this.confirmBase += q.length;
      q.length = 0;
      this.confirmHead = 0;
    } else if (this.confirmHead > 4096 && this.confirmHead * 2 > q.length) {
      q.splice(0, this.confirmHead);
      this.confirmBase += this.confirmHead;
      this.confirmHead = 0;
    }
  }

  private sendConfirm(ack: boolean, tag: number, multiple: boolean): void {
    const out = this.conn.out;
    if (ack) writeMethodFrame(out.w, this.id, method('BasicAck', { deliveryTag: tag, multiple }));
    else writeMethodFrame(out.w, this.id, method('BasicNack', { deliveryTag: tag, multiple, requeue: false }));
    out.schedule();
  }

  // ---- ack, nack, reject

  /** kind 0 = ack, 1 = nack/reject. */
  private settle(tag: number, multiple: boolean, kind: number, requeue: boolean): void {
    const unacked = this.unacked;
    const tx = this.txSettled;
    if (multiple && tag === 0) {
      // "If the multiple field is 1, and the delivery tag is zero, this indicates acknowledgement of all outstanding messages."
      for (const [t, m] of unacked) {
        if (tx !== null) this.txSettle(t, m, kind, requeue);
        else settleQuiet(m, kind, requeue);
      }
      if (tx === null) unacked.clear();
      return;
    }
    const m = unacked.get(tag);
    // RabbitMQ (collect_acks): the tag itself must be outstanding, with or without multiple.
    if (m === undefined || (tx !== null && tx.has(tag))) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, `unknown delivery tag ${tag}`);
    if (!multiple) {
      if (tx !== null) {
        this.txSettle(tag, m, kind, requeue);
        return;
      }
      unacked.delete(tag);
      settleQuiet(m, kind, requeue);
      return;
    }
    for (const [t, x] of unacked) {
      if (t > tag) break;
      if (tx !== null) {
        if (!tx.has(t)) this.txSettle(t, x, kind, requeue);
        continue;
      }
      unacked.delete(t);
      settleQuiet(x, kind, requeue);
    }
  }

  private txSettle(tag: number, m: Message, kind: number, requeue: boolean): void {
    this.txSettled!.add(tag);
    if (kind === 0) this.tx!.ack(m);
    else this.tx!.nack(m, { requeue });
  }

  private async txCommit(): Promise<void> {
    const tx = this.tx;
    if (tx === null) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'channel is not transactional');
    const settled = this.txSettled!;
    for (const t of settled) this.unacked.delete(t);
    settled.clear();
    // The publishes happen inside commit(), synchronously: a mandatory one unroutable is returned to this channel.
    const server = this.conn.server;
    server.currentPublisher = this;
    let p: Promise<void>;
    try {
      p = tx.commit();
    } finally {
      server.currentPublisher = null;
    }
    await p;
    if (this.state === OPEN) this.send(method('TxCommitOk', {}));
  }

  // ---- consume, cancel, deliveries

  private async consume(queueArg: string, tagArg: string, noAck: boolean, exclusive: boolean, nowait: boolean): Promise<void> {
    const queue = queueArg === '' ? this.lastQueue : queueArg;
    if (queue === '') throw new AmqpError(ReplyCode.NOT_FOUND, 'no queue name given and no queue declared on this channel');
    const tag = tagArg === '' ? this.conn.server.newConsumerTag() : tagArg;
    // RabbitMQ: reusing a tag on the channel is a connection error.
    if (this.consumers.has(tag)) throw new AmqpError(ReplyCode.NOT_ALLOWED, `attempt to reuse consumer tag '${tag}'`);
    if (queue === REPLY_TO) {
      if (!noAck) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'reply consumer cannot acknowledge');
      if (this.replyConsumer !== null) throw new AmqpError(ReplyCode.PRECONDITION_FAILED, 'reply consumer already set');
      const cc = new ChannelConsumer(tag, REPLY_TO, true);
      cc.ready = true;
      this.consumers.set(tag, cc);
      this.replyConsumer = cc;
      this.replyAddress = REPLY_TO_PREFIX + this.conn.server.registerReplyTo(this);
      if (!nowait) this.send(method('BasicConsumeOk', { consumerTag: tag }));
      return;
    }
    const cc = new ChannelConsumer(tag, queue, noAck);
    this.consumers.set(tag, cc);
    let c: Consumer;
    try {
      c = await this.broker.consume(queue, (msg) => this.onDelivery(cc, msg), {
        prefetch: noAck ? NO_ACK_WINDOW : this.prefetch, noAck: false, exclusive, owner: this.conn.owner,
      });
    } catch (e) {
      this.consumers.delete(tag);
      // RabbitMQ: another consumer holds the queue exclusively -> 403 ACCESS_REFUSED ("in exclusive use").
      if (e instanceof BrokerError && e.code === 'ERR_RESOURCE_LOCKED' && /exclusive consumer/.test(e.message)) {
        throw new AmqpError(ReplyCode.ACCESS_REFUSED, `queue '${queue}' in vhost '/' in exclusive use`);
      }
      throw e;
    }
    cc.consumer = c;
    if (this.state !== OPEN || this.consumers.get(tag) !== cc) {
      // The channel went while the broker registered it.
      await this.broker.cancel(c, true);
      return;
    }
    if (!nowait) this.send(method('BasicConsumeOk', { consumerTag: tag }));
    cc.ready = true;
    const early = cc.early;
    cc.early = null;
    if (early !== null) for (const msg of early) this.onDelivery(cc, msg);
  }

  private onDelivery(cc: ChannelConsumer, m: Message): void {
    if (!cc.ready) {
      (cc.early ??= []).push(m);
      return;
    }
    if (!this.flowActive) {
      this.held.push({ cc, m });
      return;
    }
    this.writeDelivery(cc, m);
  }

  private writeDelivery(cc: ChannelConsumer, m: Message): void {
    const tag = this.nextTag++;
    if (cc.noAck) {
      // The last one written: an ack-multiple settles the consumer's deliveries in delivery order through it.
      cc.ackMark = m;
      if (!this.noAckScheduled) {
        this.noAckScheduled = true;
        this.conn.out.schedule();
        microtask(this.settleNoAckFn); // runs after the flush scheduled above
      }
    } else {
      this.unacked.set(tag, m);
    }
    const out = this.conn.out;
    out.deliver(this.id, cc.tagBytes, tag, m.redelivered, m, this.conn.frameMax);
    out.schedule();
  }

  /** Acks the no-ack consumers' window once their deliveries are with the socket, unless it is congested. */
  settleNoAck(): void {
    this.noAckScheduled = false;
    if (this.conn.out.congested) {
      this.conn.whenDrained(this);
      return;
    }
    for (const cc of this.consumers.values()) {
      const mark = cc.ackMark;
      if (mark !== null) {
        cc.ackMark = null;
        settleQuiet(mark, 0, false, true);
      }
    }
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const { cc, m } of held) {
      if (this.consumers.get(cc.tag) === cc) this.writeDelivery(cc, m);
    }
  }

  private async cancel(tag: string, nowait: boolean): Promise<void> {
    const cc = this.consumers.get(tag);
    if (cc !== undefined) {
      this.consumers.delete(tag);
      if (cc === this.replyConsumer) {
        this.replyConsumer = null;
        this.conn.server.unregisterReplyTo(this);
      } else if (cc.consumer !== null) {
        if (cc.noAck) {
          // What was written counts as delivered; what was not goes back.
          if (cc.ackMark !== null) settleQuiet(cc.ackMark, 0, false, true);
          cc.ackMark = null;
          await this.broker.cancel(cc.consumer, true);
        } else {
          // AMQP: the consumer's unacked messages stay with the client, which may still ack them.
          await this.broker.cancel(cc.consumer, false);
        }
      }
    }
    // RabbitMQ answers cancel-ok for an unknown tag too.
    if (!nowait && this.state === OPEN) this.send(method('BasicCancelOk', { consumerTag: tag }));
  }

  /** The broker deleted `queue`: its consumers here are gone; tell the client (consumer_cancel_notify). */
  onQueueDeleted(queue: string): void {
    if (this.state !== OPEN) return;
    for (const cc of [...this.consumers.values()]) {
      if (cc.queue !== queue || cc.consumer === null || cc.consumer.active) continue;
      this.consumers.delete(cc.tag);
      if (this.conn.consumerCancelNotify) this.send(method('BasicCancel', { consumerTag: cc.tag, nowait: true }));
    }
  }

  /** The broker cancelled a consumer for an ack timeout (its messages are back in the queue): RabbitMQ closes the channel. */
  onConsumerTimeout(c: Consumer): boolean {
    if (this.state !== OPEN) return false;
    for (const cc of this.consumers.values()) {
      if (cc.consumer !== c) continue;
      for (const [t, m] of this.unacked) if (m.owner === c.tag) this.unacked.delete(t);
      this.consumers.delete(cc.tag);
      this.closeWithError(new AmqpError(ReplyCode.PRECONDITION_FAILED, `delivery acknowledgement on channel ${this.id} timed out (consumer '${cc.tag}' of queue '${cc.queue}')`, 0, 0, this.id));
      return true;
    }
    return false;
  }

  // ---- get

  private async get(queueArg: string, noAck: boolean): Promise<void> {
    const queue = queueArg === '' ? this.lastQueue : queueArg;
    if (!noAck) this.conn.usedGet = true;
    const m = await this.broker.get(queue, { noAck, owner: this.conn.owner });
    if (this.state !== OPEN) {
      if (m !== null && !noAck) settleQuiet(m, 1, true);
      return;
    }
    if (m === null) {
      this.send(method('BasicGetEmpty', {}));
      return;
    }
    const tag = this.nextTag++;
    if (!noAck) this.unacked.set(tag, m);
    const out = this.conn.out;
    out.getOk(this.id, tag, m, m.messageCount, this.conn.frameMax);
    out.schedule();
  }

  // ---- direct reply-to

  /** A reply published to this channel's reply-to address: delivered at once, no queue (RabbitMQ's direct reply-to). */
  deliverDirect(routingKey: string, props: BasicProperties, body: Buffer): boolean {
    const cc = this.replyConsumer;
    if (cc === null || this.state !== OPEN) return false;
    const out = this.conn.out;
    writeMethodFrame(out.w, this.id, method('BasicDeliver', { consumerTag: cc.tag, deliveryTag: this.nextTag++, redelivered: false, exchange: '', routingKey }));
    writeHeaderFrame(out.w, this.id, body.length, props);
    out.body(this.id, body, this.conn.frameMax);
    out.schedule();
    return true;
  }

  // ---- queues and exchanges

  private async queueDeclare(m: Extract<Method, { id: typeof MethodId.QueueDeclare }>): Promise<void> {
    const name = m.queue === '' && m.passive ? this.lastQueue : m.queue;
    let info: { queue: string; messageCount: number; consumerCount: number };
    if (name === REPLY_TO) {
      info = { queue: name, messageCount: 0, consumerCount: 0 };
    } else {
      const opts = m.passive ? {} : queueOptionsFromArguments(m.arguments, name);
      opts.passive = m.passive;
      opts.durable = m.durable;
      opts.exclusive = m.exclusive;
      opts.autoDelete = m.autoDelete;
      opts.owner = this.conn.owner;
      if (m.exclusive && !m.passive) this.conn.usedExclusive = true;
      info = await this.broker.declareQueue(name, opts);
    }
    this.lastQueue = info.queue;
    if (!m.nowait && this.state === OPEN) this.send(method('QueueDeclareOk', { queue: info.queue, messageCount: info.messageCount, consumerCount: info.consumerCount }));
  }

  private async queueBind(queueArg: string, exchange: string, key: string, args: FieldTable | undefined, nowait: boolean, bind: boolean): Promise<void> {
    const queue = queueArg === '' ? this.lastQueue : queueArg;
    const a = plainArguments(args);
    if (bind) await this.broker.bindQueue(queue, exchange, key, a, this.conn.owner);
    else await this.broker.unbindQueue(queue, exchange, key, a, this.conn.owner);
    if (this.state !== OPEN) return;
    if (bind) {
      if (!nowait) this.send(method('QueueBindOk', {}));
    } else {
      this.send(method('QueueUnbindOk', {}));
    }
  }

  private async queuePurge(queueArg: string, nowait: boolean): Promise<void> {
    const queue = queueArg === '' ? this.lastQueue : queueArg;
    const n = await this.broker.purgeQueue(queue, this.conn.owner);
    if (!nowait && this.state === OPEN) this.send(method('QueuePurgeOk', { messageCount: n }));
  }

  private async queueDelete(queueArg: string, ifUnused: boolean, ifEmpty: boolean, nowait: boolean): Promise<void> {
    const queue = queueArg === '' ? this.lastQueue : queueArg;
    const n = await this.broker.deleteQueue(queue, { ifUnused, ifEmpty, owner: this.conn.owner });
    if (!nowait && this.state === OPEN) this.send(method('QueueDeleteOk', { messageCount: n }));
  }

  private async exchangeDeclare(m: Extract<Method, { id: typeof MethodId.ExchangeDeclare }>): Promise<void> {
    if (m.passive) {
      await this.broker.declareExchange(m.exchange, 'direct', { passive: true });
    } else {
      // RabbitMQ: an unknown exchange type is a connection error (503 COMMAND_INVALID).
      if (!EXCHANGE_TYPES.has(m.type)) throw new AmqpError(ReplyCode.COMMAND_INVALID, `unknown exchange type '${m.type}'`);
      const args = plainArguments(m.arguments);
      const ae = args['alternate-exchange'];
      if (ae !== undefined && typeof ae !== 'string') throw new AmqpError(ReplyCode.PRECONDITION_FAILED, `invalid arg 'alternate-exchange' for exchange '${m.exchange}': must be a string`);
      await this.broker.declareExchange(m.exchange, m.type as 'direct', {
        durable: m.durable, autoDelete: m.autoDelete, internal: m.internal, arguments: args,
        ...(ae !== undefined ? { alternateExchange: ae as string } : {}),
      });
    }
    if (!m.nowait && this.state === OPEN) this.send(method('ExchangeDeclareOk', {}));
  }

  private async exchangeDelete(exchange: string, ifUnused: boolean, nowait: boolean): Promise<void> {
    await this.broker.deleteExchange(exchange, { ifUnused });
    if (!nowait && this.state === OPEN) this.send(method('ExchangeDeleteOk', {}));
  }

  // ---------------------------------------------------------------- leaving

  /**
   * The channel is going (closed by either side, or its connection went):
   * unacked messages go back to their queues (redelivered), consumers are
   * cancelled (their in-flight deliveries go back too), a transaction is
   * dropped. Idempotent.
   */
  release(): void {
    if (this.state === OPEN) this.state = CLOSED;
    this.pending = [];
    this.pubMethod = null;
    this.pubHeader = null;
    this.pubBuf = null;
    this.held = [];
    this.confirms = [];
    this.confirmHead = 0;
    this.confirmsDone = 0;
    if (this.tx !== null) {
      this.tx.close();
      this.tx = null;
      this.txSettled = null;
    }
    if (this.replyConsumer !== null) {
      this.replyConsumer = null;
      this.conn.server.unregisterReplyTo(this);
    }
    // What a no-ack consumer wrote counts as delivered.
    for (const cc of this.consumers.values()) {
      if (cc.ackMark !== null) settleQuiet(cc.ackMark, 0, false, true);
      cc.ackMark = null;
    }
    // Nacks first, then the cancels: the shard sees them in that order, and a cancel
    // returns only what was still in flight.
    for (const m of this.unacked.values()) settleQuiet(m, 1, true);
    this.unacked.clear();
    for (const cc of this.consumers.values()) {
      if (cc.consumer !== null) this.broker.cancel(cc.consumer, true).catch(() => {});
    }
    this.consumers.clear();
  }

  private send(m: Method): void {
    const out = this.conn.out;
    writeMethodFrame(out.w, this.id, m);
    out.schedule();
  }
}

/** Settles a message, ignoring "already settled" (the message was returned by other means meanwhile). */
function settleQuiet(m: Message, kind: number, requeue: boolean, multiple = false): void {
  if (m.settled) return;
  try {
    if (kind === 0) m.ack(multiple);
    else m.nack({ requeue, multiple });
  } catch {
    /* already settled or the broker closed: nothing to return */
  }
}

