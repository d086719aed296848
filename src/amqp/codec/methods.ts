import { AmqpError } from '../errors.js';
import { MethodId, ReplyCode } from './constants.js';
import type { Cursor } from './cursor.js';
import { readTable, writeTable } from './field-table.js';
import type { FieldTable } from './field-table.js';
import type { Writer } from './writer.js';

/**
 * Every method of the classes connection, channel, exchange, queue, basic,
 * confirm and tx: AMQP 0-9-1 plus the RabbitMQ extensions clients rely on
 * (connection.blocked/unblocked, connection.update-secret, exchange.bind/
 * unbind, basic.nack, confirm.select). The class access (30) is deprecated in
 * 0-9-1 and not decoded (a peer sending it gets not-implemented).
 *
 * One table describes each method's arguments in wire order; the encoder and
 * decoder walk it with a switch on a numeric kind. Argument names are the
 * spec's in camelCase (as amqplib names them). Reserved arguments (spec:
 * "reserved-1", formerly ticket, capabilities, insist, out-of-band,
 * channel-id, known-hosts, cluster-id) are prefixed `_`: they are written as
 * their zero value and skipped when read, and do not appear in the types.
 *
 * A decoded method is a plain object `{ id, ...arguments }` where
 * `id = classId << 16 | methodId` (e.g. basic.publish is 0x003c0028), so a
 * connection can `switch (m.id)` and TypeScript narrows the arguments.
 */

type Kind = 'octet' | 'short' | 'long' | 'longlong' | 'shortstr' | 'longstr' | 'bit' | 'table';
type Field = readonly [name: string, kind: Kind];
type KindTs<K> = K extends 'octet' | 'short' | 'long' | 'longlong' ? number
  : K extends 'shortstr' ? string
  : K extends 'longstr' ? Buffer
  : K extends 'bit' ? boolean
  : K extends 'table' ? FieldTable
  : never;
type ArgsOf<F extends readonly Field[]> = { -readonly [E in F[number] as E[0] extends `_${string}` ? never : E[0]]: KindTs<E[1]> };
type Simplify<T> = { [K in keyof T]: T[K] } & {};

function def<const I extends number, const F extends readonly Field[]>(id: I, name: string, fields: F, content = false) {
  return { id, name, fields, content };
}

const ticket = ['_ticket', 'short'] as const;

