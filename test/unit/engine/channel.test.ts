/**
 * The engine's ring outbox/inbox (src/engine/channel.ts): a full ring spills
 * in order and drains as space frees (never loss), records above maxBody
 * travel as fragments, and the spill drainer restarts after a drain that
 * finished without waiting (a race between threads, forced here by making
 * one tryWrite fail).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRing } from '../../../src/ring/ring.js';
import { Inbox, Outbox } from '../../../src/engine/channel.js';

/** p, or a rejection after ms (a wedged drainer must fail the test, not hang it). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: not done in ${ms} ms`)), ms))]);
}

function collect(inbox: Inbox, out: string[]): number {
  return inbox.drain((type, b, o, len) => { out.push(`${type}:${Buffer.from(b.subarray(o, o + len)).toString()}`); });
}

test('a full ring spills in order; the spill drains into the ring as the consumer frees space', async () => {
  const sab = createRing(64 * 1024, { maxBody: 8 * 1024 });
  const outbox = new Outbox(sab);
  const inbox = new Inbox(sab);
  const sent: string[] = [];
  let spilled = 0;
  for (let i = 0; i < 5000; i++) {
    const body = Buffer.from(`record ${i} `.padEnd(40, '.'));
    if (!outbox.write(7, body, 0, body.length)) spilled++;
    sent.push(`7:${body.toString()}`);
  }
  outbox.publish();
  assert.ok(spilled > 0, 'the ring filled up');
  const got: string[] = [];
  const until = Date.now() + 5000;
  while (got.length < sent.length && Date.now() < until) {
    collect(inbox, got);
    await new Promise((r) => setTimeout(r, 1));
  }
  await within(outbox.drained(), 1000, 'drained');
  assert.equal(got, sent);
});

test('records larger than maxBody arrive whole, in order with the others', () => {
  const sab = createRing(64 * 1024, { maxBody: 1024 });
  const outbox = new Outbox(sab);
  const inbox = new Inbox(sab);
  const big = Buffer.alloc(5000, 'x');
  outbox.write(3, Buffer.from('a'), 0, 1);
  outbox.write(4, big, 0, big.length);
  outbox.write(3, Buffer.from('b'), 0, 1);
  outbox.publish();
  const got: string[] = [];
  collect(inbox, got);
  assert.equal(got, ['3:a', `4:${big.toString()}`, '3:b']);
});

test('a spill whose drain completes at once does not wedge later spills', async () => {
  const sab = createRing(64 * 1024, { maxBody: 8 * 1024 });
  const outbox = new Outbox(sab);
  const inbox = new Inbox(sab);
  const ring = outbox.ring as unknown as { tryWrite: (...a: unknown[]) => boolean };
  const real = ring.tryWrite.bind(outbox.ring);
  // The consumer "frees space" between write()'s failed tryWrite and the drainer's retry (in real life: another thread).
  let failNext = 1;
  ring.tryWrite = (...a: unknown[]) => (failNext-- > 0 ? false : real(...a));
  const got: string[] = [];
  // Polls with timers (not drained(): with the drainer wedged, awaiting it would spin on a settled promise).
  const arrive = async (n: number): Promise<void> => {
    const until = Date.now() + 1000;
    while (got.length < n && Date.now() < until) {
      outbox.publish();
      collect(inbox, got);
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const body = Buffer.from('first');
  assert.not.ok(outbox.write(1, body, 0, body.length), 'spilled');
  await arrive(1);
  failNext = 1;
  const body2 = Buffer.from('second');
  outbox.write(1, body2, 0, body2.length);
  await arrive(2);
  assert.equal(got, ['1:first', '1:second']);
});

test('a spilled record is a copy: the caller may reuse its buffer at once (Buffer source)', async () => {
  const sab = createRing(64 * 1024, { maxBody: 8 * 1024 });
  const outbox = new Outbox(sab);
  const inbox = new Inbox(sab);
  const scratch = Buffer.alloc(64); // like the broker's reused publish buffer
  const sent: string[] = [];
  for (let i = 0; i < 3000; i++) {
    scratch.fill(0x2e);
    scratch.write(`record ${i}`);
    outbox.write(9, scratch, 0, 40);
    sent.push(`9:${scratch.toString('utf8', 0, 40)}`);
  }
  outbox.publish();
  const got: string[] = [];
  const until = Date.now() + 5000;
  while (got.length < sent.length && Date.now() < until) {
    collect(inbox, got);
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.equal(got, sent);
});

test.run();
