/**
 * AMQP 0-9-1 wire constants: the protocol header, frame types, the frame-end
 * octet, class ids and reply codes. Names follow the specification
 * (amqp0-9-1.xml `<constant name="frame-error" value="501" class="hard-error"/>`
 * becomes `ReplyCode.FRAME_ERROR`), as RabbitMQ's and amqplib's generated
 * definitions do.
 */

/** §4.2.2: "AMQP" %d0 then major 0, minor 9, revision 1. */
export const PROTOCOL_HEADER: Buffer = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]);
export const PROTOCOL_HEADER_SIZE = 8;

// §4.2.3 frame types. The PDF's prose says "Type = 4, HEARTBEAT"; the grammar
// (`heartbeat = %d8 %d0 %d0 frame-end`), the XML constant `frame-heartbeat`
// and every broker and client use 8.
export const FRAME_METHOD = 1;
export const FRAME_HEADER = 2;
export const FRAME_BODY = 3;
export const FRAME_HEARTBEAT = 8;

/** §4.2.3: "The frame-end octet MUST always be the hexadecimal value %xCE." */
export const FRAME_END = 0xce;

// Frame layout: type (octet) | channel (short) | size (long) | payload | frame-end.
export const FRAME_TYPE_OFFSET = 0;
export const FRAME_TYPE_SIZE = 1;
export const FRAME_CHANNEL_OFFSET = FRAME_TYPE_OFFSET + FRAME_TYPE_SIZE;
export const FRAME_CHANNEL_SIZE = 2;
export const FRAME_SIZE_OFFSET = FRAME_CHANNEL_OFFSET + FRAME_CHANNEL_SIZE;
export const FRAME_SIZE_SIZE = 4;
export const FRAME_HEADER_SIZE = FRAME_SIZE_OFFSET + FRAME_SIZE_SIZE; // 7
export const FRAME_END_SIZE = 1;
/** Bytes a frame adds around its payload: the 7-octet header and the frame-end. */
export const FRAME_OVERHEAD = FRAME_HEADER_SIZE + FRAME_END_SIZE; // 8

/**
 * connection.tune frame-max: "Until the frame-max has been negotiated, both
 * peers MUST accept frames of up to frame-min-size octets large, and the
 * minimum negotiated value for frame-max is also frame-min-size."
 * frame-max counts the whole frame, header and frame-end included.
 */
export const FRAME_MIN_SIZE = 4096;
/** frame-max is a long-uint in connection.tune, so at most 2^32 - 1. */
export const FRAME_MAX_LIMIT = 0xffffffff;

// Method payload layout (§4.2.4): class-id (short) | method-id (short) | arguments.
export const METHOD_CLASS_OFFSET = 0;
export const METHOD_ID_OFFSET = 2;
export const METHOD_ARGS_OFFSET = 4;

// Content header payload layout (§4.2.6.1):
// class-id (short) | weight (short) | body size (longlong) | property flags (short) | property list.
export const HEADER_CLASS_OFFSET = 0;
export const HEADER_WEIGHT_OFFSET = 2;
export const HEADER_BODY_SIZE_OFFSET = 4;
export const HEADER_FLAGS_OFFSET = 12;
export const HEADER_PROPERTIES_OFFSET = 14;

/** Class ids (amqp0-9-1.xml `<class index=...>`). */
export const ClassId = {
  CONNECTION: 10,
  CHANNEL: 20,
  EXCHANGE: 40,
  QUEUE: 50,
  BASIC: 60,
  CONFIRM: 85, // RabbitMQ extension (publisher confirms)
  TX: 90,
} as const;

/**
 * Method ids, `classId << 16 | methodId`, by type name (basic.publish ->
 * BasicPublish = 60 << 16 | 40). From amqp0-9-1.xml and RabbitMQ's
 * amqp-rabbitmq-0.9.1.json (which adds connection.blocked/unblocked/
 * update-secret, exchange.bind/unbind, basic.nack, confirm).
 */
