import { parseArgs } from 'node:util';
import { runBench } from './bench.js';

/**
 * `ringmq serve | bench | fuzz`: argument parsing only; each command lives in
 * its own module. Returns the process exit code (0 ok, 1 failure, 2 usage).
 */

const USAGE = `ringmq — a message broker engine for Node.js

Usage:
  ringmq serve [--port N] [--host H] [--data DIR] [--fsync always|interval|never] [--shards N]
      Run the broker: AMQP 0-9-1 on 127.0.0.1:5672, data in ./data.
  ringmq bench [SUITE...] [--json] [--quick] [--list]
               [--compare rabbitmq] [--url amqp://...] [--shards N]
      Run benchmarks (all suites when none is named) and print a table;
      --json prints one JSON object per case per line. The amqp suite
      benches \`ringmq serve\` (N shards, default 1) or, with --url, a running
      broker; --compare rabbitmq also runs it against a private RabbitMQ
      (scripts/rabbitmq.mjs) and prints ratios. These three flags select
      the amqp suite when no suite is named.
  ringmq fuzz [--seconds N] [--seed S]
      Randomized workloads with injected crashes, checked against the guarantees.
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

export interface BenchArgs {
  suites: string[];
  json: boolean;
  quick: boolean;
  list: boolean;
  /** Also run the amqp suite's cases against this broker and print ratios. */
  compare: 'rabbitmq' | undefined;
  /** Bench an already running AMQP broker (amqp suite) instead of starting `ringmq serve`. */
  url: string | undefined;
  /** Shards of the `ringmq serve` the amqp suite starts. */
  shards: number | undefined;
}

/** Flags that only the amqp suite reads; naming one selects that suite when no suite is named. */
const AMQP_FLAGS = ['compare', 'url', 'shards'] as const;

export function parseBenchArgs(args: string[]): BenchArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      compare: { type: 'string' },
      url: { type: 'string' },
      shards: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (values.compare !== undefined && values.compare !== 'rabbitmq') {
    throw new UsageError(`--compare takes "rabbitmq" (the only broker it can start), got "${values.compare}"`);
  }
  if (values.url !== undefined) {
    let ok = false;
    try {
      const u = new URL(values.url);
      ok = (u.protocol === 'amqp:' || u.protocol === 'amqps:') && u.hostname !== '';
    } catch {
      // not a URL
    }
    if (!ok) throw new UsageError(`--url must be an AMQP URL like amqp://guest:guest@127.0.0.1:5672, got "${values.url}"`);
  }
  let suites = positionals;
  const amqpOnly = AMQP_FLAGS.filter((f) => values[f] !== undefined);
  if (amqpOnly.length) {
    if (suites.length === 0) suites = ['amqp'];
    else if (!suites.includes('amqp')) throw new UsageError(`--${amqpOnly[0]} applies to the amqp suite, which is not among ${suites.join(', ')}`);
  }
  return {
    suites,
    json: values.json,
    quick: values.quick,
    list: values.list,
    compare: values.compare,
    url: values.url,
    shards: positiveInt('shards', values.shards, 64),
  };
}

async function bench(args: string[]): Promise<number> {
  const parsed = parseBenchArgs(args);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  return runBench(parsed.suites, parsed);
}
