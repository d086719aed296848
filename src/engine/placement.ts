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
