/**
 * The records that cross the rings between the I/O thread and a shard worker
 * (docs/engine-protocol.md). Every record is one ring record whose ring type
 * is the op code below; integers are little-endian; u64 fields hold safe
 * integers (< 2^53). The fixed part of each record comes first, at the
 * offsets given here, then its variable part.
 *
 * Rare control-plane requests (declare, consume, purge, stats, ...) travel as
 * UTF-8 JSON (`OP_CTRL`); the per-message ops (publish, settle, deliver,
 * confirm) are binary and fixed-layout so that neither side allocates to
 * parse them.
 */
import { readU16, readU32, readU64, writeU16, writeU32, writeU64 } from '../log/format.js';

export { readU16, readU32, readU64, writeU16, writeU32, writeU64 };

// ---- I/O thread -> shard ----------------------------------------------------

/**
 * Publish one message to one queue: [u32 queueId][u32 0][u32 flags][u32 metaLen][meta][body].
 * Publishes are numbered implicitly, 1, 2, 3... per shard in ring order; confirms refer to those numbers.
 */
export const OP_PUBLISH = 1;
export const PUB_QUEUE_OFFSET = 0;
export const PUB_RESERVED_OFFSET = 4;
export const PUB_FLAGS_OFFSET = 8;
export const PUB_META_LEN_OFFSET = 12;
export const PUB_FIXED_SIZE = 16;
export const PUB_FLAG_PERSISTENT = 1;

/** Settle a delivery: [u32 queueId][u32 owner][u64 msgId][u8 kind][u8 requeue][u8 multiple][u8 0]. */
export const OP_SETTLE = 2;
export const SETTLE_QUEUE_OFFSET = 0;
export const SETTLE_OWNER_OFFSET = 4;
export const SETTLE_MSG_OFFSET = 8;
export const SETTLE_KIND_OFFSET = 16;
export const SETTLE_REQUEUE_OFFSET = 17;
export const SETTLE_MULTIPLE_OFFSET = 18;
export const SETTLE_SIZE = 20;
export const SettleKind = { Ack: 0, Nack: 1 } as const;

/** A control request: [u32 reqId][UTF-8 JSON]. Answered by EV_CTRL_REPLY with the same reqId. */
export const OP_CTRL = 3;

/** A dead-lettered message has been republished: settle it in the origin log. [u32 queueId][u64 msgId]. */
export const OP_DL_DONE = 4;
export const DL_DONE_SIZE = 12;

/** A fragment of a record larger than the ring's maxBody: the bytes, in order. */
export const OP_FRAG = 5;
/** The last fragment: [u16 type of the whole record][u16 0][bytes]. The receiver handles the joined bytes as one record of that type. */
export const OP_FRAG_END = 6;
export const FRAG_END_HEADER = 4;

// ---- shard -> I/O thread ----------------------------------------------------

/** [u32 consumer][u32 queueId][u64 msgId][u32 deliveryCount][u32 flags][u32 metaLen][meta][body]. */
export const EV_DELIVER = 10;
export const DLV_CONSUMER_OFFSET = 0;
export const DLV_QUEUE_OFFSET = 4;
export const DLV_MSG_OFFSET = 8;
export const DLV_COUNT_OFFSET = 16;
export const DLV_FLAGS_OFFSET = 20;
export const DLV_META_LEN_OFFSET = 24;
export const DLV_FIXED_SIZE = 28;
export const DLV_FLAG_REDELIVERED = 1;

/**
 * Confirms: [u64 through][u32 n][u32 0] then n x [u64 publish number]: every
 * publish numbered <= through is settled; the n listed ones were rejected
 * (overflow reject-publish), the others are confirmed.
 */
export const EV_CONFIRM = 11;
export const CONFIRM_THROUGH_OFFSET = 0;
export const CONFIRM_REJECTS_OFFSET = 8;
export const CONFIRM_FIXED_SIZE = 16;
export const CONFIRM_ENTRY_SIZE = 8;
export const ConfirmStatus = { Ok: 0, Rejected: 1 } as const;

/** [u32 reqId][u32 ok][UTF-8 JSON: the result, or {code, message} when ok = 0]. */
export const EV_CTRL_REPLY = 12;

/**
 * A message left its queue for a dead-letter reason and the queue has a DLX:
 * [u32 queueId][u64 msgId][u8 reason][u8 needsDone][u16 0][u32 deliveryCount][u64 time][u32 metaLen][meta][body].
 * needsDone = 1: the message is still unsettled in the origin log; the I/O
 * thread answers OP_DL_DONE once the republished copies are confirmed.
 */
export const EV_DEAD_LETTER = 13;
export const DL_QUEUE_OFFSET = 0;
export const DL_MSG_OFFSET = 4;
export const DL_REASON_OFFSET = 12;
export const DL_NEEDS_DONE_OFFSET = 13;
export const DL_COUNT_OFFSET = 16;
export const DL_TIME_OFFSET = 20;
export const DL_META_LEN_OFFSET = 28;
export const DL_FIXED_SIZE = 32;
export const DL_REASONS = ['rejected', 'expired', 'maxlen', 'delivery_limit'] as const;
export type DeadLetterReason = (typeof DL_REASONS)[number];

/** An unsolicited event from a shard: [UTF-8 JSON] ({type: 'consumer-timeout', ...}). */
export const EV_EVENT = 14;

/** basic.get answer with a message: [u32 reqId][u32 queueId][u64 msgId][u32 deliveryCount][u32 flags][u32 remaining][u32 metaLen][meta][body]. */
export const EV_GOT = 15;
export const GOT_REQ_OFFSET = 0;
export const GOT_QUEUE_OFFSET = 4;
export const GOT_MSG_OFFSET = 8;
export const GOT_COUNT_OFFSET = 16;
export const GOT_FLAGS_OFFSET = 20;
export const GOT_REMAINING_OFFSET = 24;
export const GOT_META_LEN_OFFSET = 28;
export const GOT_FIXED_SIZE = 32;

// ---- message meta -----------------------------------------------------------
//
// The engine's envelope of a message, written once by the publisher side and
// carried unchanged through the rings and into the log (it is the log's
// "properties" blob, docs/log-format.md):
//   0  u64 publishedAt   ms since the epoch
//   8  u64 expiresAt     ms since the epoch, 0 = never (per-message expiration)
//  16  u64 readyAt       ms since the epoch, 0 = at once (delayed publish)
//  24  u32 metaLength    bytes of the whole meta (so meta+body splits without parsing)
//  28  u8  flags         bit 0 persistent
//  29  u8  0
//  30  u16 exchange length, then the exchange (UTF-8)
//      u16 routing key length, then the routing key (UTF-8)
//      AMQP 0-9-1 basic content header payload (class 60, weight 0, body size 0, property flags, properties)
export const META_PUBLISHED_OFFSET = 0;
export const META_EXPIRES_OFFSET = 8;
export const META_READY_OFFSET = 16;
export const META_LENGTH_OFFSET = 24;
export const META_FLAGS_OFFSET = 28;
export const META_EXCHANGE_LEN_OFFSET = 30;
export const META_FIXED_SIZE = 32;
export const META_FLAG_PERSISTENT = 1;
