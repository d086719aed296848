/**
 * The checker on hand-written histories: every known-bad history is rejected
 * with exactly the guarantee it breaks (at least one per G1–G10 checked),
 * every known-good one passes; violations carry an excerpt of the history
 * and the replay command.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkHistory, formatViolation, GUARANTEES } from '../../../src/fuzz/checker.js';
import { historyFromJsonl, historyToJsonl } from '../../../src/fuzz/history.js';
import { BAD_HISTORIES, GOOD_HISTORIES } from '../../../src/fuzz/selfcheck-histories.js';

for (const k of BAD_HISTORIES) {
  test(`rejects (${k.expect}): ${k.name}`, () => {
    const r = checkHistory(k.history);
    const got = GUARANTEES.filter((g) => r.violationCounts[g] > 0);
    assert.equal(got, [k.expect], `expected exactly ${k.expect}, got ${got.join(',') || 'nothing'}: ${r.violations.map((v) => v.message).join(' // ')}`);
    const v = r.violations[0]!;
    assert.ok(v.excerpt.length > 0, 'a violation comes with a history excerpt');
  });
}

for (const k of GOOD_HISTORIES) {
  test(`accepts: ${k.name}`, () => {
    const r = checkHistory(k.history);
    assert.equal(r.violations.map((v) => `${v.g} ${v.message}`), []);
    assert.ok(r.complete, 'the history reached its final accounting point');
  });
}

test('every guarantee the checker checks has a known-bad history', () => {
  for (const g of GUARANTEES) assert.ok(BAD_HISTORIES.some((k) => k.expect === g), `no known-bad history for ${g}`);
});

test('a violation prints the guarantee, the seed, the replay command and the excerpt', () => {
  const k = BAD_HISTORIES.find((b) => b.expect === 'G1')!;
  const r = checkHistory(k.history);
  const text = formatViolation(r.violations[0]!, 1234, 'ringmq fuzz --replay 1234 --target embedded');
  assert.match(text, /^VIOLATION G1 \(confirmed is durable\): message 1 is missing/);
  assert.match(text, /seed 1234; replay: ringmq fuzz --replay 1234 --target embedded/);
  assert.match(text, /#\d+ e0 \+\d+ms publish \{"m":1/);
  assert.match(text, /kill/);
});

test('histories survive a JSON Lines round trip unchanged (a saved history can be checked again)', () => {
  for (const k of [...BAD_HISTORIES, ...GOOD_HISTORIES]) {
    const back = historyFromJsonl(historyToJsonl(k.history));
    assert.equal(back, k.history);
    assert.equal(checkHistory(back).violationCounts, checkHistory(k.history).violationCounts);
  }
});

test.run();