export const METHODS = {
  ConnectionStart: def(MethodId.ConnectionStart, 'connection.start', [['versionMajor', 'octet'], ['versionMinor', 'octet'], ['serverProperties', 'table'], ['mechanisms', 'longstr'], ['locales', 'longstr']]),
  ConnectionStartOk: def(MethodId.ConnectionStartOk, 'connection.start-ok', [['clientProperties', 'table'], ['mechanism', 'shortstr'], ['response', 'longstr'], ['locale', 'shortstr']]),
  ConnectionSecure: def(MethodId.ConnectionSecure, 'connection.secure', [['challenge', 'longstr']]),
  ConnectionSecureOk: def(MethodId.ConnectionSecureOk, 'connection.secure-ok', [['response', 'longstr']]),
  ConnectionTune: def(MethodId.ConnectionTune, 'connection.tune', [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']]),
  ConnectionTuneOk: def(MethodId.ConnectionTuneOk, 'connection.tune-ok', [['channelMax', 'short'], ['frameMax', 'long'], ['heartbeat', 'short']]),
  ConnectionOpen: def(MethodId.ConnectionOpen, 'connection.open', [['virtualHost', 'shortstr'], ['_capabilities', 'shortstr'], ['_insist', 'bit']]),
  ConnectionOpenOk: def(MethodId.ConnectionOpenOk, 'connection.open-ok', [['_knownHosts', 'shortstr']]),
  ConnectionClose: def(MethodId.ConnectionClose, 'connection.close', [['replyCode', 'short'], ['replyText', 'shortstr'], ['classId', 'short'], ['methodId', 'short']]),
  ConnectionCloseOk: def(MethodId.ConnectionCloseOk, 'connection.close-ok', []),
  ConnectionBlocked: def(MethodId.ConnectionBlocked, 'connection.blocked', [['reason', 'shortstr']]),
  ConnectionUnblocked: def(MethodId.ConnectionUnblocked, 'connection.unblocked', []),
  ConnectionUpdateSecret: def(MethodId.ConnectionUpdateSecret, 'connection.update-secret', [['newSecret', 'longstr'], ['reason', 'shortstr']]),
  ConnectionUpdateSecretOk: def(MethodId.ConnectionUpdateSecretOk, 'connection.update-secret-ok', []),

  ChannelOpen: def(MethodId.ChannelOpen, 'channel.open', [['_outOfBand', 'shortstr']]),
  ChannelOpenOk: def(MethodId.ChannelOpenOk, 'channel.open-ok', [['_channelId', 'longstr']]),
  ChannelFlow: def(MethodId.ChannelFlow, 'channel.flow', [['active', 'bit']]),
  ChannelFlowOk: def(MethodId.ChannelFlowOk, 'channel.flow-ok', [['active', 'bit']]),
  ChannelClose: def(MethodId.ChannelClose, 'channel.close', [['replyCode', 'short'], ['replyText', 'shortstr'], ['classId', 'short'], ['methodId', 'short']]),
  ChannelCloseOk: def(MethodId.ChannelCloseOk, 'channel.close-ok', []),

  ExchangeDeclare: def(MethodId.ExchangeDeclare, 'exchange.declare', [ticket, ['exchange', 'shortstr'], ['type', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['autoDelete', 'bit'], ['internal', 'bit'], ['nowait', 'bit'], ['arguments', 'table']]),
  ExchangeDeclareOk: def(MethodId.ExchangeDeclareOk, 'exchange.declare-ok', []),
  ExchangeDelete: def(MethodId.ExchangeDelete, 'exchange.delete', [ticket, ['exchange', 'shortstr'], ['ifUnused', 'bit'], ['nowait', 'bit']]),
  ExchangeDeleteOk: def(MethodId.ExchangeDeleteOk, 'exchange.delete-ok', []),
  ExchangeBind: def(MethodId.ExchangeBind, 'exchange.bind', [ticket, ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']]),
  ExchangeBindOk: def(MethodId.ExchangeBindOk, 'exchange.bind-ok', []),
  ExchangeUnbind: def(MethodId.ExchangeUnbind, 'exchange.unbind', [ticket, ['destination', 'shortstr'], ['source', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']]),
  // RabbitMQ numbers exchange.unbind-ok 51, not 41 (amqp-rabbitmq-0.9.1.json).
  ExchangeUnbindOk: def(MethodId.ExchangeUnbindOk, 'exchange.unbind-ok', []),

  QueueDeclare: def(MethodId.QueueDeclare, 'queue.declare', [ticket, ['queue', 'shortstr'], ['passive', 'bit'], ['durable', 'bit'], ['exclusive', 'bit'], ['autoDelete', 'bit'], ['nowait', 'bit'], ['arguments', 'table']]),
  QueueDeclareOk: def(MethodId.QueueDeclareOk, 'queue.declare-ok', [['queue', 'shortstr'], ['messageCount', 'long'], ['consumerCount', 'long']]),
  QueueBind: def(MethodId.QueueBind, 'queue.bind', [ticket, ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['nowait', 'bit'], ['arguments', 'table']]),
  QueueBindOk: def(MethodId.QueueBindOk, 'queue.bind-ok', []),
  QueuePurge: def(MethodId.QueuePurge, 'queue.purge', [ticket, ['queue', 'shortstr'], ['nowait', 'bit']]),
  QueuePurgeOk: def(MethodId.QueuePurgeOk, 'queue.purge-ok', [['messageCount', 'long']]),
  QueueDelete: def(MethodId.QueueDelete, 'queue.delete', [ticket, ['queue', 'shortstr'], ['ifUnused', 'bit'], ['ifEmpty', 'bit'], ['nowait', 'bit']]),
  QueueDeleteOk: def(MethodId.QueueDeleteOk, 'queue.delete-ok', [['messageCount', 'long']]),
  QueueUnbind: def(MethodId.QueueUnbind, 'queue.unbind', [ticket, ['queue', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['arguments', 'table']]),
  QueueUnbindOk: def(MethodId.QueueUnbindOk, 'queue.unbind-ok', []),

  BasicQos: def(MethodId.BasicQos, 'basic.qos', [['prefetchSize', 'long'], ['prefetchCount', 'short'], ['global', 'bit']]),
  BasicQosOk: def(MethodId.BasicQosOk, 'basic.qos-ok', []),
  BasicConsume: def(MethodId.BasicConsume, 'basic.consume', [ticket, ['queue', 'shortstr'], ['consumerTag', 'shortstr'], ['noLocal', 'bit'], ['noAck', 'bit'], ['exclusive', 'bit'], ['nowait', 'bit'], ['arguments', 'table']]),
  BasicConsumeOk: def(MethodId.BasicConsumeOk, 'basic.consume-ok', [['consumerTag', 'shortstr']]),
  BasicCancel: def(MethodId.BasicCancel, 'basic.cancel', [['consumerTag', 'shortstr'], ['nowait', 'bit']]),
  BasicCancelOk: def(MethodId.BasicCancelOk, 'basic.cancel-ok', [['consumerTag', 'shortstr']]),
  BasicPublish: def(MethodId.BasicPublish, 'basic.publish', [ticket, ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['mandatory', 'bit'], ['immediate', 'bit']], true),
  BasicReturn: def(MethodId.BasicReturn, 'basic.return', [['replyCode', 'short'], ['replyText', 'shortstr'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], true),
  BasicDeliver: def(MethodId.BasicDeliver, 'basic.deliver', [['consumerTag', 'shortstr'], ['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr']], true),
  BasicGet: def(MethodId.BasicGet, 'basic.get', [ticket, ['queue', 'shortstr'], ['noAck', 'bit']]),
  BasicGetOk: def(MethodId.BasicGetOk, 'basic.get-ok', [['deliveryTag', 'longlong'], ['redelivered', 'bit'], ['exchange', 'shortstr'], ['routingKey', 'shortstr'], ['messageCount', 'long']], true),
  BasicGetEmpty: def(MethodId.BasicGetEmpty, 'basic.get-empty', [['_clusterId', 'shortstr']]),
  BasicAck: def(MethodId.BasicAck, 'basic.ack', [['deliveryTag', 'longlong'], ['multiple', 'bit']]),
  BasicReject: def(MethodId.BasicReject, 'basic.reject', [['deliveryTag', 'longlong'], ['requeue', 'bit']]),
  BasicRecoverAsync: def(MethodId.BasicRecoverAsync, 'basic.recover-async', [['requeue', 'bit']]),
  BasicRecover: def(MethodId.BasicRecover, 'basic.recover', [['requeue', 'bit']]),
  BasicRecoverOk: def(MethodId.BasicRecoverOk, 'basic.recover-ok', []),
  BasicNack: def(MethodId.BasicNack, 'basic.nack', [['deliveryTag', 'longlong'], ['multiple', 'bit'], ['requeue', 'bit']]),

  ConfirmSelect: def(MethodId.ConfirmSelect, 'confirm.select', [['nowait', 'bit']]),
  ConfirmSelectOk: def(MethodId.ConfirmSelectOk, 'confirm.select-ok', []),

  TxSelect: def(MethodId.TxSelect, 'tx.select', []),
  TxSelectOk: def(MethodId.TxSelectOk, 'tx.select-ok', []),
  TxCommit: def(MethodId.TxCommit, 'tx.commit', []),
  TxCommitOk: def(MethodId.TxCommitOk, 'tx.commit-ok', []),
  TxRollback: def(MethodId.TxRollback, 'tx.rollback', []),
  TxRollbackOk: def(MethodId.TxRollbackOk, 'tx.rollback-ok', []),
} as const;

type Defs = typeof METHODS;
export type MethodName = keyof Defs;
/** The decoded form of one method: `{ id, ...arguments }`. */
export type MethodOf<K extends MethodName> = Simplify<{ id: Defs[K]['id'] } & ArgsOf<Defs[K]['fields']>>;
/** Any method. `switch (m.id)` narrows it. */
export type Method = { [K in MethodName]: MethodOf<K> }[MethodName];
/** The arguments of one method, without `id`. */
export type ArgsFor<K extends MethodName> = Simplify<ArgsOf<Defs[K]['fields']>>;

export { MethodId };

// Named types for the methods a server handles (basic.publish -> BasicPublish).
export type ConnectionStart = MethodOf<'ConnectionStart'>;
export type ConnectionStartOk = MethodOf<'ConnectionStartOk'>;
export type ConnectionTune = MethodOf<'ConnectionTune'>;
export type ConnectionTuneOk = MethodOf<'ConnectionTuneOk'>;
export type ConnectionOpen = MethodOf<'ConnectionOpen'>;
export type ConnectionClose = MethodOf<'ConnectionClose'>;
export type ChannelClose = MethodOf<'ChannelClose'>;
export type ExchangeDeclare = MethodOf<'ExchangeDeclare'>;
export type QueueDeclare = MethodOf<'QueueDeclare'>;
export type QueueBind = MethodOf<'QueueBind'>;
export type BasicQos = MethodOf<'BasicQos'>;
export type BasicConsume = MethodOf<'BasicConsume'>;
export type BasicPublish = MethodOf<'BasicPublish'>;
export type BasicDeliver = MethodOf<'BasicDeliver'>;
export type BasicGetOk = MethodOf<'BasicGetOk'>;
export type BasicAck = MethodOf<'BasicAck'>;
export type BasicNack = MethodOf<'BasicNack'>;
export type BasicReject = MethodOf<'BasicReject'>;

/** Builds a method object with its id: `method('BasicAck', { deliveryTag: 1, multiple: false })`. */
export function method<K extends MethodName>(name: K, args: ArgsFor<K>): MethodOf<K> {
  return { id: METHODS[name].id, ...args } as MethodOf<K>;
}

// ---------------------------------------------------------------- compiled table

const K_OCTET = 1;
const K_SHORT = 2;
const K_LONG = 3;
const K_LONGLONG = 4;
const K_SHORTSTR = 5;
const K_LONGSTR = 6;
const K_BIT = 7;
const K_TABLE = 8;
const KIND_CODE: Record<Kind, number> = { octet: K_OCTET, short: K_SHORT, long: K_LONG, longlong: K_LONGLONG, shortstr: K_SHORTSTR, longstr: K_LONGSTR, bit: K_BIT, table: K_TABLE };

/** A method description, compiled for the codec loops. */
export interface MethodInfo {
  readonly id: number;
  readonly classId: number;
  readonly methodId: number;
  /** Spec name, "basic.publish". */
  readonly name: string;
  /** Type name, "BasicPublish". */
  readonly typeName: MethodName;
  /** Argument names in wire order; reserved ones start with `_`. */
  readonly names: readonly string[];
  readonly kinds: Uint8Array;
  /** True for the methods followed by content (publish, return, deliver, get-ok). */
  readonly content: boolean;
}

const INFO = new Map<number, MethodInfo>();
for (const [typeName, d] of Object.entries(METHODS) as [MethodName, Defs[MethodName]][]) {
  const fields = d.fields as readonly Field[];
  INFO.set(d.id, {
    id: d.id,
    classId: d.id >>> 16,
    methodId: d.id & 0xffff,
    name: d.name,
    typeName,
    names: fields.map((f) => f[0]),
    kinds: Uint8Array.from(fields.map((f) => KIND_CODE[f[1]])),
    content: d.content,
  });
}

/** The description of a method id, or undefined if we do not know it. */
export function methodInfo(id: number): MethodInfo | undefined {
  return INFO.get(id);
}

/** Every method we encode and decode. */
export function allMethods(): MethodInfo[] {
  return [...INFO.values()];
}

// ---------------------------------------------------------------- encoding

/**
 * Writes a method payload (class-id, method-id, arguments) at `w.pos`.
 * Arguments left undefined are written as their zero value. §4.2.5.2: "When
 * two or more bits are contiguous in a frame these will be packed into one or
 * more octets, starting from the low bit in each octet."
 */
export function writeMethod(w: Writer, m: Method): void {
  const info = INFO.get(m.id);
  if (info === undefined) throw new TypeError(`unknown method id 0x${(m.id as number).toString(16)}`);
  const args = m as unknown as Record<string, unknown>;
  w.ensure(4);
  w.buf.writeUInt32BE(info.id, w.pos);
  w.pos += 4;
  const { names, kinds } = info;
  let bitAt = -1; // offset of the octet collecting bits, -1 when the previous field was not a bit
  let bit = 0;
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i]!;
    const v = args[names[i]!];
    if (kind === K_BIT) {
      if (bitAt < 0 || bit === 8) {
        w.ensure(1);
        bitAt = w.pos++;
        w.buf[bitAt] = 0;
        bit = 0;
      }
      if (v === true) w.buf[bitAt] = w.buf[bitAt]! | (1 << bit);
      bit++;
      continue;
    }
    bitAt = -1;
    switch (kind) {
      case K_OCTET: w.u8(num(v, 0xff, names[i]!)); break;
      case K_SHORT: w.u16(num(v, 0xffff, names[i]!)); break;
      case K_LONG: w.u32(num(v, 0xffffffff, names[i]!)); break;
      case K_LONGLONG: w.u64((v as number | undefined) ?? 0); break;
      case K_SHORTSTR: w.shortstr((v as string | undefined) ?? ''); break;
      case K_LONGSTR: w.longstr((v as Uint8Array | string | undefined) ?? EMPTY); break;
      case K_TABLE: writeTable(w, v as FieldTable | undefined); break;
    }
  }
}

const EMPTY = Buffer.alloc(0);

function num(v: unknown, max: number, name: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`argument ${name} must be an integer in 0..${max}, got ${String(v)}`);
  return v;
}

// ---------------------------------------------------------------- decoding

/**
 * Reads a method payload at the cursor, which must span exactly the payload.
 * Allocates the method object and its strings and tables.
 */
export function readMethod(c: Cursor): Method {
  c.need(4);
  const classId = c.buf.readUInt16BE(c.pos);
  const methodId = c.buf.readUInt16BE(c.pos + 2);
  c.pos += 4;
  c.classId = classId;
  c.methodId = methodId;
  const id = classId * 0x10000 + methodId;
  // The per-message methods get straight-line decoders building one object
  // shape each (style.md §3: monomorphic, switch on the numeric id); the
  // table-driven loop below handles the rest and is the reference for these.
  switch (id) {
    case ID_BASIC_PUBLISH: return readBasicPublish(c);
    case ID_BASIC_ACK: return readBasicAck(c);
    case ID_BASIC_DELIVER: return readBasicDeliver(c);
  }
  const info = INFO.get(id);
  if (info === undefined) {
    // not-implemented 540: "The client tried to use functionality that is not implemented in the server."
    throw new AmqpError(ReplyCode.NOT_IMPLEMENTED, `unknown method ${classId}.${methodId}`, classId, methodId, c.channel);
  }
  const m: Record<string, unknown> = { id: info.id };
  const { names, kinds } = info;
  let bits = 0;
  let bit = 8; // 8 = no octet of bits open
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i]!;
    let v: unknown;
    if (kind === K_BIT) {
      if (bit === 8) {
        bits = c.u8();
        bit = 0;
      }
      v = ((bits >>> bit++) & 1) === 1;
    } else {
      bit = 8;
      switch (kind) {
        case K_OCTET: v = c.u8(); break;
        case K_SHORT: v = c.u16(); break;
        case K_LONG: v = c.u32(); break;
        case K_LONGLONG: v = c.u64(); break;
        case K_SHORTSTR: v = c.shortstr(); break;
        case K_LONGSTR: v = c.longstr(); break;
        case K_TABLE: v = readTable(c); break;
      }
    }
    const name = names[i]!;
    if (name.charCodeAt(0) !== 0x5f /* _ */) m[name] = v;
  }
  if (c.pos !== c.end) throw c.malformed(`${c.end - c.pos} bytes after the last argument of ${info.name}`);
  return m as unknown as Method;
}

const ID_BASIC_PUBLISH = METHODS.BasicPublish.id;
const ID_BASIC_ACK = METHODS.BasicAck.id;
const ID_BASIC_DELIVER = METHODS.BasicDeliver.id;

function done(c: Cursor, name: string): void {
  if (c.pos !== c.end) throw c.malformed(`${c.end - c.pos} bytes after the last argument of ${name}`);
}

function readBasicPublish(c: Cursor): BasicPublish {
  c.u16(); // reserved-1 (ticket)
  const exchange = c.shortstr();
  const routingKey = c.shortstr();
  const bits = c.u8();
  done(c, 'basic.publish');
  return { id: ID_BASIC_PUBLISH, exchange, routingKey, mandatory: (bits & 1) !== 0, immediate: (bits & 2) !== 0 };
}

function readBasicAck(c: Cursor): BasicAck {
  const deliveryTag = c.u64();
  const bits = c.u8();
  done(c, 'basic.ack');
  return { id: ID_BASIC_ACK, deliveryTag, multiple: (bits & 1) !== 0 };
}

function readBasicDeliver(c: Cursor): BasicDeliver {
  const consumerTag = c.shortstr();
  const deliveryTag = c.u64();
  const redelivered = (c.u8() & 1) !== 0;
  const exchange = c.shortstr();
  const routingKey = c.shortstr();
  done(c, 'basic.deliver');
  return { id: ID_BASIC_DELIVER, consumerTag, deliveryTag, redelivered, exchange, routingKey };
}
