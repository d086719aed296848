/**
 * Model-based property: random command sequences run against Queue and the
 * reference model (test/helpers/queue-model.ts, arrays and linear scans).
 * After every command: the same events in the same order, the same return
 * value, the same counters and sizes, conservation (G6) on the real queue,
 * isUnacked agreeing for every id ever published, and nextDeadline agreeing
 * with the model.
 *
 * Seeded: a failure prints the seed and path; replay with
 * FC_SEED=<seed> FC_PATH=<path> npm test -- queue-model. FC_RUNS=<n> for long runs.
 */
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GetResult, Queue, type QueueArgs } from '../../src/queue/queue.js';
import { fcParams } from '../helpers/fc.js';
import { QueueModel, recordEvents, type QueueEvent } from '../helpers/queue-model.js';

const SEED = Number(process.env.RINGMQ_SEED ?? 20261128);

interface Real { q: Queue; events: QueueEvent[]; out: GetResult }
interface Model { m: QueueModel; nextId: number; ids: number[]; u32?: boolean }

/** Compares everything observable after a command; `what` names it. */
function compare(model: Model, real: Real, what: string, got: unknown, want: unknown): void {
  const { m } = model;
  const { q } = real;
  assert.equal(real.events, m.events, `${what}: events`);
  assert.equal(got, want, `${what}: return value`);
  assert.equal({ ...q.counters }, m.counters, `${what}: counters`);
  assert.is(q.ready, m.ready, `${what}: ready`);
  assert.is(q.unacked, m.unacked, `${what}: unacked`);
  assert.is(q.readyBytes, m.readyBytes, `${what}: readyBytes`);
  assert.is(q.consumerCount, m.consumers.length, `${what}: consumerCount`);
  const c = q.counters;
  assert.is(c.routed, c.acked + q.ready + q.unacked + c.rejected + c.deliveryLimit + c.expired + c.maxlen + c.purged + c.deleted, `${what}: G6 conservation`);
  const unackedIds = new Set(m.msgs.filter((x) => x.unacked).map((x) => x.id));
  for (const id of model.ids) if (q.isUnacked(id) !== unackedIds.has(id)) assert.unreachable(`${what}: isUnacked(${id}) should be ${unackedIds.has(id)}`);
  const d = q.nextDeadline();
  const md = m.nextDeadline();
  // The queue may report a delayed message that is already due but not yet promoted (<= now): "act now".
  assert.ok(d <= md, `${what}: nextDeadline ${d} later than the model's ${md}`);
  if (d > m.now) assert.is(d, md, `${what}: nextDeadline`);
  real.events.length = 0;
  m.events.length = 0;
}

abstract class Cmd implements fc.Command<Model, Real> {
  check(_m: Readonly<Model>): boolean { return true; }
  abstract run(model: Model, real: Real): void;
  abstract toString(): string;
}

class Enqueue extends Cmd {
  constructor(readonly gap: number, readonly size: number, readonly exp: number | undefined, readonly delay: number | undefined, readonly count: number | undefined) { super(); }
  run(model: Model, real: Real): void {
    const id = (model.nextId += this.gap);
    model.ids.push(id);
    const now = model.m.now;
    const opts = { expiresAt: this.exp === undefined ? undefined : now + this.exp, readyAt: this.delay === undefined ? undefined : now + this.delay, deliveryCount: this.count };
    // In the u32 payload mode (the shard's), payloads are numbers, some of them "none" (null).
    const payload = model.u32 ? (id % 7 === 0 ? null : id % 0xfffffff) : `p${id}`;
    const want = model.m.enqueue(id, this.size, now, payload, opts);
    const got = real.q.enqueue(id, this.size, now, payload, opts);
    compare(model, real, this.toString(), got, want);
  }
  toString(): string { return `enqueue(+${this.gap}, ${this.size}, exp ${this.exp}, delay ${this.delay}, count ${this.count})`; }
}

