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
 * option, else `whenCoresSuffice` if there is more than one core and every
 * shard can have one (2 <= cores, shards <= cores), else 0. The caller checks
 * the range.
 *
 * The I/O thread polls too, so with shards == cores a poller may share its
 * core. Since the polls yield the core to any thread waiting for it
 * (cpu-yield.ts) that costs nothing measurable: with 2 shards on 2 cores,
 * polling measured better than not in every case of `ringmq bench amqp` and
 * `ringmq bench engine` (docs/engine-protocol.md). Before, the rule was
 * shards + 1 <= cores.
 */
export function spinSetting(env: string | undefined, option: number | undefined, whenCoresSuffice: number, shards: number): number {
  if (env !== undefined && env !== '') return Number(env);
  const cores = availableParallelism();
  return option ?? (cores >= 2 && shards <= cores ? whenCoresSuffice : 0);
}
