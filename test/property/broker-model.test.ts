/**
 * Model-based test of the embedded Broker (fc.commands + fc.asyncModelRun).
 *
 * The real system: a Broker with 2 real shard workers and logs on a
 * temporary directory, a manual clock shared by every thread. The model: a
 * small in-memory reference of the semantics — one work queue `q` (durable,
 * max length with drop-head, delivery limit, dead-lettering to `dlq` through
 * a fanout exchange) and its dead-letter queue.
 *
 * Commands: publish (some with a per-message TTL), get with ack mode, ack,
 * nack with and without requeue, start a consumer with prefetch, cancel it,
 * advance the clock (expiry), purge, close + reopen, and crash (every shard
 * killed without a clean close) + reopen. After every command the broker is
 * quiesced and checked against the model:
 *   G1  after a crash every confirmed, unsettled message is back;
 *   G2  returned/held messages come back redelivered with a raised count,
 *       or are dead-lettered at the limit;
 *   G3  each get/delivery is the one message the model predicts (no duplicate);
 *   G4  in publish order, requeued ones in their original place;
 *   G5  after a clean close, acked messages never return;
 *   G6  routed = acked + ready + unacked + dead-lettered + expired + dropped (+ purged) per queue;
 *   G7  dead letters carry the right reason in x-death;
 *   G8  (through the fanout DLX) each dead letter reaches dlq once.
 * Seeds and paths are printed by fast-check on failure; replay with FC_SEED/FC_PATH.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broker, type Message } from '../../src/index.js';
import { ManualClock } from '../../src/engine/clock.js';
import { fcParams } from '../helpers/fc.js';
import { removeDir, tempDir } from '../helpers/broker-util.js';

const MAX_LENGTH = 6;
const DELIVERY_LIMIT = 2;
const PREFETCH_MAX = 3;

interface MMsg { n: number; count: number; redelivered: boolean; expiresAt: number }
type Reason = 'rejected' | 'expired' | 'maxlen' | 'delivery_limit';

class Model {
  ready: MMsg[] = []; // sorted by n
  held = new Map<number, MMsg>(); // unacked (get or consumer), by n
  consumerHeld = new Set<number>(); // subset of held owned by the consumer
  consumer: { prefetch: number } | null = null;
  dead: { n: number; reason: Reason }[] = [];
  /** Acks sent but maybe not on disk (a crash may undo them, G5). */
  maybeAcked = new Map<number, MMsg>();
  /** Dead-lettered since the last restart: the origin's settle may be undone by a crash. */
  maybeDead = new Map<number, MMsg>();
  nextN = 1;
  now = 0;
  c = { routed: 0, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0 };

  insertReady(m: MMsg): void {
    let i = this.ready.length;
    while (i > 0 && this.ready[i - 1]!.n > m.n) i--;
    this.ready.splice(i, 0, m);
  }
  expire(): void {
    // Messages leave in the order they expire (then publish order).
    const gone = this.ready.filter((m) => m.expiresAt <= this.now).sort((a, b) => a.expiresAt - b.expiresAt || a.n - b.n);
    for (const m of gone) { this.dead.push({ n: m.n, reason: 'expired' }); this.maybeDead.set(m.n, m); this.c.expired++; }
    this.ready = this.ready.filter((m) => m.expiresAt > this.now);
  }
  /** atOnce: a return by the running queue (cancel, nack) expires an overdue message at once; a restart does not (recovery expires in (expiry, id) order). */
  returnMsg(m: MMsg, atOnce = true): void {
    m.count++;
    m.redelivered = true;
    if (m.count > DELIVERY_LIMIT) { this.dead.push({ n: m.n, reason: 'delivery_limit' }); this.maybeDead.set(m.n, m); this.c.deliveryLimit++; return; }
    // Already expired when it comes back: it leaves at once, in return order (Queue.returnU), not at the next expiry pass.
    if (atOnce && m.expiresAt <= this.now) { this.dead.push({ n: m.n, reason: 'expired' }); this.maybeDead.set(m.n, m); this.c.expired++; return; }
    this.insertReady(m);
  }
  /** Consumer takes ready messages up to its prefetch, in order. */
  dispatch(): MMsg[] {
    const out: MMsg[] = [];
    if (this.consumer === null) return out;
    this.expire();
    while (this.ready.length > 0 && (this.consumer.prefetch === 0 || this.consumerHeld.size < this.consumer.prefetch)) {
      const m = this.ready.shift()!;
      this.held.set(m.n, m);
      this.consumerHeld.add(m.n);
      out.push({ ...m });
    }
    return out;
  }
}

