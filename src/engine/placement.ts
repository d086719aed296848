import { availableParallelism } from 'node:os';

/** Which shard a queue lives on: FNV-1a of its name, modulo the shard count (recorded in its declaration). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function shardOf(queue: string, shards: number): number {
  return fnv1a(queue) % shards;
}

/**
 * A polling setting in µs (BrokerOptions.spinUs and ioSpinUs,
 * AmqpServerOptions.loopSpinUs): the environment variable if set, else the
 * option, else `whenCoresSuffice` if every shard and the I/O thread can have
 * a core (shards + 1 <= cores), else 0. The caller checks the range.
 */
export function spinSetting(env: string | undefined, option: number | undefined, whenCoresSuffice: number, shards: number): number {
  if (env !== undefined && env !== '') return Number(env);
  return option ?? (shards + 1 <= availableParallelism() ? whenCoresSuffice : 0);
}
