import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32, crc32Js } from '../../../src/log/crc32.js';
import * as F from '../../../src/log/format.js';
import { RecordType, SettleReason, ExchangeKind, decodeRecordBody, encodeRecordBody, type LogRecord } from '../../../src/log/records.js';
import { SegmentedLog } from '../../../src/log/segmented-log.js';
import { rng, withTmpDir } from '../../helpers/log-tmp.js';

test('crc32 matches the CRC-32 check value and zlib on every length and alignment', () => {
  assert.is(crc32(Buffer.from('123456789'), 0, 9), 0xcbf43926);
  const r = rng(7);
  const buf = Buffer.alloc(3000);
  for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(r() * 256);
  for (let len = 0; len < 600; len += 1 + (len >> 4)) {
    for (const start of [0, 1, 3, 7, 13]) {
      const want = zlib.crc32(buf.subarray(start, start + len)) >>> 0;
      assert.is(crc32Js(buf, start, start + len), want, `js len ${len} start ${start}`);
      assert.is(crc32(buf, start, start + len), want, `crc32 len ${len} start ${start}`);
    }
  }
});

test('format offsets follow one another and the header is 32 B, the record header 20 B', () => {
  assert.is(F.SEGMENT_HEADER_SIZE, 32);
  assert.is(F.RECORD_HEADER_SIZE, 20);
  assert.is(F.HEADER_CRC_OFFSET + F.HEADER_CRC_SIZE, F.SEGMENT_HEADER_SIZE);
  assert.is(F.segmentFileName(42), '00000000000000000042.seg');
  const b = new Uint8Array(8);
  for (const v of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 123456789012345]) {
    F.writeU64(b, 0, v);
    assert.is(F.readU64(b, 0), v);
  }
});

test('every record type encodes and decodes to itself', () => {
  const recs: LogRecord[] = [
    { type: RecordType.MessageEnqueued, queueId: 3, messageId: 2 ** 40 + 5, properties: new Uint8Array([1, 2]), body: new Uint8Array([9, 8, 7]) },
    { type: RecordType.MessageSettled, queueId: 3, messageId: 9, reason: SettleReason.DeadLettered },
    { type: RecordType.DeliveryCount, queueId: 3, messageId: 9, count: 17 },
    { type: RecordType.QueueDeclared, queueId: 3, name: 'orders.é', arguments: new Uint8Array([5]) },
    { type: RecordType.QueueDeleted, queueId: 3 },
    { type: RecordType.ExchangeDeclared, name: 'amq.topic', kind: ExchangeKind.Topic, arguments: new Uint8Array(0) },
    { type: RecordType.ExchangeDeleted, name: 'amq.topic' },
    { type: RecordType.Bound, exchange: 'ex', queueId: 3, routingKey: 'a.*', arguments: new Uint8Array([1]) },
    { type: RecordType.Unbound, exchange: 'ex', queueId: 3, routingKey: 'a.*', arguments: new Uint8Array(0) },
  ];
  for (const r of recs) assert.equal(decodeRecordBody(r.type, encodeRecordBody(r)), r);
  assert.throws(() => decodeRecordBody(RecordType.MessageSettled, new Uint8Array(5)), (e: { code?: string }) => e.code === 'ERR_LOG_BAD_RECORD');
  assert.throws(() => decodeRecordBody(99, new Uint8Array(5)), (e: { code?: string }) => e.code === 'ERR_LOG_BAD_RECORD');
});

const fixture = new URL('../../../../test/fixtures/log-golden-segment.hex', import.meta.url);
function golden(): Buffer {
  const hex = readFileSync(fixture, 'utf8').split('\n').map((l) => l.replace(/#.*/, '')).join(' ').trim().split(/\s+/);
  return Buffer.from(hex.map((h) => parseInt(h, 16)));
}

test('the writer produces the golden segment byte for byte', () =>
  withTmpDir(async (dir) => {
    const log = await SegmentedLog.open(dir, { fsync: 'never' });
    log.appendTopology({ type: RecordType.QueueDeclared, queueId: 7, name: 'q', arguments: new Uint8Array(0) });
    log.appendEnqueue(7, 1, Buffer.from('P'), Buffer.from('hi'));
    log.appendDeliveryCount(7, 1, 2);
    log.appendSettle(7, 1, SettleReason.Ack);
    await log.close();
    const written = readFileSync(join(dir, F.segmentFileName(1)));
    assert.is(written.toString('hex'), golden().toString('hex'));
  }));

test('the reader accepts the golden segment (and its prefix before the settle)', () =>
  withTmpDir(async (dir) => {
    const g = golden();
    writeFileSync(join(dir, F.segmentFileName(1)), g);
    let log = await SegmentedLog.open(dir);
    assert.is(log.recovery.records, 4);
    assert.is(log.recovery.truncatedBytes, 0);
    assert.is(log.index.declaredQueues.get(7)?.name, 'q');
    assert.is(log.index.liveMessages, 0);
    await log.close();
    writeFileSync(join(dir, F.segmentFileName(1)), g.subarray(0, g.length - 33)); // drop the settle record
    log = await SegmentedLog.open(dir);
    assert.is(log.recovery.records, 3);
    const m = log.queue(7)!.get(1)!;
    assert.is(m.deliveryCount, 2);
    const stored = log.readMessage(m);
    assert.is(stored.properties.toString(), 'P');
    assert.is(stored.body.toString(), 'hi');
    await log.close();
  }));

test.run();