class Real {
  b!: Broker;
  clock = new ManualClock();
  deliveries: Message[] = [];
  held = new Map<number, Message>();
  consumer: { cancel(): Promise<void> } | null = null;
  errors: Error[] = [];
  opens = 0;
  constructor(readonly dir: string) {}
  async open(): Promise<void> {
    // Every other open with the I/O poll (BrokerOptions.ioSpinUs), so both ways of reading the shards are checked.
    this.b = await Broker.open({ dir: this.dir, shards: 2, fsync: 'always', clock: this.clock.sab, segmentBytes: 1 << 20, ioSpinUs: this.opens++ % 2 === 0 ? 0 : 200 });
    this.b.on('error', (e: Error) => this.errors.push(e));
    await this.b.declareExchange('dlx', 'fanout');
    await this.b.declareQueue('dlq');
    await this.b.bindQueue('dlq', 'dlx');
    await this.b.declareQueue('q', { maxLength: MAX_LENGTH, overflow: 'drop-head', deliveryLimit: DELIVERY_LIMIT, deadLetterExchange: 'dlx' });
  }
}

const nOf = (m: Message): number => Number(m.text());

async function check(model: Model, real: Real, what: string): Promise<void> {
  await real.b.quiesce();
  model.expire();
  // Deliveries the model predicts for the consumer (G3, G4).
  const expected = model.dispatch();
  const got = real.deliveries.splice(0);
  assert.equal(got.map(nOf), expected.map((m) => m.n), `${what}: consumer deliveries`);
  got.forEach((m, i) => {
    assert.is(m.redelivered, expected[i]!.redelivered, `${what}: redelivered flag of ${nOf(m)} (G2)`);
    assert.is(m.deliveryCount, expected[i]!.count, `${what}: delivery count of ${nOf(m)} (G2)`);
    real.held.set(nOf(m), m);
  });
  const st = (await real.b.stats()).queues['q']!;
  assert.is(st.ready, model.ready.length, `${what}: ready count`);
  assert.is(st.unacked, model.held.size, `${what}: unacked count`);
  const c = st.counters;
  assert.is(c.routed, c.acked + st.ready + st.unacked + c.rejected + c.deliveryLimit + c.expired + c.maxlen + c.purged + c.deleted, `${what}: G6 conservation`);
  // The queue's exact content: ready in order with counts and flags, unacked as a set (G1-G5).
  const content = await real.b.inspect('q');
  const readyReal = content.filter((m) => m.state === 'ready').map((m) => `${m.body}/${m.deliveryCount}/${m.redelivered}`);
  const readyModel = model.ready.map((m) => `${m.n}/${m.count}/${m.redelivered}`);
  assert.equal(readyReal, readyModel, `${what}: ready messages (n/count/redelivered)`);
  const unackedReal = content.filter((m) => m.state === 'unacked').map((m) => Number(m.body)).sort((a, b) => a - b);
  assert.equal(unackedReal, [...model.held.keys()].sort((a, b) => a - b), `${what}: unacked messages`);
  // Dead letters (G7, G8): in order, each once, with the reason.
  const dead = await real.b.inspect('dlq');
  assert.equal(dead.map((m) => `${m.body}:${m.deathReason}`), model.dead.map((d) => `${d.n}:${d.reason}`), `${what}: dead letters in dlq (G7, G8)`);
  assert.equal(real.errors.map((e) => e.message), [], `${what}: broker errors`);
}

const publish = (ttl: number | null, count: number) => ({
  check: () => true,
  async run(model: Model, real: Real) {
    for (let i = 0; i < count; i++) {
      const n = model.nextN++;
      const expiresAt = ttl === null ? Infinity : model.now + ttl;
      await real.b.send('q', String(n), ttl === null ? {} : { expiration: ttl });
      model.c.routed++;
      model.expire();
      // drop-head: the oldest ready ones go when the queue is over max length (ready only, as RabbitMQ).
      model.insertReady({ n, count: 0, redelivered: false, expiresAt });
      while (model.ready.length > MAX_LENGTH) {
        const head = model.ready.shift()!;
        model.dead.push({ n: head.n, reason: 'maxlen' });
        model.maybeDead.set(head.n, head);
        model.c.maxlen++;
      }
      // Each publish may also be delivered at once to a consumer with credit.
      await check(model, real, `publish ${n}`);
    }
  },
  toString: () => `publish(${count}${ttl === null ? '' : `, ttl ${ttl}`})`,
});

class GetCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly noAck: boolean) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.b.quiesce();
    model.expire();
    const m = await real.b.get('q', { noAck: this.noAck });
    const want = model.ready.shift();
    assert.is(m === null ? null : nOf(m), want?.n ?? null, `get: message (G3, G4)`);
    if (m !== null && want !== undefined) {
      assert.is(m.redelivered, want.redelivered, 'get: redelivered');
      assert.is(m.deliveryCount, want.count, 'get: delivery count');
      if (this.noAck) { model.c.acked++; model.maybeAcked.set(want.n, want); } else { model.held.set(want.n, want); real.held.set(want.n, m); }
    }
    await check(model, real, this.toString());
  }
  toString = (): string => `get(${this.noAck ? 'noAck' : 'ack'})`;
}

class SettleCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly pick: number, readonly how: 'ack' | 'requeue' | 'reject') {}
  check = (m: Readonly<Model>): boolean => m.held.size > 0;
  async run(model: Model, real: Real): Promise<void> {
    const ns = [...model.held.keys()].sort((a, b) => a - b);
    const n = ns[this.pick % ns.length]!;
    const mm = model.held.get(n)!;
    const msg = real.held.get(n)!;
    model.held.delete(n);
    model.consumerHeld.delete(n);
    real.held.delete(n);
    if (this.how === 'ack') { msg.ack(); model.c.acked++; model.maybeAcked.set(n, mm); }
    else if (this.how === 'reject') { msg.reject(false); model.dead.push({ n, reason: 'rejected' }); model.maybeDead.set(n, mm); model.c.rejected++; }
    else { msg.nack({ requeue: true }); model.returnMsg(mm); }
    await check(model, real, this.toString());
  }
  toString = (): string => `${this.how}(#${this.pick})`;
}

class ConsumeCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly prefetch: number) {}
  check = (m: Readonly<Model>): boolean => m.consumer === null;
  async run(model: Model, real: Real): Promise<void> {
    model.consumer = { prefetch: this.prefetch };
    real.consumer = await real.b.consume('q', (m) => { real.deliveries.push(m); }, { prefetch: this.prefetch });
    await check(model, real, this.toString());
  }
  toString = (): string => `consume(prefetch ${this.prefetch})`;
}

class CancelCmd implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>): boolean => m.consumer !== null;
  async run(model: Model, real: Real): Promise<void> {
    await real.consumer!.cancel();
    real.consumer = null;
    model.consumer = null;
    for (const n of [...model.consumerHeld].sort((a, b) => a - b)) {
      const m = model.held.get(n)!;
      model.held.delete(n);
      real.held.delete(n);
      model.returnMsg(m);
    }
    model.consumerHeld.clear();
    await check(model, real, 'cancel');
  }
  toString = (): string => 'cancel';
}

class AdvanceCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    model.now += this.ms;
    real.clock.advance(this.ms);
    await check(model, real, this.toString());
  }
  toString = (): string => `advance(${this.ms} ms)`;
}

class PurgeCmd implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.b.quiesce();
    model.expire();
    const n = await real.b.purgeQueue('q');
    assert.is(n, model.ready.length, 'purge count');
    model.c.purged += model.ready.length;
    model.ready = [];
    await check(model, real, 'purge');
  }
  toString = (): string => 'purge';
}

