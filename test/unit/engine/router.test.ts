/**
 * The router (src/engine/router.ts): each exchange type, alternate
 * exchanges, errors, auto-delete, and a fast-check property of topic
 * matching against an obviously correct reference (regex over the words).
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Router, RouterError, topicMatch, type ExchangeDef } from '../../../src/engine/router.js';
import { fcParams } from '../../helpers/fc.js';

const ex = (name: string, type: ExchangeDef['type'], more: Partial<ExchangeDef> = {}): ExchangeDef =>
  ({ name, type, durable: true, autoDelete: false, internal: false, arguments: {}, ...more });

function routes(r: Router, exchange: string, key: string, headers?: Record<string, unknown>): string[] {
  const out: string[] = [];
  r.route(exchange, key, headers, out);
  return out.sort();
}

function code(f: () => unknown): string {
  try { f(); } catch (e) { return e instanceof RouterError ? e.code : String(e); }
  return 'no error';
}

test('default exchange routes by queue name; direct by key; fanout to all, each queue once', () => {
  const r = new Router();
  for (const q of ['a', 'b', 'c']) r.addQueue(q);
  assert.equal(routes(r, '', 'b'), ['b']);
  assert.equal(routes(r, '', 'nope'), []);
  r.declareExchange(ex('d', 'direct'));
  r.bind({ exchange: 'd', queue: 'a', routingKey: 'k', arguments: {} });
  r.bind({ exchange: 'd', queue: 'b', routingKey: 'k', arguments: {} });
  r.bind({ exchange: 'd', queue: 'c', routingKey: 'other', arguments: {} });
  assert.equal(routes(r, 'd', 'k'), ['a', 'b']);
  r.declareExchange(ex('f', 'fanout'));
  r.bind({ exchange: 'f', queue: 'a', routingKey: 'x', arguments: {} });
  r.bind({ exchange: 'f', queue: 'a', routingKey: 'y', arguments: {} });
  r.bind({ exchange: 'f', queue: 'c', routingKey: '', arguments: {} });
  assert.equal(routes(r, 'f', 'whatever'), ['a', 'c']);
});

test('topic: * is one word, # zero or more; a queue matched twice gets it once', () => {
  const r = new Router();
  for (const q of ['q1', 'q2', 'q3']) r.addQueue(q);
  r.declareExchange(ex('t', 'topic'));
  r.bind({ exchange: 't', queue: 'q1', routingKey: 'a.*.c', arguments: {} });
  r.bind({ exchange: 't', queue: 'q2', routingKey: 'a.#', arguments: {} });
  r.bind({ exchange: 't', queue: 'q2', routingKey: '#.c', arguments: {} });
  r.bind({ exchange: 't', queue: 'q3', routingKey: '#', arguments: {} });
  assert.equal(routes(r, 't', 'a.b.c'), ['q1', 'q2', 'q3']);
  assert.equal(routes(r, 't', 'a'), ['q2', 'q3']);
  assert.equal(routes(r, 't', 'a.c'), ['q2', 'q3']);
  assert.equal(routes(r, 't', 'x.y'), ['q3']);
  r.unbind({ exchange: 't', queue: 'q3', routingKey: '#', arguments: {} });
  assert.equal(routes(r, 't', 'x.y'), [], 'cache invalidated by unbind');
});

test('headers: x-match all / any, x- keys ignored, void binding value matches presence', () => {
  const r = new Router();
  for (const q of ['all', 'any', 'void']) r.addQueue(q);
  r.declareExchange(ex('h', 'headers'));
  r.bind({ exchange: 'h', queue: 'all', routingKey: '', arguments: { 'x-match': 'all', a: 1, b: 'x' } });
  r.bind({ exchange: 'h', queue: 'any', routingKey: '', arguments: { 'x-match': 'any', a: 1, b: 'x' } });
  r.bind({ exchange: 'h', queue: 'void', routingKey: '', arguments: { c: null } });
  assert.equal(routes(r, 'h', '', { a: 1, b: 'x' }), ['all', 'any']);
  assert.equal(routes(r, 'h', '', { a: 1 }), ['any']);
  assert.equal(routes(r, 'h', '', { c: 'anything' }), ['void']);
  assert.equal(routes(r, 'h', '', {}), []);
  assert.is(code(() => r.bind({ exchange: 'h', queue: 'all', routingKey: '', arguments: { 'x-match': 'most' } })), 'ERR_PRECONDITION');
});

test('alternate exchange takes unroutable messages, recursively, without looping', () => {
  const r = new Router();
  r.addQueue('caught');
  r.declareExchange(ex('ae2', 'fanout'));
  r.declareExchange(ex('ae1', 'direct', { alternateExchange: 'ae2' }));
  r.declareExchange(ex('main', 'direct', { alternateExchange: 'ae1' }));
  r.declareExchange(ex('loop', 'direct', { alternateExchange: 'loop' }));
  r.bind({ exchange: 'ae2', queue: 'caught', routingKey: '', arguments: {} });
  assert.equal(routes(r, 'main', 'nowhere'), ['caught']);
  assert.equal(routes(r, 'loop', 'nowhere'), []);
});

test('errors: unknown, reserved, inequivalent redeclare, internal, if-unused; auto-delete', () => {
  const r = new Router();
  r.addQueue('q');
  assert.is(code(() => r.route('nope', 'k', undefined, [])), 'ERR_NOT_FOUND');
  assert.is(code(() => r.declareExchange(ex('amq.mine', 'direct'))), 'ERR_ACCESS_REFUSED');
  r.declareExchange(ex('e', 'direct'));
  assert.is(r.declareExchange(ex('e', 'direct')), false);
  assert.is(code(() => r.declareExchange(ex('e', 'fanout'))), 'ERR_PRECONDITION');
  r.declareExchange(ex('i', 'fanout', { internal: true }));
  assert.is(code(() => r.route('i', '', undefined, [])), 'ERR_ACCESS_REFUSED');
  assert.is(code(() => r.bind({ exchange: '', queue: 'q', routingKey: 'q', arguments: {} })), 'ERR_ACCESS_REFUSED');
  assert.is(code(() => r.bind({ exchange: 'e', queue: 'missing', routingKey: '', arguments: {} })), 'ERR_NOT_FOUND');
  r.bind({ exchange: 'e', queue: 'q', routingKey: 'k', arguments: {} });
  assert.is(code(() => r.deleteExchange('e', true)), 'ERR_PRECONDITION');
  assert.is(code(() => r.deleteExchange('amq.direct', false)), 'ERR_ACCESS_REFUSED');
  r.declareExchange(ex('auto', 'fanout', { autoDelete: true }));
  r.bind({ exchange: 'auto', queue: 'q', routingKey: '', arguments: {} });
  r.removeQueue('q');
  assert.is(r.exchange('auto'), undefined);
  assert.equal(r.collectAutoDeleted(), ['auto']);
});

/** Reference: dynamic programming over (pattern word, key word) positions; '#' takes zero words or one more. */
function reference(pattern: string[], key: string[]): boolean {
  const m = pattern.length, n = key.length;
  const dp: boolean[][] = Array.from({ length: m + 1 }, () => new Array<boolean>(n + 1).fill(false));
  dp[m]![n] = true;
  for (let i = m - 1; i >= 0; i--) {
    for (let j = n; j >= 0; j--) {
      const p = pattern[i]!;
      if (p === '#') dp[i]![j] = dp[i + 1]![j]! || (j < n && dp[i]![j + 1]!);
      else dp[i]![j] = j < n && (p === '*' || p === key[j]) && dp[i + 1]![j + 1]!;
    }
  }
  return dp[0]![0]!;
}

test('topic matching agrees with a dynamic-programming reference (fast-check)', () => {
  const word = fc.constantFrom('a', 'b', 'c', '');
  const pword = fc.constantFrom('a', 'b', '*', '#', '');
  fc.assert(
    fc.property(fc.array(pword, { minLength: 1, maxLength: 7, size: 'max' }), fc.array(word, { minLength: 1, maxLength: 7, size: 'max' }), (p, k) => {
      assert.is(topicMatch(p, k), reference(p, k), `pattern ${p.join('.')} key ${k.join('.')}`);
    }),
    fcParams({ numRuns: 3000 }),
  );
});

test.run();