class AddConsumer extends Cmd {
  constructor(readonly c: number, readonly prefetch: number, readonly exclusive: boolean) { super(); }
  check(model: Readonly<Model>): boolean { return !model.m.consumers.includes(this.c); }
  run(model: Model, real: Real): void {
    compare(model, real, this.toString(), real.q.addConsumer(this.c, this.prefetch, this.exclusive), model.m.addConsumer(this.c, this.prefetch, this.exclusive));
  }
  toString(): string { return `addConsumer(${this.c}, ${this.prefetch}, ${this.exclusive})`; }
}

class Cancel extends Cmd {
  constructor(readonly c: number, readonly requeue: boolean) { super(); }
  run(model: Model, real: Real): void {
    compare(model, real, this.toString(), real.q.cancelConsumer(this.c, this.requeue, model.m.now), model.m.cancelConsumer(this.c, this.requeue, model.m.now));
  }
  toString(): string { return `cancelConsumer(${this.c}, ${this.requeue})`; }
}

class Release extends Cmd {
  constructor(readonly owner: number) { super(); }
  run(model: Model, real: Real): void {
    compare(model, real, this.toString(), real.q.releaseOwner(this.owner, model.m.now), model.m.releaseOwner(this.owner, model.m.now));
  }
  toString(): string { return `releaseOwner(${this.owner})`; }
}

class Dispatch extends Cmd {
  constructor(readonly max: number | undefined) { super(); }
  run(model: Model, real: Real): void {
    compare(model, real, this.toString(), real.q.dispatch(model.m.now, this.max), model.m.dispatch(model.m.now, this.max));
  }
  toString(): string { return `dispatch(${this.max})`; }
}

class Get extends Cmd {
  constructor(readonly owner: number | null) { super(); }
  run(model: Model, real: Real): void {
    const want = model.m.get(model.m.now, this.owner);
    const ok = real.q.get(model.m.now, this.owner, real.out);
    const o = real.out;
    const got = ok ? { id: o.id, deliveryCount: o.deliveryCount, redelivered: o.redelivered, payload: o.payload, remaining: o.remaining } : null;
    if (process.env.QDEBUG && JSON.stringify(got) !== JSON.stringify(want)) console.error('GET MISMATCH', got, want);
    compare(model, real, this.toString(), got, want);
  }
  toString(): string { return `get(${this.owner})`; }
}

const pickId = (model: Model, pick: number): number => (model.ids.length === 0 ? 1 : model.ids[pick % model.ids.length]!);

class Ack extends Cmd {
  constructor(readonly pick: number) { super(); }
  run(model: Model, real: Real): void {
    const id = pickId(model, this.pick);
    compare(model, real, `ack(${id})`, real.q.ack(id), model.m.ack(id));
  }
  toString(): string { return `ack(#${this.pick})`; }
}

class Nack extends Cmd {
  constructor(readonly pick: number, readonly requeue: boolean) { super(); }
  run(model: Model, real: Real): void {
    const id = pickId(model, this.pick);
    compare(model, real, `nack(${id}, ${this.requeue})`, real.q.nack(id, this.requeue, model.m.now), model.m.nack(id, this.requeue, model.m.now));
  }
  toString(): string { return `nack(#${this.pick}, ${this.requeue})`; }
}

class AckUpTo extends Cmd {
  constructor(readonly owner: number, readonly pick: number) { super(); }
  run(model: Model, real: Real): void {
    const id = pickId(model, this.pick);
    compare(model, real, `ackUpTo(${this.owner}, ${id})`, real.q.ackUpTo(this.owner, id), model.m.ackUpTo(this.owner, id));
  }
  toString(): string { return `ackUpTo(${this.owner}, #${this.pick})`; }
}

class NackUpTo extends Cmd {
  constructor(readonly owner: number, readonly pick: number, readonly requeue: boolean) { super(); }
  run(model: Model, real: Real): void {
    const id = pickId(model, this.pick);
    compare(model, real, `nackUpTo(${this.owner}, ${id}, ${this.requeue})`, real.q.nackUpTo(this.owner, id, this.requeue, model.m.now), model.m.nackUpTo(this.owner, id, this.requeue, model.m.now));
  }
  toString(): string { return `nackUpTo(${this.owner}, #${this.pick}, ${this.requeue})`; }
}

