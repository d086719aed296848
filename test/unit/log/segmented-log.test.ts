import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FSYNC_POLICIES } from '../../../src/log/fsync.js';
import { segmentFileName, SEGMENT_HEADER_SIZE } from '../../../src/log/format.js';
import { RecordType, SettleReason } from '../../../src/log/records.js';
import { SegmentedLog } from '../../../src/log/segmented-log.js';
import { bodyFor, withTmpDir } from '../../helpers/log-tmp.js';

const code = (c: string) => (e: unknown) => (e as { code?: string }).code === c;
const rejectsWith = async (p: Promise<unknown>, c: string) => {
  try {
    await p;
  } catch (e) {
    assert.is((e as { code?: string }).code, c);
    return;
  }
  assert.unreachable(`expected ${c}`);
};

for (const fsync of FSYNC_POLICIES) {
  test(`[${fsync}] messages, counts and settles survive close and reopen across many segments`, () =>
    withTmpDir(async (dir) => {
      let log = await SegmentedLog.open(dir, { fsync, segmentBytes: 8192, intervalMs: 5 });
      log.appendTopology({ type: RecordType.QueueDeclared, queueId: 1, name: 'a', arguments: new Uint8Array(0) });
      let last = 0;
      for (let m = 1; m <= 300; m++) last = log.appendEnqueue(1 + (m % 2), m, Buffer.from([m & 0xff]), bodyFor(1 + (m % 2), m, m % 97));
      for (let m = 1; m <= 300; m += 3) log.appendSettle(1 + (m % 2), m, SettleReason.Ack);
      for (let m = 2; m <= 300; m += 3) log.appendDeliveryCount(1 + (m % 2), m, m % 5);
      await log.durable(last);
      assert.ok(log.segments.length > 3, `rolled into ${log.segments.length} segments`);
      await log.close();
      log = await SegmentedLog.open(dir, { fsync });
      assert.is(log.recovery.truncatedBytes, 0);
      assert.is(log.index.liveMessages, 200);
      assert.is(log.index.declaredQueues.get(1)?.name, 'a');
      for (let m = 1; m <= 300; m++) {
        const e = log.queue(1 + (m % 2))!.get(m);
        if (m % 3 === 1) { assert.is(e, undefined); continue; }
        assert.ok(e, `message ${m}`);
        assert.is(e!.deliveryCount, m % 3 === 2 ? m % 5 : 0);
        const s = log.readMessage(e!);
        assert.ok(s.body.equals(bodyFor(1 + (m % 2), m, m % 97)));
        assert.is(s.properties[0], m & 0xff);
      }
      // Publish order within a queue is kept.
      const ids = [...log.queue(2)!.keys()];
      assert.equal(ids, [...ids].sort((a, b) => a - b));
      // Appends continue after the recovered tail with the next sequence.
      const next = log.appendEnqueue(1, 1000, new Uint8Array(0), Buffer.from('x'));
      assert.is(next, log.recovery.records + 1);
      await log.close();
    }));

  test(`[${fsync}] a synced record survives abandonment (kill) and the unsynced buffer is simply gone`, () =>
    withTmpDir(async (dir) => {
      const log = await SegmentedLog.open(dir, { fsync });
      for (let m = 1; m <= 50; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 100));
      await log.sync();
      for (let m = 51; m <= 60; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 100));
      log.abandon(); // still in the write buffer: never reached the kernel
      const again = await SegmentedLog.open(dir, { fsync });
      assert.is(again.index.liveMessages, 50);
      await again.close();
    }));

  test(`[${fsync}] readMessage sees records still in the write buffer`, () =>
    withTmpDir(async (dir) => {
      const log = await SegmentedLog.open(dir, { fsync });
      log.appendEnqueue(4, 1, Buffer.from('p'), Buffer.from('hello'));
      assert.is(log.readMessage(log.queue(4)!.get(1)!).body.toString(), 'hello');
      await log.close();
    }));
}

test('[always] group commit: 256 concurrent appenders share few fdatasyncs, and no promise resolves before its sync', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'always' });
    const body = Buffer.alloc(100);
    let early = 0;
    const appender = async (a: number) => {
      for (let i = 0; i < 20; i++) {
        const seq = log.appendEnqueue(1, a * 1000 + i, new Uint8Array(0), body);
        await log.durable(seq);
        if (log.stats.durableSeq < seq) early++;
      }
    };
    await Promise.all(Array.from({ length: 256 }, (_, a) => appender(a)));
    const s = log.stats;
    assert.is(early, 0);
    assert.is(s.appends, 256 * 20);
    assert.ok(s.syncs <= 60, `syncs ${s.syncs} for ${s.appends} appends`);
    assert.ok(s.writeSyscalls <= s.syncs + 5, `writes ${s.writeSyscalls}`);
    await log.close();
  }));

test('[never] appends of one turn go out in one write syscall; [interval] the timer syncs', async () => {
  await withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'never' });
    let seq = 0;
    for (let i = 0; i < 500; i++) seq = log.appendEnqueue(1, i, new Uint8Array(0), Buffer.alloc(64));
    await log.durable(seq);
    assert.is(log.stats.writeSyscalls, 1);
    assert.is(log.stats.syncs, 0);
    await log.close();
  });
  await withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'interval', intervalMs: 10 });
    const seq = log.appendEnqueue(1, 1, new Uint8Array(0), Buffer.alloc(64));
    await log.durable(seq);
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(log.stats.durableSeq >= seq, 'interval sync happened');
    await log.close();
  });
});

