import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FSYNC_POLICIES } from '../../../src/log/fsync.js';
import { SettleReason } from '../../../src/log/records.js';
import { SegmentedLog } from '../../../src/log/segmented-log.js';
import { bodyFor, withTmpDir } from '../../helpers/log-tmp.js';

for (const fsync of FSYNC_POLICIES) {
  test(`[${fsync}] after settling everything, disk use returns to a header`, () =>
    withTmpDir(async (dir) => {
      const log = await SegmentedLog.open(dir, { fsync, segmentBytes: 64 * 1024 });
      for (let m = 1; m <= 2000; m++) log.appendEnqueue(1 + (m % 4), m, new Uint8Array(0), bodyFor(1, m, 300));
      await log.sync();
      const full = log.diskBytes();
      assert.ok(full > 600_000);
      for (let m = 1; m <= 2000; m++) log.appendSettle(1 + (m % 4), m, SettleReason.Ack);
      const r = await log.reclaim();
      assert.ok(r.deleted > 5, `deleted ${r.deleted}`);
      assert.is(log.diskBytes(), 32);
      assert.is(readdirSync(dir).length, 1);
      await log.close();
      const again = await SegmentedLog.open(dir, { fsync });
      assert.is(again.index.liveMessages, 0);
      assert.is(again.lastSequence, 4000, 'sequences continue after reclaiming everything');
      await again.close();
    }));

  test(`[${fsync}] a mostly settled segment is compacted: live bodies stay readable at their new positions, before and after reopen`, () =>
    withTmpDir(async (dir) => {
      const log = await SegmentedLog.open(dir, { fsync, segmentBytes: 16 * 1024 });
      for (let m = 1; m <= 200; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 500));
      for (let m = 1; m <= 200; m++) if (m % 10 !== 0) log.appendSettle(1, m, SettleReason.Ack);
      for (let m = 10; m <= 200; m += 10) log.appendDeliveryCount(1, m, 3);
      const before = log.diskBytes();
      const r = await log.reclaim();
      assert.ok(r.compacted > 0, 'compacted');
      assert.ok(log.diskBytes() < before / 4, `${log.diskBytes()} of ${before}`);
      const check = (l: SegmentedLog) => {
        assert.equal([...l.queue(1)!.keys()], Array.from({ length: 20 }, (_, i) => (i + 1) * 10));
        for (const [m, e] of l.queue(1)!) {
          assert.ok(l.readMessage(e).body.equals(bodyFor(1, m, 500)));
          assert.is(e.deliveryCount, 3);
        }
      };
      check(log);
      await log.close();
      const again = await SegmentedLog.open(dir, { fsync });
      check(again);
      await again.close();
    }));
}

test('a settle whose enqueue is still on disk elsewhere survives compaction of its own segment (no resurrection)', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'never', segmentBytes: 4096 });
    // Segment A: messages 1-4 (stay mostly live). Segment B: messages 5-8, then every settle below (936 B records, 4 KiB segments).
    for (let m = 1; m <= 8; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 900));
    log.appendSettle(1, 1, SettleReason.Ack); // enqueue in A, settle in the active segment
    for (let m = 5; m <= 8; m++) log.appendSettle(1, m, SettleReason.Ack);
    const r = await log.reclaim();
    assert.ok(r.compacted >= 1, JSON.stringify(r)); // B (5-8 and all the settles) is compacted down to the settle of 1
    await log.close();
    const again = await SegmentedLog.open(dir);
    assert.equal([...again.queue(1)!.keys()], [2, 3, 4]);
    await again.close();
  }));

test.run();
