/**
 * G1 and G2 across a real crash of the whole broker process: a child
 * publishes persistent messages with confirms (fsync=always) while a consumer
 * acks some and holds others; the parent SIGKILLs it at a seeded random
 * moment and reopens the data directory. Every confirmed message must be
 * there unless its ack was sent (then it may be gone: an ack not yet on disk
 * can be undone, G5); every message that was delivered and held unacked must
 * come back flagged redelivered (G2); nothing appears that was never published.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broker } from '../../src/broker.js';
import { rng } from '../helpers/log-tmp.js';
import { removeDir, sleep, tempDir } from '../helpers/broker-util.js';

const child = fileURLToPath(new URL('../helpers/broker-crash-child.js', import.meta.url));
const seed = Number(process.env.RINGMQ_SEED ?? Date.now() % 1_000_000);
const ROUNDS = Number(process.env.RINGMQ_KILL_ROUNDS ?? 4);

interface Report { confirmed: Set<number>; acked: Set<number>; held: Set<number>; signal: string | null }

function runChild(dir: string, childSeed: number, first: number, killAfterMs: number): Promise<Report> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(childSeed), String(first), '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const r: Report = { confirmed: new Set(), acked: new Set(), held: new Set(), signal: null };
    let pending = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [k, a] = line.split(' ');
        const n = Number(a);
        if (k === 'ready') setTimeout(() => p.kill('SIGKILL'), killAfterMs);
        else if (k === 'c') r.confirmed.add(n);
        else if (k === 'a') r.acked.add(n);
        else if (k === 'd') r.held.add(n);
      }
    });
    p.on('error', reject);
    p.on('close', (_code, signal) => { r.signal = signal; resolve(r); });
  });
}

async function drain(b: Broker, queue: string): Promise<Map<number, { redelivered: boolean }>> {
  const got = new Map<number, { redelivered: boolean }>();
  for (;;) {
    const m = await b.get(queue, { noAck: true });
    if (m === null) return got;
    const n = Number(m.text().split(' ')[0]);
    assert.not.ok(got.has(n), `message ${n} twice in one recovery`);
    got.set(n, { redelivered: m.redelivered });
  }
}

test(`SIGKILL of a publishing+consuming broker: confirmed messages survive, unacked come back redelivered (seed ${seed})`, async () => {
  const random = rng(seed);
  let first = 1;
  let totalConfirmed = 0;
  let totalHeld = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const dir = tempDir('ringmq-brokerkill-');
    try {
      const killAfter = 150 + Math.floor(random() * 500);
      const r = await runChild(dir, Math.floor(random() * 2 ** 31), first, killAfter);
      assert.is(r.signal, 'SIGKILL', `round ${round}: child ended by ${r.signal}`);
      await sleep(10);
      const b = await Broker.open({ dir, shards: 2 });
      try {
        const main = await drain(b, 'g1');
        const other = await drain(b, 'g1-other');
        for (const n of r.confirmed) {
          const q = n % 7 === 0 ? other : main;
          if (r.acked.has(n)) continue; // an ack may or may not have reached the disk (G5)
          assert.ok(q.has(n), `seed ${seed} round ${round}: confirmed message ${n} missing after SIGKILL at ${killAfter} ms (G1)`);
        }
        for (const n of r.held) {
          if (!r.confirmed.has(n)) continue;
          assert.ok(main.get(n)?.redelivered === true, `seed ${seed} round ${round}: held unacked message ${n} not back as redelivered (G2)`);
        }
        for (const n of [...main.keys(), ...other.keys()]) assert.ok(n >= first, `message ${n} never published`);
        totalConfirmed += r.confirmed.size;
        totalHeld += r.held.size;
        first = Math.max(first, ...r.confirmed, ...main.keys(), ...other.keys()) + 1000;
      } finally {
        await b.close();
      }
    } finally {
      removeDir(dir);
    }
  }
  assert.ok(totalConfirmed > 100, `only ${totalConfirmed} confirms over ${ROUNDS} rounds`);
  assert.ok(totalHeld > 5, `only ${totalHeld} held deliveries over ${ROUNDS} rounds`);
});

test.run();
