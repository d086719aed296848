/**
 * Shared-memory layout of one SPSC ring. The drawing and the rules are in
 * docs/ring-layout.md; keep the two true to each other.
 *
 * ```
 * byte 0    producer line (64 B), Int32 slots 0..15
 *             [0] kWriteSeqField         byte sequence mod 2^30 (producer writes)
 *             [1] kProducerSleepingField  0 | 1 (producer writes)
 *             [2] kMaxBodyField           largest body in bytes (set once at creation)
 * byte 64   consumer line (64 B), Int32 slots 16..31
 *             [16] kReadSeqField          byte sequence mod 2^30 (consumer writes)
 *             [17] kConsumerSleepingField 0 | 1 (consumer writes)
 * byte 128  data: `capacity` bytes, a power of two; records start 8-byte aligned
 * record    u32 length | u16 type | u16 flags | lead (0..7 B) | body (length B) | pad to 8
 * ```
 *
 * Full/empty rule: `used = (write - read) & SEQ_MASK`, `0 <= used <= capacity`;
 * empty when used === 0, and a record of total size s fits when used + s <= capacity
 * (plus the bytes to the end of the data region when it must wrap).
 */

/** Producer cache line: the producer is the only writer of these slots. */
export const kWriteSeqField = 0;
export const kProducerSleepingField = 1;
/** Written once by createRing before either side exists; read-only afterwards. */
export const kMaxBodyField = 2;
/** Consumer cache line: the consumer is the only writer of these slots. */
export const kReadSeqField = 16;
export const kConsumerSleepingField = 17;
/** Int32 slots in the control header (two 64-byte lines). */
export const kFieldCount = 32;

export const CACHE_LINE_SIZE = 64;
export const CONTROL_SIZE = kFieldCount * 4; // 128 bytes
export const DATA_OFFSET = CONTROL_SIZE;

/** Record header, little-endian on every platform Node supports (host order). */
export const LENGTH_OFFSET = 0;
export const LENGTH_SIZE = 4;
export const TYPE_OFFSET = LENGTH_OFFSET + LENGTH_SIZE;
export const TYPE_SIZE = 2;
export const FLAGS_OFFSET = TYPE_OFFSET + TYPE_SIZE;
export const FLAGS_SIZE = 2;
export const RECORD_HEADER_SIZE = FLAGS_OFFSET + FLAGS_SIZE; // 8

/** Records start at multiples of this; every record size is rounded up to it. */
export const RECORD_ALIGN = 8;
/** Flags bits 0..2: bytes of lead padding between header and body (see record.ts). */
export const FLAG_LEAD_MASK = 0x7;

/** Type of the filler record that skips to the end of the data region (wrap). */
export const PAD_TYPE = 0xffff;
/** Type of the record a producer writes last (RingProducer.close). */
export const CLOSE_TYPE = 0xfffe;
/** Largest type a user may give a record. */
export const MAX_USER_TYPE = 0xfffd;

export const MIN_CAPACITY = 64;
/** Default staging: 64 KiB, or the capacity if smaller. */
export const DEFAULT_STAGING_SIZE = 64 * 1024;
/**
 * Records with a body up to this size are staged by RingProducer#tryWrite
 * (written to the producer's private, non-shared staging buffer and copied
 * into the data region in one block at publish); larger ones are written in
 * place, since their copy is a block already.
 */
export const STAGE_MAX_BODY = 512;
/**
 * Sequences count bytes modulo 2^30. Every value then fits a V8 small integer
 * (31-bit with pointer compression), so positions never box into heap numbers
 * when stored in fields or passed to calls: a u32 sequence did, and after the
 * first GiB through a ring each wait allocated (measured: ~2,000 scavenges per
 * million 64 KiB records on the consumer side).
 */
export const SEQ_MASK = 2 ** 30 - 1;
/** 2^29: `used <= capacity` must stay distinguishable modulo 2^30. */
export const MAX_CAPACITY = 2 ** 29;