export const MethodId = {
  /** connection.start */
  ConnectionStart: 0x000a000a,
  /** connection.start-ok */
  ConnectionStartOk: 0x000a000b,
  /** connection.secure */
  ConnectionSecure: 0x000a0014,
  /** connection.secure-ok */
  ConnectionSecureOk: 0x000a0015,
  /** connection.tune */
  ConnectionTune: 0x000a001e,
  /** connection.tune-ok */
  ConnectionTuneOk: 0x000a001f,
  /** connection.open */
  ConnectionOpen: 0x000a0028,
  /** connection.open-ok */
  ConnectionOpenOk: 0x000a0029,
  /** connection.close */
  ConnectionClose: 0x000a0032,
  /** connection.close-ok */
  ConnectionCloseOk: 0x000a0033,
  /** connection.blocked */
  ConnectionBlocked: 0x000a003c,
  /** connection.unblocked */
  ConnectionUnblocked: 0x000a003d,
  /** connection.update-secret */
  ConnectionUpdateSecret: 0x000a0046,
  /** connection.update-secret-ok */
  ConnectionUpdateSecretOk: 0x000a0047,

  /** channel.open */
  ChannelOpen: 0x0014000a,
  /** channel.open-ok */
  ChannelOpenOk: 0x0014000b,
  /** channel.flow */
  ChannelFlow: 0x00140014,
  /** channel.flow-ok */
  ChannelFlowOk: 0x00140015,
  /** channel.close */
  ChannelClose: 0x00140028,
  /** channel.close-ok */
  ChannelCloseOk: 0x00140029,

  /** exchange.declare */
  ExchangeDeclare: 0x0028000a,
  /** exchange.declare-ok */
  ExchangeDeclareOk: 0x0028000b,
  /** exchange.delete */
  ExchangeDelete: 0x00280014,
  /** exchange.delete-ok */
  ExchangeDeleteOk: 0x00280015,
  /** exchange.bind */
  ExchangeBind: 0x0028001e,
  /** exchange.bind-ok */
  ExchangeBindOk: 0x0028001f,
  /** exchange.unbind */
  ExchangeUnbind: 0x00280028,
  /** exchange.unbind-ok */
  ExchangeUnbindOk: 0x00280033,

  /** queue.declare */
  QueueDeclare: 0x0032000a,
  /** queue.declare-ok */
  QueueDeclareOk: 0x0032000b,
  /** queue.bind */
  QueueBind: 0x00320014,
  /** queue.bind-ok */
  QueueBindOk: 0x00320015,
  /** queue.purge */
  QueuePurge: 0x0032001e,
  /** queue.purge-ok */
  QueuePurgeOk: 0x0032001f,
  /** queue.delete */
  QueueDelete: 0x00320028,
  /** queue.delete-ok */
  QueueDeleteOk: 0x00320029,
  /** queue.unbind */
  QueueUnbind: 0x00320032,
  /** queue.unbind-ok */
  QueueUnbindOk: 0x00320033,

  /** basic.qos */
  BasicQos: 0x003c000a,
  /** basic.qos-ok */
  BasicQosOk: 0x003c000b,
  /** basic.consume */
  BasicConsume: 0x003c0014,
  /** basic.consume-ok */
  BasicConsumeOk: 0x003c0015,
  /** basic.cancel */
  BasicCancel: 0x003c001e,
  /** basic.cancel-ok */
  BasicCancelOk: 0x003c001f,
  /** basic.publish */
  BasicPublish: 0x003c0028,
  /** basic.return */
  BasicReturn: 0x003c0032,
  /** basic.deliver */
  BasicDeliver: 0x003c003c,
  /** basic.get */
  BasicGet: 0x003c0046,
  /** basic.get-ok */
  BasicGetOk: 0x003c0047,
  /** basic.get-empty */
  BasicGetEmpty: 0x003c0048,
  /** basic.ack */
  BasicAck: 0x003c0050,
  /** basic.reject */
  BasicReject: 0x003c005a,
  /** basic.recover-async */
  BasicRecoverAsync: 0x003c0064,
  /** basic.recover */
  BasicRecover: 0x003c006e,
  /** basic.recover-ok */
  BasicRecoverOk: 0x003c006f,
  /** basic.nack */
  BasicNack: 0x003c0078,

  /** confirm.select */
  ConfirmSelect: 0x0055000a,
  /** confirm.select-ok */
  ConfirmSelectOk: 0x0055000b,

  /** tx.select */
  TxSelect: 0x005a000a,
  /** tx.select-ok */
  TxSelectOk: 0x005a000b,
  /** tx.commit */
  TxCommit: 0x005a0014,
  /** tx.commit-ok */
  TxCommitOk: 0x005a0015,
  /** tx.rollback */
  TxRollback: 0x005a001e,
  /** tx.rollback-ok */
  TxRollbackOk: 0x005a001f,
} as const;
export type MethodIdName = keyof typeof MethodId;

/** Reply codes by spec name. */
export const ReplyCode = {
  REPLY_SUCCESS: 200,
  CONTENT_TOO_LARGE: 311,
  NO_ROUTE: 312,
  NO_CONSUMERS: 313,
  CONNECTION_FORCED: 320,
  INVALID_PATH: 402,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  FRAME_ERROR: 501,
  SYNTAX_ERROR: 502,
  COMMAND_INVALID: 503,
  CHANNEL_ERROR: 504,
  UNEXPECTED_FRAME: 505,
  RESOURCE_ERROR: 506,
  NOT_ALLOWED: 530,
  NOT_IMPLEMENTED: 540,
  INTERNAL_ERROR: 541,
} as const;
export type ReplyCodeName = keyof typeof ReplyCode;
export type ReplyCodeValue = (typeof ReplyCode)[ReplyCodeName];

/**
 * Which exception a reply code raises (§4.8.1): a soft error closes the
 * channel ("channel exception"), a hard error closes the connection. From the
 * `class="soft-error"` / `class="hard-error"` attributes of amqp0-9-1.xml.
 * 200, 312 and 313 are not errors (312/313 travel in basic.return); they are
 * listed as channel scope so that the map is total.
 */
export const REPLY_CODE_SCOPE: Readonly<Record<ReplyCodeValue, 'channel' | 'connection'>> = {
  200: 'channel',
  311: 'channel',
  312: 'channel',
  313: 'channel',
  320: 'connection',
  402: 'connection',
  403: 'channel',
  404: 'channel',
  405: 'channel',
  406: 'channel',
  501: 'connection',
  502: 'connection',
  503: 'connection',
  504: 'connection',
  505: 'connection',
  506: 'connection',
  530: 'connection',
  540: 'connection',
  541: 'connection',
};

const NAME_BY_CODE = new Map<number, ReplyCodeName>(
  (Object.entries(ReplyCode) as [ReplyCodeName, number][]).map(([k, v]) => [v, k]),
);

/** The spec name of a reply code ("FRAME_ERROR"), or undefined for an unknown code. */
export function replyCodeName(code: number): ReplyCodeName | undefined {
  return NAME_BY_CODE.get(code);
}

/** True for a hard error (closes the connection); unknown codes count as hard. */
export function isHardError(code: number): boolean {
  return (REPLY_CODE_SCOPE as Record<number, string>)[code] !== 'channel';
}
