/**
 * `ringmq fuzz --target amqp`: a short seeded run over AMQP 0-9-1 (amqplib
 * against a `ringmq serve` started for the run, SIGKILLed and restarted on
 * its data directory) reports no violation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runOne } from '../../../src/fuzz/run-one.js';

const SEED = Number(process.env.RINGMQ_FUZZ_AMQP_SEED ?? 3);

test(`a short seeded fuzz run over AMQP against ringmq serve: no violation (seed ${SEED})`, async () => {
  const r = await runOne({ seed: SEED, target: 'amqp', steps: 120, timeoutMs: 60_000 });
  const text = `seed ${r.seed}: ${r.ops} ops, ${r.kills} kills, ${r.restarts} restarts, ${r.ms} ms\n${r.violations.map((v) => v.text).join('\n')}${r.failure ? `\nfailure: ${r.failure}` : ''}`;
  assert.is(r.failure, null, text);
  assert.ok(r.complete, text);
  assert.equal(r.violations, [], text);
  assert.ok(r.kills + r.restarts > 0, `no crash injected: ${text}`);
  for (const g of ['G1', 'G3', 'G4', 'G8'] as const) assert.ok(r.checks[g] > 0, `no ${g} check: ${JSON.stringify(r.checks)}`);
});

test.run();