test('errors are typed: record too large, use after close, bad options', () =>
  withTmpDir(async (dir) => {
    await rejectsWith(SegmentedLog.open(dir, { segmentBytes: 10 }), 'ERR_LOG_OPTIONS');
    const log = await SegmentedLog.open(dir);
    assert.throws(() => log.append(200, new Uint8Array(256 * 1024 * 1024 + 1)), code('ERR_LOG_RECORD_TOO_LARGE'));
    await log.close();
    assert.throws(() => log.appendSettle(1, 1, SettleReason.Ack), code('ERR_LOG_CLOSED'));
  }));

test('a record larger than a segment gets a segment of its own', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { segmentBytes: 4096, fsync: 'never' });
    log.appendEnqueue(1, 1, new Uint8Array(0), bodyFor(1, 1, 10000));
    log.appendEnqueue(1, 2, new Uint8Array(0), bodyFor(1, 2, 10));
    await log.close();
    const again = await SegmentedLog.open(dir);
    assert.ok(again.readMessage(again.queue(1)!.get(1)!).body.equals(bodyFor(1, 1, 10000)));
    assert.is(again.segments.length, 2);
    await again.close();
  }));

test('recovery verifies sealed segments on the piscina pool; corruption in a sealed segment is an error, not a silent truncation', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { segmentBytes: 4096, fsync: 'never' });
    for (let m = 1; m <= 100; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 200));
    await log.close();
    const pooled = await SegmentedLog.open(dir, { recovery: { parallelVerifyMinBytes: 0 } });
    assert.ok(pooled.recovery.parallel);
    assert.is(pooled.index.liveMessages, 100);
    await pooled.close();
    const files = readdirSync(dir).filter((f) => f.endsWith('.seg')).sort();
    const victim = join(dir, files[1]!);
    const bytes = readFileSync(victim);
    bytes[SEGMENT_HEADER_SIZE + 40]! ^= 0x10;
    writeFileSync(victim, bytes);
    await rejectsWith(SegmentedLog.open(dir, { recovery: { parallelVerifyMinBytes: 0 } }), 'ERR_LOG_CORRUPT');
    await rejectsWith(SegmentedLog.open(dir), 'ERR_LOG_CORRUPT');
    // Opt-in: apply the rule anyway — the log ends at the bad record.
    const cut = await SegmentedLog.open(dir, { recovery: { onSealedCorruption: 'truncate' } });
    assert.is(cut.segments.length, 2);
    assert.ok(cut.index.liveMessages < 100 && cut.index.liveMessages > 0);
    await cut.close();
  }));

test('recovery removes a torn newest header and leftovers of an interrupted compaction', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'never' });
    for (let m = 1; m <= 10; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 50));
    await log.close();
    writeFileSync(join(dir, segmentFileName(11)), Buffer.from([0x52, 0x4d])); // creation torn after 2 bytes
    writeFileSync(join(dir, segmentFileName(1).replace('.seg', '.seg.compact')), Buffer.alloc(100));
    const again = await SegmentedLog.open(dir);
    assert.is(again.index.liveMessages, 10);
    assert.is(again.recovery.removedFiles.length, 2);
    assert.not.ok(existsSync(join(dir, segmentFileName(11))));
    again.appendEnqueue(1, 11, new Uint8Array(0), Buffer.from('z'));
    await again.close();
    const third = await SegmentedLog.open(dir);
    assert.is(third.index.liveMessages, 11);
    await third.close();
  }));

test('a torn tail is truncated at the first invalid record and reported', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'never' });
    for (let m = 1; m <= 10; m++) log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, 50));
    await log.close();
    const path = join(dir, segmentFileName(1));
    const full = statSync(path).size;
    truncateSync(path, full - 7);
    appendFileSync(path, Buffer.alloc(3000)); // zero fill, as after a power cut
    const again = await SegmentedLog.open(dir);
    assert.is(again.index.liveMessages, 9);
    const record = 20 + 16 + 50; // header + enqueue fields + body
    assert.is(again.recovery.truncatedBytes, full - 7 + 3000 - (full - record));
    assert.is(statSync(path).size, full - record);
    await again.close();
  }));

test('syncNow writes the buffer and starts the fdatasync a durable() wait asked for, at once, not on the next turn', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'always' });
    try {
      const seq = log.appendEnqueue(1, 1, new Uint8Array(0), Buffer.from('x'));
      const done = log.durable(seq);
      assert.ok(log.stats.writtenSeq < seq, 'buffered until the turn');
      assert.not.ok(log.quiet, 'a turn is scheduled');
      const syncsBefore = log.stats.syncs;
      log.syncNow();
      assert.is(log.stats.writtenSeq, seq, 'written by syncNow itself');
      await done;
      assert.ok(log.stats.durableSeq >= seq);
      assert.is(log.stats.syncs, syncsBefore + 1, 'one fdatasync: the scheduled turn found nothing left to do');
      assert.ok(log.quiet);
    } finally {
      await log.close();
    }
  }));

test.run();
