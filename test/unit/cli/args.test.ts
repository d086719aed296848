import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFuzzArgs, parseServeArgs, UsageError } from '../../../src/cli/main.js';

test('serve defaults follow design.md: 127.0.0.1:5672, ./data, fsync always', () => {
  assert.equal(parseServeArgs([]), { host: '127.0.0.1', port: 5672, data: './data', fsync: 'always', shards: undefined, users: undefined, user: [], metricsPort: undefined });
});

test('serve parses every flag', () => {
  assert.equal(parseServeArgs(['--port', '5673', '--host', '::1', '--data', '/tmp/x', '--fsync', 'never', '--shards', '4', '--users', 'u.json', '--user', 'a:b:c', '--user', 'd:e']), {
    host: '::1', port: 5673, data: '/tmp/x', fsync: 'never', shards: 4, users: 'u.json', user: ['a:b:c', 'd:e'], metricsPort: undefined,
  });
  assert.is((parseServeArgs(['--port', '0']) as { port: number }).port, 0, '--port 0 picks a free port');
});

test('serve rejects a bad port, fsync policy, shard count and stray arguments', () => {
  assert.throws(() => parseServeArgs(['--port=-1']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--user', 'nopassword']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--port', '70000']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--port', '12ab']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--fsync', 'sometimes']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--shards', '-1']), (e: Error) => /shards|ERR_PARSE_ARGS/.test(e.message + (e as { code?: string }).code));
  assert.throws(() => parseServeArgs(['extra']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseServeArgs(['--nope']), (e: Error) => (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION');
});

test('fuzz parses seconds and a signed seed', () => {
  const a = parseFuzzArgs(['--seconds', '5', '--seed=-42']);
  assert.ok(a !== 'help');
  assert.is(a.seconds, 5);
  assert.is(a.seed, -42);
  assert.is(a.target, 'both', 'both targets by default');
  assert.throws(() => parseFuzzArgs(['--seed', '1.5']), (e: Error) => e instanceof UsageError);
});

test('fuzz: 60 s by default; --runs, --replay, --faults, --target, --url, --self-check', () => {
  const d = parseFuzzArgs([]);
  assert.ok(d !== 'help');
  assert.is(d.seconds, 60);
  const r = parseFuzzArgs(['--runs', '3', '--faults', 'kill,torn', '--fsync', 'always', '--json']);
  assert.ok(r !== 'help');
  assert.is(r.seconds, undefined);
  assert.is(r.runs, 3);
  assert.equal(r.faults, ['kill', 'torn']);
  assert.is(r.json, true);
  const p = parseFuzzArgs(['--replay', '77', '--target', 'amqp', '--url', 'amqp://localhost']);
  assert.ok(p !== 'help');
  assert.is(p.replay, 77);
  assert.is(p.seconds, undefined);
  assert.is(p.url, 'amqp://localhost');
  const e = parseFuzzArgs(['--replay', '5']);
  assert.ok(e !== 'help' && e.target === 'embedded', 'a replay without --target is an embedded run');
  assert.throws(() => parseFuzzArgs(['--replay', '5', '--target', 'both']), (x: Error) => x instanceof UsageError);
  const s = parseFuzzArgs(['--self-check']);
  assert.ok(s !== 'help' && s.selfCheck);
  assert.throws(() => parseFuzzArgs(['--faults', 'kill,meteor']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseFuzzArgs(['--target', 'kafka']), (e: Error) => e instanceof UsageError);
  assert.throws(() => parseFuzzArgs(['--url', 'amqp://x', '--target', 'embedded']), (e: Error) => e instanceof UsageError);
  const u = parseFuzzArgs(['--url', 'amqp://x']);
  assert.ok(u !== 'help' && u.target === 'amqp', '--url alone: the amqp target');
});

test.run();
