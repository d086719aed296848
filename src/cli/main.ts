import { parseArgs } from 'node:util';
import { DEFAULT_METRICS_URL, runStat } from './stat.js';
import { runBench } from './bench.js';

/**
 * `ringmq serve | bench | fuzz`: argument parsing only; each command lives in
 * its own module. Returns the process exit code (0 ok, 1 failure, 2 usage).
 */

const USAGE = `ringmq — a message broker engine for Node.js

Usage:
  ringmq serve [--port N] [--host H] [--data DIR] [--fsync always|interval|never] [--shards N]
      Run the broker: AMQP 0-9-1 on 127.0.0.1:5672, data in ./data.
  ringmq bench [SUITE...] [--json] [--quick] [--list] [--report DIR]
      Run benchmarks (all suites when none is named) and print a table;
      --json prints one JSON object per case per line; --report DIR also
      writes DIR/report.html (SVG charts) and DIR/results.jsonl.
  ringmq fuzz [--seconds N] [--seed S]
      Randomized workloads with injected crashes, checked against the guarantees.
  ringmq stat [--url URL] [--interval S] [--once]
      A live table of a running broker's queues (depth, unacked, consumers,
      rates), read from its metrics endpoint (default ${DEFAULT_METRICS_URL}).
  ringmq help [COMMAND]

Options:
  -h, --help     this text
  -v, --version  the version
`;

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      case '-v':
      case '--version':
        process.stdout.write(`${await version()}\n`);
        return 0;
      case 'serve':
        return serve(rest);
      case 'bench':
        return await bench(rest);
      case 'fuzz':
        return fuzz(rest);
      case 'stat':
        return await stat(rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ringmq: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function positiveInt(name: string, value: string | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new UsageError(`--${name} must be an integer in [1, ${max}], got "${value}"`);
  return n;
}

export interface ServeArgs {
  host: string;
  port: number;
  data: string;
  fsync: 'always' | 'interval' | 'never';
  shards: number | undefined;
}

export function parseServeArgs(args: string[]): ServeArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '5672' },
      data: { type: 'string', default: './data' },
      fsync: { type: 'string', default: 'always' },
      shards: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new UsageError(`serve takes no positional arguments, got "${positionals.join(' ')}"`);
  const fsync = values.fsync;
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') {
    throw new UsageError(`--fsync must be always, interval or never, got "${fsync}"`);
  }
  return {
    host: values.host,
    port: positiveInt('port', values.port, 65535)!,
    data: values.data,
    fsync,
    shards: positiveInt('shards', values.shards, 64),
  };
}

function serve(args: string[]): number {
  const parsed = parseServeArgs(args);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write('ringmq serve: not yet — the AMQP server lands with issue #5 (the engine with #4).\n');
  return 1;
}

export interface FuzzArgs {
  seconds: number;
  seed: number | undefined;
}

export function parseFuzzArgs(args: string[]): FuzzArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new UsageError(`fuzz takes no positional arguments, got "${positionals.join(' ')}"`);
  let seed: number | undefined;
  if (values.seed !== undefined) {
    seed = Number(values.seed);
    if (!/^-?\d+$/.test(values.seed) || !Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got "${values.seed}"`);
  }
  return { seconds: positiveInt('seconds', values.seconds, 7 * 24 * 3600)!, seed };
}

function fuzz(args: string[]): number {
  const parsed = parseFuzzArgs(args);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write('ringmq fuzz: not yet — the fuzzer lands with issue #6.\n');
  return 1;
}

async function stat(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { url: { type: 'string', default: DEFAULT_METRICS_URL }, interval: { type: 'string', default: '2' }, once: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length) throw new UsageError(`stat takes no positional arguments, got "${positionals.join(' ')}"`);
  const intervalS = Number(values.interval);
  if (!Number.isFinite(intervalS) || intervalS <= 0) throw new UsageError(`--interval must be a positive number of seconds, got "${values.interval}"`);
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url must be a URL, got "${values.url}"`);
  }
  return runStat({ url: url.href, intervalS, once: values.once });
}

async function bench(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      report: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.report === '') throw new UsageError('--report needs a directory');
  return runBench(positionals, { json: values.json, quick: values.quick, list: values.list, ...(values.report !== undefined ? { report: values.report } : {}) });
}
