/**
 * The parts of `ringmq bench amqp` that need no broker: argument parsing,
 * the listening line, rates from marks, ratios, the result rows. No test here
 * starts RabbitMQ or `ringmq serve`.
 */
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchResult } from '../../../bench/_util.js';
import { formatTable } from '../../../bench/_util.js';
import {
  addRatios,
  amqpUrl,
  CASE_NAMES,
  type Measurement,
  MAX_BACKLOG,
  PAYLOADS,
  parseListening,
  RABBITMQ_SCRIPT,
  ratesFromMarks,
  resultRow,
  serveArgs,
  settle,
  timingFor,
} from '../../../bench/amqp.bench.js';
import { parseBenchArgs, UsageError } from '../../../src/cli/main.js';

const usage = (e: Error): boolean => e instanceof UsageError;

test('bench args: the existing flags still parse, no amqp flags by default', () => {
  assert.equal(parseBenchArgs(['ring', 'log', '--json', '--quick']), {
    suites: ['ring', 'log'], json: true, quick: true, list: false, compare: undefined, url: undefined, shards: undefined, report: undefined,
  });
  assert.equal(parseBenchArgs([]), { suites: [], json: false, quick: false, list: false, compare: undefined, url: undefined, shards: undefined, report: undefined });
  assert.equal(parseBenchArgs(['--list']), { suites: [], json: false, quick: false, list: true, compare: undefined, url: undefined, shards: undefined, report: undefined });
  assert.is(parseBenchArgs(['-h']), 'help');
  // --report (from the observability work) still parses beside the amqp flags.
  const r = parseBenchArgs(['amqp', '--report', 'out', '--compare', 'rabbitmq']);
  if (r === 'help') throw new Error('parsed as help');
  assert.is(r.report, 'out');
  assert.is(r.compare, 'rabbitmq');
  assert.throws(() => parseBenchArgs(['--report', '']), usage);
});

test('bench args: --compare rabbitmq, --url and --shards select the amqp suite when none is named', () => {
  assert.equal(parseBenchArgs(['--compare', 'rabbitmq']), {
    suites: ['amqp'], json: false, quick: false, list: false, compare: 'rabbitmq', url: undefined, shards: undefined, report: undefined,
  });
  const a = parseBenchArgs(['amqp', '--url', 'amqp://guest:guest@127.0.0.1:5673', '--shards', '2', '--json']);
  if (a === 'help') throw new Error('parsed as help');
  assert.equal(a.suites, ['amqp']);
  assert.is(a.url, 'amqp://guest:guest@127.0.0.1:5673');
  assert.is(a.shards, 2);
  assert.is(a.json, true);
  // amqp named beside another suite: fine, the other suite ignores the flags.
  const b = parseBenchArgs(['ring', 'amqp', '--compare=rabbitmq']);
  assert.ok(b !== 'help' && b.suites.length === 2 && b.compare === 'rabbitmq');
});

