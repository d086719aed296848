/** Temporary log directories under os.tmpdir(), removed after use. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export function makeTmpDir(prefix = 'ringmq-log-'): string {
  return mkdtempSync(join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export async function withTmpDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = makeTmpDir();
  try {
    return await fn(dir);
  } finally {
    removeDir(dir);
  }
}

/** Deterministic small PRNG (mulberry32) for seeded tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Body bytes derived from (queue, message) so any altered byte is detectable. */
export function bodyFor(queueId: number, messageId: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (queueId * 2654435761 + messageId * 40503) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