/** Close cleanly (or crash: every shard killed, nothing flushed beyond the fsync policy) and reopen. */
class RestartCmd implements fc.AsyncCommand<Model, Real> {
  constructor(readonly crash: boolean) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    await real.b.quiesce();
    if (this.crash) await real.b.abort();
    else await real.b.close();
    await real.open();
    // Held messages come back redelivered; the limit counts them (their count was logged at delivery).
    const held = [...model.held.values()].sort((a, b) => a.n - b.n);
    model.held.clear();
    model.consumerHeld.clear();
    model.consumer = null;
    real.consumer = null;
    real.held.clear();
    real.deliveries = [];
    for (const m of held) model.returnMsg(m, false);
    // After a restart every recovered message is flagged redelivered (it may have been delivered).
    for (const m of model.ready) m.redelivered = true;
    // G5: after a clean close acks are final. After a crash an ack or a dead-letter settle not yet on
    // disk may be undone: such a message is back in q (ready, redelivered) and, if it dead-letters again,
    // its copy is in dlq twice (dead-lettering is at-least-once). Anything else extra is a violation.
    await real.b.quiesce();
    model.expire();
    const content = await real.b.inspect('q');
    const dlq = await real.b.inspect('dlq');
    const readyReal = content.filter((m) => m.state === 'ready');
    const modelIds = new Set(model.ready.map((m) => m.n));
    for (const m of model.ready) assert.ok(readyReal.some((r) => Number(r.body) === m.n), `${this}: confirmed message ${m.n} missing (G1)`);
    const dead = model.dead.map((d) => `${d.n}:${d.reason}`);
    const dlqReal = dlq.map((m) => `${m.body}:${m.deathReason}`);
    assert.equal(dlqReal.slice(0, dead.length), dead, `${this}: dead letters before the restart kept (G1, G7)`);
    if (!this.crash) {
      assert.is(readyReal.length, model.ready.length, 'clean restart: nothing extra comes back (G5)');
      assert.is(dlq.length, dead.length, 'clean restart: no dead letter twice');
    } else {
      for (const extra of dlqReal.slice(dead.length)) {
        const n = Number(extra.split(':')[0]);
        assert.ok(model.maybeDead.has(n), `${this}: ${extra} dead-lettered twice without an undone settle`);
        model.dead.push({ n, reason: extra.split(':')[1] as Reason });
      }
      for (const r of readyReal) {
        const n = Number(r.body);
        if (modelIds.has(n)) continue;
        const was = model.maybeAcked.get(n) ?? model.maybeDead.get(n);
        assert.ok(was !== undefined, `${this}: message ${n} came back but was neither acked nor dead-lettered before the crash`);
        model.insertReady({ n, count: r.deliveryCount, redelivered: true, expiresAt: was.expiresAt });
      }
    }
    model.maybeAcked.clear();
    model.maybeDead.clear();
    // Counters restart with the broker: recovered messages count as routed again.
    model.c = { routed: model.ready.length, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0 };
    model.dead = model.dead.slice(); // dlq is durable: its messages survive too
    await check(model, real, this.toString());
  }
  toString = (): string => (this.crash ? 'crash+recover' : 'close+reopen');
}

const commands = [
  fc.tuple(fc.option(fc.integer({ min: 1, max: 50 }), { nil: null }), fc.integer({ min: 1, max: 4 })).map(([ttl, n]) => publish(ttl, n) as unknown as fc.AsyncCommand<Model, Real>),
  fc.boolean().map((b) => new GetCmd(b)),
  fc.tuple(fc.nat(20), fc.constantFrom('ack', 'ack', 'requeue', 'reject') as fc.Arbitrary<'ack' | 'requeue' | 'reject'>).map(([p, h]) => new SettleCmd(p, h)),
  fc.integer({ min: 1, max: PREFETCH_MAX }).map((p) => new ConsumeCmd(p)),
  fc.constant(new CancelCmd()),
  fc.integer({ min: 1, max: 60 }).map((ms) => new AdvanceCmd(ms)),
  fc.constant(new PurgeCmd()),
  fc.boolean().map((c) => new RestartCmd(c)),
];

test('Broker vs model: G1-G8 after every command (publish, get, ack/nack/reject, consume, cancel, TTL, purge, restart, crash)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: 40, size: 'max' }), async (cmds) => {
      const dir = tempDir('ringmq-model-');
      const real = new Real(dir);
      await real.open();
      try {
        await fc.asyncModelRun(() => ({ model: new Model(), real }), cmds);
      } catch (e) {
        if (process.env.RINGMQ_MODEL_DEBUG) console.error(`${cmds.toString()}: ${(e as Error).message}\n${String((e as { details?: string }).details ?? "")}`);
        throw e;
      } finally {
        await real.b.close().catch(() => {});
        removeDir(dir);
      }
    }),
    fcParams({ numRuns: Number(process.env.RINGMQ_MODEL_RUNS ?? 12), verbose: 1 }),
  );
});

test.run();
