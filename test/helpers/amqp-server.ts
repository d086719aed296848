/**
 * `ringmq serve` as a child process for the AMQP conformance tests: started
 * on 127.0.0.1 with `--port 0` and a temporary data directory, its port read
 * from the listening line, stopped by its handle (SIGTERM, then SIGKILL if it
 * does not exit in time). Plus small amqplib helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as amqp from 'amqplib';

const BIN = fileURLToPath(new URL('../../../bin/ringmq.js', import.meta.url));
export const LISTENING = /listening on amqp:\/\/([^:]+):(\d+)/;

export interface ServerHandle {
  readonly dir: string;
  readonly port: number;
  readonly url: string;
  readonly proc: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** SIGTERM; SIGKILL after `graceMs`. Resolves with the exit code (null if killed). */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  /** Stops it if running and removes the data directory (unless kept). */
  dispose(keepDir?: boolean): Promise<void>;
}

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'ringmq-amqp-'));
}

/** Starts `ringmq serve --port 0 --host 127.0.0.1 --data DIR [...args]` and waits for its listening line. */
export function startServer(opts: { dir?: string; args?: string[]; timeoutMs?: number } = {}): Promise<ServerHandle> {
  const dir = opts.dir ?? tempDataDir();
  const args = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dir, '--fsync', 'always', '--shards', '2', ...(opts.args ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`ringmq serve did not print its listening line within ${opts.timeoutMs ?? 15000} ms; stderr: ${err}`));
    }, opts.timeoutMs ?? 15000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      if (!LISTENING.test(out)) reject(new Error(`ringmq serve exited (${code}) before listening; stderr: ${err}`));
    });
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      const had = LISTENING.test(out);
      out += d;
      const m = LISTENING.exec(out);
      if (had || m === null) return;
      clearTimeout(timer);
      const port = Number(m[2]);
      const handle: ServerHandle = {
        dir, port, url: `amqp://guest:guest@127.0.0.1:${port}`, proc,
        stderr: () => err,
        async stop(graceMs = 8000) {
          if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          const code = await exited;
          clearTimeout(t);
          return code;
        },
        async kill() {
          if (proc.exitCode !== null || proc.signalCode !== null) return;
          proc.kill('SIGKILL');
          await exited;
        },
        async dispose(keepDir = false) {
          await handle.stop();
          if (!keepDir) rmSync(dir, { recursive: true, force: true });
        },
      };
      resolve(handle);
    });
  });
}

/** An amqplib connection with an 'error' listener (errors are asserted through promises and 'close'). */
export async function connect(server: ServerHandle | string, opts: { heartbeat?: number } = {}): Promise<amqp.ChannelModel> {
  const url = typeof server === 'string' ? server : server.url;
  const c = await amqp.connect(opts.heartbeat === undefined ? url : `${url}?heartbeat=${opts.heartbeat}`);
  c.on('error', () => {});
  return c;
}

export type TestChannel = amqp.Channel & { errors: Error[] };
export type TestConfirmChannel = amqp.ConfirmChannel & { errors: Error[] };

/** A channel whose 'error' events are recorded instead of thrown. */
export async function channel(c: amqp.ChannelModel): Promise<TestChannel>;
export async function channel(c: amqp.ChannelModel, confirm: true): Promise<TestConfirmChannel>;
export async function channel(c: amqp.ChannelModel, confirm = false): Promise<TestChannel | TestConfirmChannel> {
  const ch = (confirm ? await c.createConfirmChannel() : await c.createChannel()) as TestChannel;
  ch.errors = [];
  ch.on('error', (e: Error) => ch.errors.push(e));
  return ch;
}

/** Resolves when the channel closes; with the error that closed it, if any. */
export function closed(ch: amqp.Channel & { errors: Error[] }): Promise<Error | undefined> {
  return new Promise((resolve) => ch.once('close', () => resolve(ch.errors[0])));
}

/** Rejection of `p` as its AMQP reply code (amqplib puts it in `code`). */
export async function codeOf(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: number | string }).code ?? String(e);
  }
  return 'resolved';
}

/** Collects deliveries until `n` arrived (or `ms` passed: then rejects with what came). */
export function collect(ch: amqp.Channel, queue: string, n: number, opts: amqp.Options.Consume & { ack?: boolean; ms?: number } = {}): Promise<amqp.ConsumeMessage[]> {
  const got: amqp.ConsumeMessage[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`only ${got.length} of ${n} messages from '${queue}' in ${opts.ms ?? 5000} ms`)), opts.ms ?? 5000);
    ch.consume(queue, (m) => {
      if (m === null) return;
      got.push(m);
      if (opts.ack) ch.ack(m);
      if (got.length === n) {
        clearTimeout(t);
        resolve(got);
      }
    }, opts).catch(reject);
  });
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
