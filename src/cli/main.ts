import { parseArgs } from 'node:util';
import { DEFAULT_METRICS_URL, runStat } from './stat.js';
import { runBench } from './bench.js';
import { ALL_FAULTS, KNOWN_BUGS, type Fault, type KnownBug } from '../fuzz/workload.js';

/**
 * `ringmq serve | bench | fuzz`: argument parsing only; each command lives in
 * its own module. Returns the process exit code (0 ok, 1 failure, 2 usage).
 */

const USAGE = `ringmq — a message broker engine for Node.js

Usage:
  ringmq serve [--port N] [--host H] [--data DIR] [--fsync always|interval|never] [--shards N]
               [--users FILE] [--user NAME:PASSWORD ...] [--metrics-port N]
      Run the broker: AMQP 0-9-1 on 127.0.0.1:5672, data in ./data (--port 0: a free port).
      Users: guest/guest from loopback only unless --users/--user say otherwise
      (docs/amqp-server.md). --metrics-port serves Prometheus metrics on loopback.
  ringmq bench [SUITE...] [--json] [--quick] [--list] [--report DIR]
               [--compare rabbitmq] [--url amqp://...] [--shards N]
      Run benchmarks (all suites when none is named) and print a table;
      --json prints one JSON object per case per line; --report DIR also
      writes DIR/report.html (SVG charts) and DIR/results.jsonl. The amqp
      suite benches \`ringmq serve\` (N shards, default 1) or, with --url, a
      running broker; --compare rabbitmq also runs it against a private
      RabbitMQ (scripts/rabbitmq.mjs) and prints ratios. These three flags
      select the amqp suite when no suite is named.
  ringmq fuzz [--seconds N | --runs N | --replay SEED] [--seed S] [--target embedded|amqp|both] [--url URL]
             [--fsync always|interval|never] [--faults kill,torn,restart,disconnect,timeout,ring|all|none]
             [--steps N] [--jobs N] [--avoid binding-args,noack-cancel,dl-close|all] [--json] [--self-check]
      Randomized workloads with injected faults against a real broker; the recorded
      history is checked against the delivery guarantees G1-G10 (docs/fuzz.md).
      Both targets by default, half the time each (--url: the amqp target).
      Exits non-zero on any violation; each prints its seed and the command that replays it.
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
        return await serve(rest);
      case 'bench':
        return await bench(rest);
      case 'fuzz':
        return await fuzz(rest);
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
  /** A users file (docs/amqp-server.md), or undefined. */
  users: string | undefined;
  /** --user NAME:PASSWORD flags, in order. */
  user: string[];
  /** Serve Prometheus metrics on 127.0.0.1:N (docs/metrics.md), or undefined. */
  metricsPort: number | undefined;
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
      users: { type: 'string' },
      user: { type: 'string', multiple: true },
      'metrics-port': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new UsageError(`serve takes no positional arguments, got "${positionals.join(' ')}"`);
  const fsync = values.fsync;
  if (fsync !== 'always' && fsync !== 'interval' && fsync !== 'never') {
    throw new UsageError(`--fsync must be always, interval or never, got "${fsync}"`);
  }
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) throw new UsageError(`--port must be an integer in [0, 65535] (0 = a free port), got "${values.port}"`);
  for (const u of values.user ?? []) if (u.indexOf(':') <= 0) throw new UsageError(`--user must be NAME:PASSWORD, got "${u}"`);
  return {
    host: values.host,
    port,
    data: values.data,
    fsync,
    shards: positiveInt('shards', values.shards, 64),
    users: values.users,
    user: values.user ?? [],
    metricsPort: metricsPort(values['metrics-port']),
  };
}

function metricsPort(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new UsageError(`--metrics-port must be an integer in [0, 65535] (0 = a free port), got "${v}"`);
  return n;
}

/**
 * Runs the broker and its AMQP server until SIGINT/SIGTERM, then closes
 * both cleanly (connections get connection.close 320, the broker drains and
 * syncs) and returns 0. Prints one line on stdout once listening:
 * `ringmq: listening on amqp://HOST:PORT (data DIR, fsync POLICY, shards N)`.
 */