class Tick extends Cmd {
  constructor(readonly advance: number) { super(); }
  run(model: Model, real: Real): void {
    const now = model.m.now + this.advance;
    real.q.tick(now);
    model.m.tick(now);
    compare(model, real, this.toString(), undefined, undefined);
  }
  toString(): string { return `tick(+${this.advance})`; }
}

class Purge extends Cmd {
  run(model: Model, real: Real): void { compare(model, real, 'purge', real.q.purge(), model.m.purge()); }
  toString(): string { return 'purge'; }
}

class DeleteAll extends Cmd {
  run(model: Model, real: Real): void { compare(model, real, 'deleteAll', real.q.deleteAll(), model.m.deleteAll()); }
  toString(): string { return 'deleteAll'; }
}

const owner = fc.integer({ min: 1, max: 5 });
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 });

const commands = fc.commands(
  [
    fc.record({ gap: fc.integer({ min: 1, max: 3 }), size: fc.nat(20), exp: fc.option(fc.integer({ min: -2, max: 40 }), { nil: undefined, freq: 3 }), delay: fc.option(fc.integer({ min: -2, max: 30 }), { nil: undefined, freq: 4 }), count: fc.option(fc.nat(3), { nil: undefined, freq: 6 }) })
      .map((r) => new Enqueue(r.gap, r.size, r.exp, r.delay, r.count)),
    fc.record({ gap: fc.integer({ min: 1, max: 3 }), size: fc.nat(20) }).map((r) => new Enqueue(r.gap, r.size, undefined, undefined, undefined)),
    fc.tuple(owner, fc.nat(3), fc.boolean(), fc.nat(9)).map(([c, p, x, r]) => new AddConsumer(c, p, x && r === 0)),
    fc.tuple(owner, fc.boolean()).map(([c, r]) => new Cancel(c, r)),
    owner.map((o) => new Release(o)),
    opt(fc.integer({ min: 0, max: 4 })).map((m) => new Dispatch(m)),
    opt(fc.integer({ min: 0, max: 4 })).map((m) => new Dispatch(m)),
    fc.option(owner, { nil: null, freq: 3 }).map((o) => new Get(o)),
    fc.nat().map((p) => new Ack(p)),
    fc.tuple(fc.nat(), fc.boolean()).map(([p, r]) => new Nack(p, r)),
    fc.tuple(owner, fc.nat()).map(([o, p]) => new AckUpTo(o, p)),
    fc.tuple(owner, fc.nat(), fc.boolean()).map(([o, p, r]) => new NackUpTo(o, p, r)),
    fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 25 })).map((a) => new Tick(a)),
    fc.nat(19).map((x) => (x === 0 ? new Purge() : new Tick(1))),
    fc.nat(59).map((x) => (x === 0 ? new DeleteAll() : new Dispatch(undefined))),
  ],
  { size: 'max', maxCommands: 300 },
);

const argsArb: fc.Arbitrary<QueueArgs> = fc.record({
  messageTtl: opt(fc.integer({ min: 0, max: 40 })),
  maxLength: fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined, freq: 3 }),
  maxLengthBytes: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined, freq: 4 }),
  overflow: fc.constantFrom('drop-head' as const, 'reject-publish' as const, 'reject-publish-dlx' as const),
  deliveryLimit: opt(fc.integer({ min: 0, max: 3 })),
  consumerTimeout: opt(fc.integer({ min: 1, max: 40 })),
  redeliveryDelay: opt(fc.integer({ min: 0, max: 10 })),
});

test('Queue behaves as the reference model: same events in order, same counters, G6 after every command', () => {
  fc.assert(
    fc.property(argsArb, commands, (args, cmds) => {
      const events: QueueEvent[] = [];
      const setup = () => ({
        model: { m: new QueueModel(args), nextId: 0, ids: [] as number[] },
        real: { q: new Queue(args, recordEvents(events)), events, out: new GetResult() },
      });
      fc.modelRun(setup, cmds);
    }),
    fcParams({ seed: SEED, numRuns: 400, includeErrorInReport: true }),
  );
});

