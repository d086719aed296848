/**
 * `ringmq fuzz` end to end on the embedded target: short seeded runs (real
 * broker child processes, SIGKILLs, torn tails, clean restarts, consumer
 * loss, a 64 KiB ring) report no violation and exercise every guarantee's
 * check; the self-check's planted bug (a shard drops the first message it
 * recovers) is found within 30 s. The seeds that found the three broker bugs
 * (docs/fuzz.md, Findings; all fixed) run again, without --avoid.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GUARANTEES } from '../../../src/fuzz/checker.js';
import { runOne, type RunResult } from '../../../src/fuzz/run-one.js';

const BIN = fileURLToPath(new URL('../../../../bin/ringmq.js', import.meta.url));
const SEEDS = (process.env.RINGMQ_FUZZ_SEEDS ?? '1126').split(',').map(Number);

function describe(r: RunResult): string {
  return `seed ${r.seed}: ${r.ops} ops, ${r.kills} kills (${r.tornKills} torn), ${r.restarts} restarts, ${r.ms} ms\n${r.violations.map((v) => v.text).join('\n')}${r.failure ? `\nfailure: ${r.failure}` : ''}`;
}

test(`a short seeded fuzz run of the embedded target (SIGKILLs, a torn tail, clean restarts, a 64 KiB ring): no violation (seeds ${SEEDS.join(', ')})`, async () => {
  const total = Object.fromEntries(GUARANTEES.map((g) => [g, 0])) as Record<string, number>;
  let kills = 0;
  for (const seed of SEEDS) {
    const r = await runOne({ seed, target: 'embedded', steps: 180, timeoutMs: 60_000 });
    const text = describe(r);
    assert.is(r.failure, null, text);
    assert.ok(r.complete, text);
    assert.equal(r.violations, [], text);
    for (const g of GUARANTEES) total[g] = (total[g] ?? 0) + r.checks[g];
    kills += r.kills + r.restarts;
  }
  assert.ok(kills > 0, 'the runs injected crashes');
  for (const g of GUARANTEES) assert.ok(total[g]! > 0, `no ${g} check was made: ${JSON.stringify(total)}`);
});

test('the seeds that found binding-args (1), noack-cancel (9) and dl-close (320) report nothing now', async () => {
  for (const [seed, steps] of [[1, 200], [9, 300], [320, 300]] as const) {
    const r = await runOne({ seed, target: 'embedded', steps, timeoutMs: 60_000 });
    const text = describe(r);
    assert.is(r.failure, null, text);
    assert.ok(r.complete, text);
    assert.equal(r.violations, [], text);
  }
});

test('`ringmq fuzz --self-check`: known histories judged right, the planted bug found within 30 s with kills on', async () => {
  const t0 = Date.now();
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'fuzz', '--self-check', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => { s += d; });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`self-check exited ${code}: ${s}`))));
  });
  const r = JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; library: { bad: number; badRejected: number; good: number; goodAccepted: number }; planted: { found: boolean; ms: number; seed: number | null } };
  assert.ok(r.ok, out);
  assert.is(r.library.badRejected, r.library.bad);
  assert.is(r.library.goodAccepted, r.library.good);
  assert.ok(r.planted.found && r.planted.ms < 30_000, out);
  assert.ok(Date.now() - t0 < 45_000);
});

test.run();