async function serve(args: string[]): Promise<number> {
  const parsed = parseServeArgs(args);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const { Broker } = await import('../broker.js');
  const { BrokerError } = await import('../errors.js');
  const { AmqpServer } = await import('../amqp/server.js');
  const { Authenticator, AuthConfigError, defaultAuthConfig, loadUsersFile, parseUserFlag } = await import('../amqp/auth.js');
  let auth;
  try {
    const config = parsed.users !== undefined ? loadUsersFile(parsed.users) : parsed.user.length > 0 ? { users: [], loopbackUsers: ['guest'] } : defaultAuthConfig();
    for (const u of parsed.user) {
      const entry = parseUserFlag(u);
      config.users = config.users.filter((x) => x.name !== entry.name);
      config.users.push(entry);
    }
    auth = new Authenticator(config);
  } catch (e) {
    if (e instanceof AuthConfigError) {
      process.stderr.write(`ringmq serve: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  let broker;
  try {
    broker = await Broker.open({
      dir: parsed.data, fsync: parsed.fsync, ...(parsed.shards !== undefined ? { shards: parsed.shards } : {}),
      ...(process.stderr.isTTY === true ? { onRecoveryProgress: recoveryProgressLine() } : {}),
    });
    if (process.stderr.isTTY === true) process.stderr.write('\r\x1b[K');
  } catch (e) {
    if (e instanceof BrokerError && e.code === 'ERR_LOCKED_DIR') {
      process.stderr.write(`ringmq serve: cannot use data directory ${parsed.data}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`ringmq serve: cannot open the broker on ${parsed.data}: ${(e as Error).message}\n`);
    return 1;
  }
  const server = new AmqpServer(broker, { host: parsed.host, port: parsed.port, auth });
  let address;
  try {
    address = await server.listen();
  } catch (e) {
    process.stderr.write(`ringmq serve: cannot listen on ${parsed.host}:${parsed.port}: ${(e as Error).message}\n`);
    await server.close();
    await broker.close();
    return 1;
  }
  let metrics: { close(): Promise<void>; port: number } | null = null;
  if (parsed.metricsPort !== undefined) {
    const { startMetricsServer } = await import('../metrics/prometheus.js');
    try {
      metrics = await startMetricsServer(broker, { port: parsed.metricsPort, front: () => server.stats() });
    } catch (e) {
      process.stderr.write(`ringmq serve: cannot serve metrics on 127.0.0.1:${parsed.metricsPort}: ${(e as Error).message}\n`);
      await server.close();
      await broker.close();
      return 1;
    }
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stdout.write(`ringmq: listening on amqp://${host}:${address.port} (data ${parsed.data}, fsync ${broker.fsync}, shards ${broker.shardCount})\n`);
  if (metrics !== null) process.stderr.write(`ringmq: metrics on http://127.0.0.1:${metrics.port}/metrics\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.stderr.write(`ringmq: ${signal}, shutting down\n`);
      resolve();
    };
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await metrics?.close();
  await server.close();
  await broker.close();
  return 0;
}

export interface FuzzArgs {
  /** Run workloads until this many seconds pass (default 60 when neither --runs nor --replay is given). */
  seconds: number | undefined;
  runs: number | undefined;
  seed: number | undefined;
  replay: number | undefined;
  /** both: half the time (or runs) on each target, one after the other (the default without --replay). */
  target: 'embedded' | 'amqp' | 'both';
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
      target: { type: 'string' }, url: { type: 'string' }, fsync: { type: 'string' }, faults: { type: 'string' },
      steps: { type: 'string' }, jobs: { type: 'string' }, avoid: { type: 'string' },
      json: { type: 'boolean', default: false }, 'self-check': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (positionals.length) throw new UsageError(`fuzz takes no positional arguments, got "${positionals.join(' ')}"`);
  const target = values.target ?? (values.url !== undefined ? 'amqp' : values.replay !== undefined ? 'embedded' : 'both');
  if (target !== 'embedded' && target !== 'amqp' && target !== 'both') throw new UsageError(`--target must be embedded, amqp or both, got "${target}"`);
  if (target === 'both' && values.replay !== undefined) throw new UsageError('--replay needs one --target (embedded or amqp)');
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
  if (parsed.target === 'both') {
    // Half of the time (or of the runs) on each target, embedded first.
    let ok = true;
    for (const [target, share] of [['embedded', Math.ceil], ['amqp', Math.floor]] as const) {
      const seconds = parsed.seconds !== undefined ? Math.max(1, share(parsed.seconds / 2)) : undefined;
      const runs = parsed.runs !== undefined ? Math.max(1, share(parsed.runs / 2)) : undefined;
      ok = (await fuzzOne(run, { ...parsed, target, seconds, runs })) && ok;
    }
    return ok ? 0 : 1;
  }
  return (await fuzzOne(run, { ...parsed, target: parsed.target })) ? 0 : 1;
}

async function fuzzOne(run: typeof import('../fuzz/run.js').fuzz, parsed: FuzzArgs & { target: 'embedded' | 'amqp' }): Promise<boolean> {
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
  return violations === 0 && s.failures === 0 && s.workloads > 0;
}

/** A single updating stderr line: log recovery at `serve` start, all shards together (TTY only). */
function recoveryProgressLine(): (shard: number, done: number, total: number) => void {
  const shards = new Map<number, { done: number; total: number }>();
  return (shard, done, total) => {
    shards.set(shard, { done, total });
    let d = 0;
    let t = 0;
    for (const s of shards.values()) {
      d += s.done;
      t += s.total;
    }
    if (t < 1 << 20) return; // a small log recovers at once: no line
    const mb = (x: number): string => (x / (1 << 20)).toFixed(0);
    process.stderr.write(`\r\x1b[Kringmq: recovering the log: ${mb(d)} / ${mb(t)} MiB (${Math.floor((100 * d) / t)}%)`);
  };
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
  /** Also write DIR/report.html and DIR/results.jsonl. */
  report: string | undefined;
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
      report: { type: 'string' },
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
  if (values.report === '') throw new UsageError('--report needs a directory');
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
    report: values.report,
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
