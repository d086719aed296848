/** Seeded generation is deterministic (replay), and the checker's routing model follows RabbitMQ's rules. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelRouter, topicMatches } from '../../../src/fuzz/model-router.js';
import { Rng, runSeed } from '../../../src/fuzz/prng.js';
import { bodyCrc, makeBody, messageOfBody } from '../../../src/fuzz/history.js';
import { generateWorkload, KNOWN_BUGS } from '../../../src/fuzz/workload.js';

test('the PRNG is deterministic per seed and spreads', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.equal(xs, Array.from({ length: 100 }, () => b.next()));
  assert.not.equal(xs, Array.from({ length: 100 }, () => c.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const seeds = new Set(Array.from({ length: 1000 }, (_, i) => runSeed(7, i)));
  assert.is(seeds.size, 1000);
});

test('the same seed generates the same workload (what --replay relies on)', () => {
  for (const seed of [1, 99, 123456789]) {
    assert.equal(generateWorkload({ seed }), generateWorkload({ seed }));
  }
  assert.not.equal(generateWorkload({ seed: 1 }).steps, generateWorkload({ seed: 2 }).steps);
});

test('workloads use every exchange type, overflow mode, fault and consumer action across seeds', () => {
  const seen = new Set<string>();
  for (let seed = 1; seed <= 40; seed++) {
    const w = generateWorkload({ seed });
    for (const s of w.steps) {
      seen.add(s.op);
      if (s.op === 'declareQueue' && s.spec.overflow) seen.add(`overflow:${s.spec.overflow}`);
      if (s.op === 'declareExchange') seen.add(`exchange:${s.type}`);
      if (s.op === 'kill') seen.add(s.torn ? 'torn' : 'kill');
      if (s.op === 'consume' && s.behavior.nackRequeue > 0) seen.add('nack');
      if (s.op === 'consume' && s.behavior.hold > 0) seen.add('hold');
      if (s.op === 'consume' && s.noAck) seen.add('noAck');
      if (s.op === 'publish' && s.expiration !== undefined) seen.add('per-message-ttl');
      if (s.op === 'publish' && !s.persistent) seen.add('transient');
      if (s.op === 'publish' && s.mandatory) seen.add('mandatory');
    }
  }
  for (const x of ['publish', 'consume', 'cancel', 'get', 'purge', 'delete', 'bind', 'unbind', 'subscribe', 'rpc', 'disconnect', 'quiet', 'restart', 'kill', 'torn',
    'overflow:drop-head', 'overflow:reject-publish', 'overflow:reject-publish-dlx', 'exchange:direct', 'exchange:fanout', 'exchange:topic', 'exchange:headers',
    'nack', 'hold', 'noAck', 'per-message-ttl', 'transient', 'mandatory']) assert.ok(seen.has(x), `never generated: ${x}`);
});

test('--faults restricts the faults; --avoid steers clear of known broker bugs', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const w = generateWorkload({ seed, faults: ['kill'], avoid: KNOWN_BUGS });
    assert.not.ok(w.steps.some((s) => s.op === 'restart' || s.op === 'disconnect' || (s.op === 'kill' && s.torn)));
    assert.not.ok(w.steps.some((s) => s.op === 'consume' && s.noAck));
    // At no time two headers bindings of one queue (they collapse across a restart).
    const live = new Map<string, number>();
    for (const s of w.steps) {
      if ((s.op === 'bind' || s.op === 'unbind') && s.x === 'fz.headers') {
        const n = (live.get(s.q) ?? 0) + (s.op === 'bind' ? 1 : -1);
        live.set(s.q, n);
        assert.ok(n <= 1, `seed ${seed}: two headers bindings of ${s.q}`);
      }
      if (s.op === 'delete') live.delete(s.q);
    }
  }
});

test('topic matching: * is one word, # is zero or more', () => {
  const m = (p: string, k: string): boolean => topicMatches(p.split('.'), k.split('.'));
  assert.ok(m('a.*', 'a.b'));
  assert.not.ok(m('a.*', 'a'));
  assert.not.ok(m('a.*', 'a.b.c'));
  assert.ok(m('a.#', 'a'));
  assert.ok(m('a.#', 'a.b.c'));
  assert.ok(m('#.c', 'c'));
  assert.ok(m('#.c', 'a.b.c'));
  assert.ok(m('#', 'x.y.z'));
  assert.ok(m('*.b', 'a.b'));
  assert.not.ok(m('*.b', 'b'));
  assert.ok(m('a.#.c', 'a.c'));
  assert.not.ok(m('b', 'b.c'));
});

test('the routing model: default, direct, fanout, headers all/any; a queue once; deleted queues unbound', () => {
  const r = new ModelRouter();
  for (const q of ['q1', 'q2', 'q3']) r.addQueue(q);
  r.declareExchange('d', 'direct');
  r.declareExchange('f', 'fanout');
  r.declareExchange('h', 'headers');
  r.bind('d', 'q1', 'k');
  r.bind('d', 'q1', 'k2');
  r.bind('d', 'q2', 'k');
  r.bind('f', 'q3', '');
  r.bind('h', 'q1', '', { 'x-match': 'all', color: 'red', size: 'big' });
  r.bind('h', 'q2', '', { 'x-match': 'any', color: 'red', size: 'big' });
  assert.equal(r.route('', 'q2', undefined), ['q2']);
  assert.equal(r.route('', 'nope', undefined), []);
  assert.equal(r.route('d', 'k', undefined), ['q1', 'q2']);
  assert.equal(r.route('f', 'whatever', undefined), ['q3']);
  assert.equal(r.route('h', '', { color: 'red' }), ['q2']);
  assert.equal(r.route('h', '', { color: 'red', size: 'big' }), ['q1', 'q2']);
  r.removeQueue('q2');
  assert.equal(r.route('d', 'k', undefined), ['q1']);
  r.unbind('d', 'q1', 'k');
  assert.equal(r.route('d', 'k', undefined), []);
});

test('bodies are a function of (message, length): the checker verifies them by CRC', () => {
  const b = makeBody(1234, 50);
  assert.is(b.length, 50);
  assert.is(messageOfBody(b), 1234);
  assert.is(bodyCrc(makeBody(1234, 50)), bodyCrc(b));
  assert.is.not(bodyCrc(makeBody(1235, 50)), bodyCrc(b));
  assert.is(makeBody(7, 0).toString(), '7:');
});

test.run();
