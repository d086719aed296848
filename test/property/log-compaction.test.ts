/**
 * Property: reclamation (deletion and compaction) never loses or resurrects
 * anything, even when the process dies in the middle of it. Random appends,
 * settles and count updates interleaved with reclaim() calls; a hook throws
 * at a chosen step of a chosen reclamation (after the temp file is written —
 * optionally torn —, after it is synced, after the rename, after an unlink),
 * the log is abandoned as a killed process leaves it, and the reopened log
 * must hold exactly the model's live state. Then settling everything and
 * reclaiming brings disk use back to (nearly) nothing.
 */
import { truncateSync, statSync } from 'node:fs';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FSYNC_POLICIES, type FsyncPolicy } from '../../src/log/fsync.js';
import { RecordType } from '../../src/log/records.js';
import type { ReclaimStep } from '../../src/log/reclaim.js';
import { SegmentedLog } from '../../src/log/segmented-log.js';
import { apply, assertMatches, replay, type Op } from '../helpers/log-model.js';
import { makeTmpDir, removeDir } from '../helpers/log-tmp.js';

class Crash extends Error {}

type Step =
  | { t: 'enq'; q: number; size: number }
  | { t: 'settle'; pick: number; many: number; newest: boolean }
  | { t: 'count'; pick: number; c: number }
  | { t: 'reclaim' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('enq' as const), q: fc.integer({ min: 1, max: 3 }), size: fc.oneof(fc.nat(60), fc.nat(300), fc.nat(1500)) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('settle' as const), pick: fc.nat(), many: fc.integer({ min: 1, max: 3 }), newest: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('count' as const), pick: fc.nat(), c: fc.integer({ min: 1, max: 50 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reclaim' as const }) },
);
const crashArb = fc.record({
  step: fc.constantFrom<ReclaimStep>('compact-written', 'compact-synced', 'compact-renamed', 'deleted-before-dir-sync'),
  nth: fc.nat(6),
  tornTemp: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
  compactBelow: fc.constantFrom(0.5, 0.9),
});
type CrashAt = typeof crashArb extends fc.Arbitrary<infer T> ? T : never;

async function run(policy: FsyncPolicy, steps: Step[], crash: CrashAt): Promise<void> {
  const dir = makeTmpDir('ringmq-logcompact-');
  let seen = 0;
  let crashed = false;
  const hooks = {
    step(step: ReclaimStep, _seg: unknown, temp?: string) {
      if (crashed || step !== crash.step || seen++ !== crash.nth) return;
      crashed = true;
      if (temp && crash.tornTemp !== undefined) truncateSync(temp, Math.floor(statSync(temp).size * crash.tornTemp));
      throw new Crash(step);
    },
  };
  try {
    let log = await SegmentedLog.open(dir, { fsync: policy, segmentBytes: 4096, reclaimHooks: hooks, compactBelow: crash.compactBelow });
    log.appendTopology({ type: RecordType.QueueDeclared, queueId: 1, name: 'one', arguments: new Uint8Array(0) });
    const ops: Op[] = [];
    const live: [number, number][] = [];
    let nextId = 1;
    for (const s of steps) {
      if (s.t === 'enq') {
        const m = nextId++;
        ops.push({ kind: 'enq', q: s.q, m, size: s.size, psize: 3 });
        apply(log, ops.at(-1)!);
        live.push([s.q, m]);
      } else if (s.t === 'settle') {
        for (let i = 0; i < s.many && live.length; i++) {
          // Half the settles hit recent messages (a fast consumer), leaving old segments mostly live next to dead new ones.
          const at = s.newest ? live.length - 1 - (s.pick % Math.min(live.length, 4)) : s.pick % live.length;
          const [q, m] = live.splice(at, 1)[0]!;
          ops.push({ kind: 'settle', q, m });
          apply(log, ops.at(-1)!);
        }
      } else if (s.t === 'count' && live.length) {
        const [q, m] = live[s.pick % live.length]!;
        ops.push({ kind: 'count', q, m, c: s.c });
        apply(log, ops.at(-1)!);
      } else if (s.t === 'reclaim') {
        try {
          await log.reclaim();
        } catch (e) {
          if (!(e instanceof Crash)) throw e;
          log.abandon();
          // Everything before the reclaim was synced by it, so the model is exact.
          log = await SegmentedLog.open(dir, { fsync: policy, segmentBytes: 4096, reclaimHooks: hooks, compactBelow: crash.compactBelow });
          assertMatches(log, replay(ops), `after a crash at ${crash.step}`);
          assert.is(log.index.declaredQueues.get(1)?.name, 'one');
        }
        assertMatches(log, replay(ops), 'after reclaim');
        // Reopen after every reclamation, so a resurrection shows before a later reclaim could hide it.
        if (!crashed || seen > 0) {
          await log.close();
          log = await SegmentedLog.open(dir, { fsync: policy, segmentBytes: 4096, reclaimHooks: hooks, compactBelow: crash.compactBelow });
          assertMatches(log, replay(ops), 'reopened after reclaim');
        }
      }
    }
    await log.sync();
    log.abandon();
    log = await SegmentedLog.open(dir, { fsync: policy, segmentBytes: 4096 });
    assertMatches(log, replay(ops), 'at the end');
    // Settle everything: disk use returns to (nearly) nothing — the topology record and a header or two.
    for (const [q, m] of live) log.appendSettle(q, m, 0);
    await log.reclaim();
    assert.ok(log.diskBytes() <= 32 * 3 + 64, `disk bytes after settling everything: ${log.diskBytes()} in ${log.segments.length} segments`);
    await log.close();
    log = await SegmentedLog.open(dir, { fsync: policy });
    assert.is(log.index.liveMessages, 0);
    assert.is(log.index.declaredQueues.get(1)?.name, 'one');
    await log.close();
  } finally {
    removeDir(dir);
  }
}

for (const policy of FSYNC_POLICIES) {
  test(`[${policy}] a crash anywhere in reclamation loses nothing and resurrects nothing`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 300, size: 'max' }), crashArb, (steps, crash) => run(policy, steps, crash)),
      { numRuns: Number(process.env.RINGMQ_LOG_RUNS ?? 60), includeErrorInReport: true },
    );
  });
}

test.run();