test('bench args: a broker other than rabbitmq, a non-AMQP URL, bad shards and amqp flags without the amqp suite are usage errors', () => {
  assert.throws(() => parseBenchArgs(['--compare', 'kafka']), usage);
  assert.throws(() => parseBenchArgs(['--compare', '']), usage);
  assert.throws(() => parseBenchArgs(['--url', 'http://127.0.0.1:5672']), usage);
  assert.throws(() => parseBenchArgs(['--url', '127.0.0.1:5672']), usage);
  assert.throws(() => parseBenchArgs(['--url', 'amqp://']), usage);
  assert.throws(() => parseBenchArgs(['--shards', '0']), usage);
  assert.throws(() => parseBenchArgs(['--shards', 'two']), usage);
  assert.throws(() => parseBenchArgs(['ring', '--compare', 'rabbitmq']), usage);
  assert.throws(() => parseBenchArgs(['engine', '--url', 'amqp://127.0.0.1']), usage);
  assert.throws(() => parseBenchArgs(['--compare']), (e: Error) => (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE');
});

test('listening line: found anywhere in the line, with credentials or a bracketed IPv6 host', () => {
  assert.equal(parseListening('listening on amqp://127.0.0.1:5672'), { host: '127.0.0.1', port: 5672 });
  assert.equal(parseListening('ringmq: listening on amqp://127.0.0.1:40123, data in /tmp/x'), { host: '127.0.0.1', port: 40123 });
  assert.equal(parseListening('listening on amqp://guest:guest@127.0.0.1:33205'), { host: '127.0.0.1', port: 33205 });
  assert.equal(parseListening('listening on amqp://[::1]:5672'), { host: '[::1]', port: 5672 });
  assert.equal(parseListening('listening on amqp://localhost:1/'), { host: 'localhost', port: 1 });
});

test('listening line: other lines and impossible ports are not an address', () => {
  assert.is(parseListening('ringmq serve: not yet'), undefined);
  assert.is(parseListening('listening on http://127.0.0.1:80'), undefined);
  assert.is(parseListening('listening on amqp://127.0.0.1'), undefined);
  assert.is(parseListening('listening on amqp://127.0.0.1:0'), undefined);
  assert.is(parseListening('listening on amqp://127.0.0.1:70000'), undefined);
  assert.is(parseListening(''), undefined);
});

test('the clients connect as guest (loopback) to the announced address', () => {
  assert.is(amqpUrl('127.0.0.1', 5672), 'amqp://guest:guest@127.0.0.1:5672');
});

test('ringmq serve is started as issue 5 says: fresh data dir, fsync always, loopback', () => {
  const a = serveArgs('/tmp/d', 0, 1);
  const flag = (f: string): string | undefined => a[a.indexOf(f) + 1];
  assert.is(a[0], 'serve');
  assert.is(flag('--port'), '0');
  assert.is(flag('--data'), '/tmp/d');
  assert.is(flag('--fsync'), 'always');
  assert.is(flag('--host'), '127.0.0.1');
  assert.is(flag('--shards'), '1');
});

test('rates from marks: each client over its own clock, summed; intervals likewise', () => {
  // Client A: 1000 msgs per 500 ms; client B: 500 per 500 ms, its clock offset.
  const a = [0, 1, 2].map((k) => ({ count: 5000 + 1000 * k, t: 10_000 + 500 * k }));
  const b = [0, 1, 2].map((k) => ({ count: 500 * k, t: 99_000 + 500 * k }));
  const r = ratesFromMarks([a, b]);
  assert.is(r.rate, 3000);
  assert.equal(r.intervals, [3000, 3000]);
  // An uneven window: the window rate is the total over the total time.
  const c = [{ count: 0, t: 0 }, { count: 100, t: 100 }, { count: 400, t: 200 }];
  const rc = ratesFromMarks([c]);
  assert.is(rc.rate, 2000);
  assert.equal(rc.intervals, [1000, 3000]);
});

const m = (msgsPerS: number, extra: Partial<Measurement> = {}): Measurement => ({ msgsPerS, intervals: [msgsPerS * 0.9, msgsPerS * 1.1], ...extra });

test('result row: median of the rounds, MB/s from the payload, shards only for ringmq, design.md field names', () => {
  const r = resultRow('transient', 'ringmq', 1, [m(100), m(300), m(200)]);
  assert.is(r.suite, 'amqp');
  assert.is(r.case, 'transient');
  assert.is(r.broker, 'ringmq');
  assert.is(r.payload, 64);
  assert.is(r.shards, 1);
  assert.is(r.msgs_per_s, 200);
  assert.is(r.mb_per_s, (200 * 64) / 1e6);
  assert.ok(typeof r.rme_pct === 'number' && r.rme_pct > 0);
  assert.is(r.p50_us, undefined);
  const rabbit = resultRow('persistent-confirm', 'rabbitmq', undefined, [m(50, { latenciesUs: Float64Array.from([3, 1, 2, 4]) })]);
  assert.not.ok('shards' in rabbit);
  assert.is(rabbit.payload, 1024);
  assert.is(rabbit.p50_us, 2);
  assert.is(rabbit.p99_us, 4);
  const allowed = new Set(['suite', 'case', 'payload', 'shards', 'msgs_per_s', 'mb_per_s', 'p50_us', 'p99_us', 'bytes_per_msg', 'ratio', 'vs', 'rme_pct', 'broker', 'publishes_per_s', 'p99_ratio']);
  for (const row of [r, rabbit]) for (const k of Object.keys(row)) assert.ok(allowed.has(k), `unexpected field ${k}`);
  // JSON lines carry no null/undefined fields.
  assert.not.match(JSON.stringify(rabbit), /null/);
});

test('result row: fanout-4 reports publishes/s beside deliveries/s; rpc pools latencies over rounds', () => {
  const f = resultRow('fanout-4', 'rabbitmq', undefined, [m(4000, { publishesPerS: 1000 })]);
  assert.is(f.payload, 256);
  assert.is(f.publishes_per_s, 1000);
  assert.is(resultRow('transient', 'rabbitmq', undefined, [m(4000, { publishesPerS: 4000 })]).publishes_per_s, undefined);
  const lat = (xs: number[]) => Float64Array.from(xs);
  const r = resultRow('rpc', 'ringmq', 2, [m(10, { latenciesUs: lat([1, 2, 3]) }), m(12, { latenciesUs: lat([100, 4, 5, 6, 7, 8, 9]) })]);
  assert.is(r.p50_us, 5);
  assert.is(r.p99_us, 100);
  assert.is(r.msgs_per_s, 11);
});

test('ratios: subject over the other broker per case, on the subject rows only, with vs', () => {
  const rows: BenchResult[] = [
    { suite: 'amqp', case: 'transient', broker: 'ringmq', msgs_per_s: 300 },
    { suite: 'amqp', case: 'transient', broker: 'rabbitmq', msgs_per_s: 100 },
    { suite: 'amqp', case: 'rpc', broker: 'ringmq', msgs_per_s: 50, p99_us: 200 },
    { suite: 'amqp', case: 'rpc', broker: 'rabbitmq', msgs_per_s: 100, p99_us: 400 },
    { suite: 'amqp', case: 'fanout-4', broker: 'ringmq', msgs_per_s: 10 },
  ];
  const out = addRatios(rows, 'ringmq', 'rabbitmq');
  assert.is(out[0]!.ratio, 3);
  assert.is(out[0]!.vs, 'rabbitmq');
  assert.is(out[1]!.ratio, undefined);
  assert.is(out[1]!.vs, undefined);
  assert.is(out[2]!.ratio, 0.5);
  assert.is(out[2]!.p99_ratio, 0.5);
  // No counterpart: no ratio rather than a wrong one.
  assert.is(out[4]!.ratio, undefined);
  // The input rows are not modified.
  assert.is(rows[0]!.ratio, undefined);
  // --url with --compare: the external broker is the subject.
  const ext = addRatios([{ suite: 'amqp', case: 'rpc', broker: 'external', msgs_per_s: 2 }, { suite: 'amqp', case: 'rpc', broker: 'rabbitmq', msgs_per_s: 1 }], 'external', 'rabbitmq');
  assert.is(ext[0]!.ratio, 2);
});

test('cases and payloads are the ones issue 5 names', () => {
  assert.equal([...CASE_NAMES], ['transient', 'persistent-confirm', 'fanout-4', 'rpc']);
  assert.equal(PAYLOADS, { transient: 64, 'persistent-confirm': 1024, 'fanout-4': 256, rpc: 64 });
});

test('--quick runs shorter and fewer rounds', () => {
  const q = timingFor(true);
  const d = timingFor(false);
  assert.ok(q.measureMs < d.measureMs && q.rounds < d.rounds && q.warmupMs <= d.warmupMs);
  assert.ok(q.measureMs >= q.markEveryMs * 2, 'at least two intervals for the margin of error');
});

test('warm-up settles when the backlog is at the bound or stops moving, and gives up after its budget', async () => {
  assert.is(await settle(() => MAX_BACKLOG, 1000, 5), true);
  let b = 0;
  assert.is(await settle(() => (b += 1), 1000, 5), true);
  let g = 0;
  assert.is(await settle(() => (g += MAX_BACKLOG / 5) % (MAX_BACKLOG * 0.8), 50, 5), false);
});

test('the table shows the broker next to the case', () => {
  const t = formatTable([
    { suite: 'amqp', case: 'rpc', broker: 'ringmq', payload: 64, shards: 1, msgs_per_s: 10, ratio: 2, vs: 'rabbitmq' },
    { suite: 'amqp', case: 'rpc', broker: 'rabbitmq', payload: 64, msgs_per_s: 5 },
  ]).split('\n');
  assert.match(t[0]!, /^case\s+broker\s+payload/);
  assert.match(t[1]!, /^rpc\s+ringmq\s+64 B\s+1\s+10\s+2\.00x\s+rabbitmq/);
  assert.match(t[2]!, /^rpc\s+rabbitmq\s+64 B\s+5\s*$/);
});

test('scripts/rabbitmq.mjs without rabbitmq-server: exit 3 and how to install it (nothing is started)', () => {
  const r = spawnSync(process.execPath, [RABBITMQ_SCRIPT, 'run'], {
    env: { ...process.env, RINGMQ_RABBITMQ_SERVER: '/nonexistent/rabbitmq-server' },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.is(r.status, 3);
  assert.is(r.stdout, '');
  assert.match(r.stderr, 'sudo apt-get install rabbitmq-server');
});

test('scripts/rabbitmq.mjs: usage errors exit 2', () => {
  for (const args of [[], ['restart'], ['stop']]) {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.RINGMQ_RABBITMQ_DIR;
    const r = spawnSync(process.execPath, [RABBITMQ_SCRIPT, ...args], { env, encoding: 'utf8', timeout: 20_000 });
    assert.is(r.status, 2, `args ${args.join(' ')}`);
    assert.match(r.stderr, 'usage');
  }
});

test.run();
