/**
 * AMQP `arguments` tables → Broker options, by RabbitMQ's names. A value of
 * the wrong type or range is refused with 406 PRECONDITION_FAILED, worded
 * as RabbitMQ words it ("invalid arg 'x-message-ttl' for queue 'q' ...").
 * Arguments we do not know are ignored, as RabbitMQ ignores unknown ones;
 * the ones RabbitMQ knows and we do not implement are listed in
 * docs/amqp-server.md.
 */
import type { QueueOptions } from '../broker.js';
import { fieldNumber, Typed, type FieldTable, type FieldValue } from './codec/field-table.js';
import { ReplyCode } from './codec/constants.js';
import { AmqpError } from './errors.js';

const INTEGER_LETTERS = new Set(['b', 'B', 's', 'u', 'I', 'i', 'l', 'L']);

function integerArg(v: FieldValue, arg: string, queue: string, min: number): number {
  let n: number | undefined;
  if (v instanceof Typed && INTEGER_LETTERS.has(v.type)) n = fieldNumber(v);
  else if (typeof v === 'number' && Number.isInteger(v)) n = v;
  else if (typeof v === 'bigint') n = Number(v);
  if (n === undefined) throw invalid(arg, queue, `must be an integer, got ${describe(v)}`);
  if (!Number.isSafeInteger(n) || n < min) throw invalid(arg, queue, `must be an integer >= ${min}, got ${n}`);
  return n;
}

function stringArg(v: FieldValue, arg: string, queue: string): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  throw invalid(arg, queue, `must be a string, got ${describe(v)}`);
}

function invalid(arg: string, queue: string, what: string): AmqpError {
  return new AmqpError(ReplyCode.PRECONDITION_FAILED, `invalid arg '${arg}' for queue '${queue}' in vhost '/': ${what}`);
}

function describe(v: FieldValue): string {
  if (v instanceof Typed) return `${String(fieldNumber(v))} (type '${v.type}')`;
  if (v instanceof Uint8Array) return 'a byte array';
  if (Array.isArray(v)) return 'an array';
  if (v === null || v === undefined) return 'void';
  if (typeof v === 'object') return 'a table';
  return `${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`;
}

/** Options for `Broker.declareQueue` from queue.declare's arguments (x-expires included: see QueueOptions.expires). */
export function queueOptionsFromArguments(args: FieldTable | undefined, queue: string): QueueOptions & { expires?: number } {
  const o: QueueOptions & { expires?: number } = {};
  if (args === undefined) return o;
  for (const key of Object.keys(args)) {
    const v = args[key];
    if (v === undefined) continue;
    switch (key) {
      case 'x-message-ttl': o.messageTtl = integerArg(v, key, queue, 0); break;
      case 'x-expires': o.expires = integerArg(v, key, queue, 1); break;
      case 'x-max-length': o.maxLength = integerArg(v, key, queue, 0); break;
      case 'x-max-length-bytes': o.maxLengthBytes = integerArg(v, key, queue, 0); break;
      case 'x-delivery-limit': o.deliveryLimit = integerArg(v, key, queue, 0); break;
      case 'x-consumer-timeout': o.consumerTimeout = integerArg(v, key, queue, 1); break;
      case 'x-overflow': {
        const s = stringArg(v, key, queue);
        if (s !== 'drop-head' && s !== 'reject-publish' && s !== 'reject-publish-dlx') throw invalid(key, queue, `must be drop-head, reject-publish or reject-publish-dlx, got '${s}'`);
        o.overflow = s;
        break;
      }
      case 'x-dead-letter-exchange': o.deadLetterExchange = stringArg(v, key, queue); break;
      case 'x-dead-letter-routing-key': o.deadLetterRoutingKey = stringArg(v, key, queue); break;
      case 'x-queue-type': {
        const s = stringArg(v, key, queue);
        // A classic or quorum queue behaves here as one ringmq queue (quorum's delivery limit and
        // dead-lettering are ours); a stream is something else, refused rather than faked.
        if (s !== 'classic' && s !== 'quorum') throw invalid(key, queue, `queue type '${s}' is not supported (classic and quorum are)`);
        break;
      }
      default:
        break; // unknown or not implemented: ignored, as RabbitMQ ignores unknown arguments
    }
  }
  if (o.deadLetterRoutingKey !== undefined && o.deadLetterExchange === undefined) {
    throw new AmqpError(ReplyCode.PRECONDITION_FAILED, `invalid arg 'x-dead-letter-routing-key' for queue '${queue}' in vhost '/': x-dead-letter-exchange must also be set`);
  }
  return o;
}

/**
 * A field table as plain JS values, for exchange and binding arguments that
 * the broker keeps as JSON (topology log) and matches headers against:
 * integers and floats as numbers, timestamps as numbers of seconds, byte
 * arrays as Buffers, tables and arrays recursively.
 */
export function plainArguments(t: FieldTable | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (t === undefined) return out;
  for (const k of Object.keys(t)) {
    const v = t[k];
    if (v !== undefined) out[k] = plainValue(v);
  }
  return out;
}

function plainValue(v: FieldValue): unknown {
  if (v instanceof Typed) return fieldNumber(v);
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map((x) => plainValue(x ?? null));
  if (v instanceof Uint8Array) return Buffer.from(v);
  if (v !== null && typeof v === 'object') return plainArguments(v as FieldTable);
  return v;
}