test('u32 payload column, and ids more than 2^32 apart (rebased, or whole ids when the live range does not fit)', () => {
  const far = fc.commands(
    [
      fc.record({ gap: fc.integer({ min: 1, max: 3 }), size: fc.nat(20), exp: fc.option(fc.integer({ min: -2, max: 40 }), { nil: undefined, freq: 3 }), delay: fc.option(fc.integer({ min: -2, max: 30 }), { nil: undefined, freq: 4 }) })
        .map((r) => new Enqueue(r.gap, r.size, r.exp, r.delay, undefined)),
      fc.integer({ min: 0, max: 3 }).map((k) => new Enqueue(2 ** 32 - 1 + k, 4, undefined, undefined, undefined)),
      fc.tuple(owner, fc.nat(3)).map(([c, p]) => new AddConsumer(c, p, false)),
      fc.tuple(owner, fc.boolean()).map(([c, r]) => new Cancel(c, r)),
      opt(fc.integer({ min: 0, max: 4 })).map((m) => new Dispatch(m)),
      fc.option(owner, { nil: null, freq: 3 }).map((o) => new Get(o)),
      fc.nat().map((p) => new Ack(p)),
      fc.tuple(fc.nat(), fc.boolean()).map(([p, r]) => new Nack(p, r)),
      fc.tuple(owner, fc.nat()).map(([o, p]) => new AckUpTo(o, p)),
      fc.integer({ min: 0, max: 10 }).map((a) => new Tick(a)),
      fc.nat(19).map((x) => (x === 0 ? new Purge() : new Tick(1))),
    ],
    { size: 'max', maxCommands: 300 },
  );
  fc.assert(
    fc.property(argsArb, far, (args, cmds) => {
      const events: QueueEvent[] = [];
      fc.modelRun(() => ({ model: { m: new QueueModel(args), nextId: 0, ids: [] as number[], u32: true }, real: { q: new Queue(args, recordEvents(events), { u32Payloads: true }), events, out: new GetResult() } }), cmds);
    }),
    fcParams({ seed: SEED + 2, numRuns: 200, includeErrorInReport: true }),
  );
});

test('deep queues: long runs with few limits (slot reuse, compaction and growth under a pinned head)', () => {
  const args = fc.record({ messageTtl: fc.option(fc.integer({ min: 20, max: 400 }), { nil: undefined }), redeliveryDelay: opt(fc.integer({ min: 0, max: 5 })), deliveryLimit: opt(fc.integer({ min: 1, max: 4 })) });
  const deep = fc.commands(
    [
      fc.nat(20).map((s) => new Enqueue(1, s, undefined, undefined, undefined)),
      fc.nat(20).map((s) => new Enqueue(1, s, undefined, undefined, undefined)),
      fc.nat(20).map((s) => new Enqueue(2, s, undefined, undefined, undefined)),
      fc.tuple(fc.nat(20), fc.integer({ min: 0, max: 500 })).map(([s, e]) => new Enqueue(1, s, e, undefined, undefined)),
      fc.tuple(fc.nat(20), fc.integer({ min: 1, max: 200 })).map(([s, d]) => new Enqueue(1, s, undefined, d, undefined)),
      fc.tuple(owner, fc.nat(40)).map(([c, p]) => new AddConsumer(c, p, false)),
      owner.map((c) => new Cancel(c, true)),
      fc.constant(new Dispatch(undefined)),
      fc.nat().map((p) => new Ack(p)),
      fc.tuple(owner, fc.nat()).map(([o, p]) => new AckUpTo(o, p)),
      fc.tuple(fc.nat(), fc.boolean()).map(([p, r]) => new Nack(p, r)),
      fc.integer({ min: 0, max: 10 }).map((a) => new Tick(a)),
    ],
    { size: 'max', maxCommands: 1500 },
  );
  fc.assert(
    fc.property(args, deep, (a, cmds) => {
      const events: QueueEvent[] = [];
      fc.modelRun(() => ({ model: { m: new QueueModel(a), nextId: 0, ids: [] as number[] }, real: { q: new Queue(a, recordEvents(events)), events, out: new GetResult() } }), cmds);
    }),
    fcParams({ seed: SEED + 1, numRuns: 40, includeErrorInReport: true }),
  );
});

test.run();
