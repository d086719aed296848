import { parseArgs } from 'node:util';
import { runBench } from './bench.js';
import { ALL_FAULTS, KNOWN_BUGS, type Fault, type KnownBug } from '../fuzz/workload.js';

/**
 * `ringmq serve | bench | fuzz`: argument parsing only; each command lives in
 * its own module. Returns the process exit code (0 ok, 1 failure, 2 usage).
 */

const USAGE = `ringmq — a message broker engine for Node.js

Usage:
  ringmq serve [--port N] [--host H] [--data DIR] [--fsync always|interval|never] [--shards N]
      Run the broker: AMQP 0-9-1 on 127.0.0.1:5672, data in ./data.
  ringmq bench [SUITE...] [--json] [--quick] [--list]
      Run benchmarks (all suites when none is named) and print a table;
      --json prints one JSON object per case per line.
  ringmq fuzz [--seconds N | --runs N | --replay SEED] [--seed S] [--target embedded|amqp] [--url URL]
             [--fsync always|interval|never] [--faults kill,torn,restart,disconnect,timeout,ring|all|none]
             [--steps N] [--jobs N] [--avoid binding-args,noack-cancel,dl-close|all] [--json] [--self-check]
      Randomized workloads with injected faults against a real broker; the recorded
      history is checked against the delivery guarantees G1-G10 (docs/fuzz.md).
      Exits non-zero on any violation; each prints its seed and the command that replays it.
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
        return await fuzz(rest);
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
  /** Run workloads until this many seconds pass (default 60 when neither --runs nor --replay is given). */
  seconds: number | undefined;
  runs: number | undefined;
  seed: number | undefined;
  replay: number | undefined;
  target: 'embedded' | 'amqp';
  url: string | undefined;
  fsync: 'always' | 'interval' | 'never' | undefined;
  faults: Fault[] | undefined;
  steps: number | undefined;
  jobs: number | undefined;
  avoid: KnownBug[] | undefined;
  json: boolean;
  selfCheck: boolean;
}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} must be an integer, got "${value}"`);
  return n;
}

function listOf<T extends string>(name: string, value: string | undefined, known: readonly T[]): T[] | undefined {
  if (value === undefined) return undefined;
  if (value === 'none' || value === '') return [];
  if (value === 'all') return [...known];
  const xs = value.split(',').map((x) => x.trim()).filter(Boolean);
  for (const x of xs) if (!(known as readonly string[]).includes(x)) throw new UsageError(`--${name}: unknown '${x}' (known: ${known.join(', ')}, all, none)`);
  return xs as T[];
}

export function parseFuzzArgs(args: string[]): FuzzArgs | 'help' {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      seconds: { type: 'string' }, runs: { type: 'string' }, seed: { type: 'string' }, replay: { type: 'string' },
      target: { type: 'string', default: 'embedded' }, url: { type: 'string' }, fsync: { type: 'string' }, faults: { type: 'string' },
      steps: { type: 'string' }, jobs: { type: 'string' }, avoid: { type: 'string' },
      json: { type: 'boolean', default: false }, 'self-check': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new UsageError(`fuzz takes no positional arguments, got "${positionals.join(' ')}"`);
  const target = values.target;
  if (target !== 'embedded' && target !== 'amqp') throw new UsageError(`--target must be embedded or amqp, got "${target}"`);
  if (values.url !== undefined && target !== 'amqp') throw new UsageError('--url needs --target amqp');
  const fsync = values.fsync;
  if (fsync !== undefined && fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') throw new UsageError(`--fsync must be always, interval or never, got "${fsync}"`);
  const runs = positiveInt('runs', values.runs);
  const replay = integer('replay', values.replay);
  let seconds = positiveInt('seconds', values.seconds, 7 * 24 * 3600);
  if (seconds === undefined && runs === undefined && replay === undefined) seconds = 60;
  return {
    seconds, runs, seed: integer('seed', values.seed), replay, target, url: values.url, fsync,
    faults: listOf('faults', values.faults, ALL_FAULTS), steps: positiveInt('steps', values.steps, 1_000_000),
    jobs: positiveInt('jobs', values.jobs, 64), avoid: listOf('avoid', values.avoid, KNOWN_BUGS),
    json: values.json, selfCheck: values['self-check'],
  };
}

async function fuzz(args: string[]): Promise<number> {
  const parsed = parseFuzzArgs(args);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (parsed.selfCheck) {
    const { selfCheck } = await import('../fuzz/selfcheck.js');
    return (await selfCheck({ ...(parsed.seconds !== undefined && args.includes('--seconds') ? { seconds: parsed.seconds } : {}), json: parsed.json })) ? 0 : 1;
  }
  const { fuzz: run } = await import('../fuzz/run.js');
  const s = await run({
    target: parsed.target, json: parsed.json,
    ...(parsed.seconds !== undefined ? { seconds: parsed.seconds } : {}), ...(parsed.runs !== undefined ? { runs: parsed.runs } : {}),
    ...(parsed.seed !== undefined ? { seed: parsed.seed } : {}), ...(parsed.replay !== undefined ? { replay: parsed.replay } : {}),
    ...(parsed.url !== undefined ? { url: parsed.url } : {}), ...(parsed.fsync !== undefined ? { fsync: parsed.fsync } : {}),
    ...(parsed.faults !== undefined ? { faults: parsed.faults } : {}), ...(parsed.steps !== undefined ? { steps: parsed.steps } : {}),
    ...(parsed.jobs !== undefined ? { jobs: parsed.jobs } : {}), ...(parsed.avoid !== undefined ? { avoid: parsed.avoid } : {}),
    // The self-check's planted bug, replayed from its printed command line.
    ...(process.env.RINGMQ_PLANT_BUG ? { plantedBug: process.env.RINGMQ_PLANT_BUG } : {}),
  });
  const violations = Object.values(s.violations).reduce((a, b) => a + b, 0);
  return violations === 0 && s.failures === 0 && s.workloads > 0 ? 0 : 1;
}

async function bench(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  return runBench(positionals, { json: values.json, quick: values.quick, list: values.list });
}
