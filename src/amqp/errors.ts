import { isHardError, ReplyCode, replyCodeName } from './codec/constants.js';

/**
 * An AMQP protocol error, carrying what the peer is told: the reply code, the
 * class and method that caused it (0 when not caused by a method), and the
 * channel it happened on. `closes` says which exception the code raises
 * (§4.8.1): a channel exception closes the channel (channel.close), a
 * connection exception closes the connection (connection.close on channel 0).
 *
 * The codec and the frame reader throw only this type for bad input; any other
 * throw is a bug. Encoders throw TypeError/RangeError for bad arguments from
 * our own code (a programming error, not a peer's).
 */
export class AmqpError extends Error {
  readonly replyCode: number;
  readonly classId: number;
  readonly methodId: number;
  readonly channel: number;
  readonly closes: 'channel' | 'connection';

  constructor(replyCode: number, text: string, classId = 0, methodId = 0, channel = 0) {
    super(text);
    this.name = 'AmqpError';
    this.replyCode = replyCode;
    this.classId = classId;
    this.methodId = methodId;
    this.channel = channel;
    this.closes = isHardError(replyCode) ? 'connection' : 'channel';
  }

  /** The reply-text for connection.close / channel.close, as RabbitMQ words it: "FRAME_ERROR - text". Cut to a short string. */
  get replyText(): string {
    let t = `${replyCodeName(this.replyCode) ?? 'ERROR'} - ${this.message}`;
    // reply-text is a short string: at most 255 octets. Cut whole code points.
    while (Buffer.byteLength(t) > 255) t = [...t].slice(0, -1).join('');
    return t;
  }
}

/**
 * The first 8 octets were not "AMQP" 0 0 9 1. §4.2.2: the server "MUST write a
 * valid protocol header to the socket, then flush the socket ... and then close
 * the socket connection" - no connection.close is sent. `received` holds the
 * octets read so far (at most 8) for the log.
 */
export class AmqpProtocolHeaderError extends AmqpError {
  readonly received: Buffer;
  constructor(received: Buffer) {
    super(ReplyCode.FRAME_ERROR, `bad protocol header ${JSON.stringify(received.toString('latin1'))} (${received.toString('hex')}); expected "AMQP" 0 0 9 1`);
    this.name = 'AmqpProtocolHeaderError';
    this.received = received;
  }
}
