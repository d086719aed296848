/** Helpers for broker tests: temporary data directories and waiting for conditions. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker, type BrokerOptions } from '../../src/broker.js';

/** Every directory tempDir made: removed when the test process exits, whether or not the test removed it. */
const made = new Set<string>();
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = 'ringmq-broker-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Opens a broker on a fresh temporary directory (or `dir`), 2 shards unless
 * told, with the I/O poll on (BrokerOptions.ioSpinUs; its default is off for
 * 2 shards on 2 cores) so that these tests run the records through it too.
 */
export async function openBroker(opts: Partial<BrokerOptions> = {}): Promise<Broker> {
  return Broker.open({ shards: 2, fsync: 'always', ioSpinUs: 50, ...opts, dir: opts.dir ?? tempDir() });
}

/** Polls `cond` every few ms until it holds or `ms` passes (then throws with `what`). */
export async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
