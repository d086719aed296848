/**
 * Typed errors of the embedded Broker API. Every misuse has a stable `code`
 * (switch on it) and the AMQP 0-9-1 reply code the network front sends for
 * it, so the two faces of ringmq report a fault the same way.
 */
export type BrokerErrorCode =
  | 'ERR_NOT_FOUND' // unknown queue or exchange (404 NOT_FOUND)
  | 'ERR_PRECONDITION' // redeclare with other arguments, delete if-unused/if-empty, unknown delivery (406 PRECONDITION_FAILED)
  | 'ERR_RESOURCE_LOCKED' // exclusive queue or consumer held by another owner (405 RESOURCE_LOCKED)
  | 'ERR_ACCESS_REFUSED' // reserved names (amq.*), internal exchange (403 ACCESS_REFUSED)
  | 'ERR_INVALID_ARGUMENT' // a bad option value (406 for queue arguments, as RabbitMQ)
  | 'ERR_MESSAGE_TOO_LARGE' // body above maxMessageBytes (406 in AMQP; RabbitMQ closes with 406 too)
  | 'ERR_REJECTED' // a publish refused by the queue (reject-publish overflow): its confirm is a nack
  | 'ERR_TIMEOUT' // request() got no reply in time
  | 'ERR_CLOSED' // the broker (or the consumer, transaction) is closed
  | 'ERR_SHARD_FAILED' // a shard worker died; its queues are unavailable until reopen
  | 'ERR_BLOCKED' // publishing refused while a resource alarm is on (memory high-water, disk free limit): G10
  | 'ERR_LOCKED_DIR'; // another broker holds the data directory

const REPLY_CODES: Record<BrokerErrorCode, number> = {
  ERR_NOT_FOUND: 404,
  ERR_PRECONDITION: 406,
  ERR_RESOURCE_LOCKED: 405,
  ERR_ACCESS_REFUSED: 403,
  ERR_INVALID_ARGUMENT: 406,
  ERR_MESSAGE_TOO_LARGE: 406,
  ERR_REJECTED: 406,
  ERR_TIMEOUT: 406,
  ERR_CLOSED: 320,
  ERR_SHARD_FAILED: 541,
  ERR_BLOCKED: 506,
  ERR_LOCKED_DIR: 530,
};

export class BrokerError extends Error {
  readonly code: BrokerErrorCode;
  /** The AMQP 0-9-1 reply code for this error. */
  readonly replyCode: number;
  constructor(code: BrokerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BrokerError';
    this.code = code;
    this.replyCode = REPLY_CODES[code];
  }
}

/** Errors cross the rings as {code, message}; this turns one back into a BrokerError. */
export function brokerErrorFrom(e: { code: string; message: string }): BrokerError {
  const code = (e.code in REPLY_CODES ? e.code : 'ERR_SHARD_FAILED') as BrokerErrorCode;
  return new BrokerError(code, e.message);
}
