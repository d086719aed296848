import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createRing, maxBodyFor, RingConsumer, RingProducer, RingRecordTooLargeError } from '../../../src/ring/ring.js';
import { CLOSE_TYPE, CONTROL_SIZE, MAX_USER_TYPE, PAD_TYPE, RECORD_HEADER_SIZE, kReadSeqField, kWriteSeqField } from '../../../src/ring/layout.js';
import { headerFlags, headerLength, headerType, leadOf, recordSize, writeHeader } from '../../../src/ring/record.js';


function fill(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

function take(c: RingConsumer): { type: number; body: Uint8Array } | undefined {
  if (!c.next()) return undefined;
  return { type: c.type, body: c.bytes.slice(c.offset, c.offset + c.length) };
}

/**
 * Every test runs three times: with the default staging area (small records
 * staged, copied into the data region at publish), with staging off (every
 * record written in place), and with a tiny staging area (64 B: only the
 * smallest records staged, frequent flushes).
 */
for (const stagingSize of [undefined, 0, 64]) {
  const test = suite(`staging ${stagingSize ?? 'default'}`);
  const pair = (capacity: number, maxBody?: number) => {
    const sab = createRing(capacity, { maxBody });
    return { sab, p: new RingProducer(sab, { stagingSize }), c: new RingConsumer(sab) };
  };

  test('record codec: sizes round up to 8 and include header and lead', () => {
    assert.is(recordSize(0, 0), 8);
    assert.is(recordSize(1, 0), 16);
    assert.is(recordSize(8, 0), 16);
    assert.is(recordSize(9, 0), 24);
    assert.is(recordSize(1, 7), 16);
    assert.is(recordSize(2, 7), 24);
    const words = new Uint32Array(4);
    writeHeader(words, 8, 1234, 0xabcd, 5);
    assert.is(headerLength(words, 8), 1234);
    assert.is(headerType(words, 8), 0xabcd);
    assert.is(headerFlags(words, 8), 5);
    assert.is(leadOf(headerFlags(words, 8)), 5);
    // Little-endian bytes as drawn in docs/ring-layout.md: u32 length | u16 type | u16 flags.
    const bytes = new Uint8Array(words.buffer);
    assert.equal([...bytes.subarray(8, 16)], [0xd2, 0x04, 0, 0, 0xcd, 0xab, 5, 0]);
  });

  test('createRing rejects capacities that are not powers of two in range, and bad maxBody', () => {
    for (const bad of [0, 32, 100, 1000, 2 ** 30, 1.5]) assert.throws(() => createRing(bad), (e: unknown) => e instanceof RangeError);
    assert.throws(() => createRing(1024, { maxBody: maxBodyFor(1024) + 1 }), (e: unknown) => e instanceof RangeError);
    assert.throws(() => createRing(1024, { maxBody: -1 }),
      (e: unknown) => e instanceof RangeError);
    assert.is(createRing(1024).byteLength, CONTROL_SIZE + 1024);
    assert.throws(() => new RingProducer(createRing(1024), { stagingSize: 12 }), (e: unknown) => e instanceof RangeError);
    assert.is(new RingProducer(createRing(1024)).stagingSize, 1024, 'default staging: the capacity when below 64 KiB');
    assert.is(new RingProducer(createRing(1 << 20)).stagingSize, 65536);
    assert.throws(() => new RingProducer(new SharedArrayBuffer(CONTROL_SIZE + 1000)), (e: unknown) => e instanceof RangeError);
  });

  test('empty ring: nothing to take, nothing to release, writes invisible until publish', () => {
    const { p, c } = pair(1024);
    assert.not.ok(c.next());
    assert.not.ok(c.available());
    assert.ok(p.tryWrite(7, fill(10, 1)));
    assert.not.ok(c.next(), 'claimed but unpublished record must not be visible');
    p.publish();
    const r = take(c);
    assert.ok(r);
    assert.is(r!.type, 7);
    assert.equal(r!.body, fill(10, 1));
    assert.not.ok(c.next());
  });

  test('zero-length and maximum-size records round-trip; one byte more is refused with a typed error', () => {
    const { p, c } = pair(4096);
    assert.is(p.maxBody, maxBodyFor(4096));
    assert.ok(p.tryWrite(1, new Uint8Array(0)));
    assert.ok(p.tryWrite(2, fill(p.maxBody, 3)));
    p.publish();
    assert.equal(take(c), { type: 1, body: new Uint8Array(0) });
    assert.equal(take(c), { type: 2, body: fill(p.maxBody, 3) });
    c.release();
    try {
      p.tryWrite(3, new Uint8Array(p.maxBody + 1));
      assert.unreachable('oversize record accepted');
    } catch (err) {
      assert.instance(err, RingRecordTooLargeError);
      assert.is((err as RingRecordTooLargeError).code, 'ERR_RING_RECORD_TOO_LARGE');
      assert.is((err as RingRecordTooLargeError).length, p.maxBody + 1);
    }
    // A smaller configured maximum is enforced too.
    const small = pair(4096, 100);
    assert.ok(small.p.tryWrite(1, new Uint8Array(100)));
    assert.throws(() => small.p.tryWrite(1, new Uint8Array(101)), (e: unknown) => e instanceof RingRecordTooLargeError);
  });

  test('record types: user range only; pad and close types are reserved', () => {
    const { p } = pair(1024);
    assert.throws(() => p.tryClaim(PAD_TYPE, 0), (e: unknown) => e instanceof RangeError);
    assert.throws(() => p.tryClaim(CLOSE_TYPE, 0), (e: unknown) => e instanceof RangeError);
    assert.throws(() => p.tryClaim(-1, 0), (e: unknown) => e instanceof RangeError);
    assert.ok(p.tryClaim(MAX_USER_TYPE, 0) >= 0);
  });

  test('full ring: tryWrite refuses, nothing is overwritten, release makes room again', () => {
    const capacity = 1024;
    const { p, c } = pair(capacity);
    // 56-byte bodies make 64-byte records: exactly capacity / 64 fit.
    let n = 0;
    while (p.tryWrite(n & 0xff, fill(56, n))) n++;
    assert.is(n, capacity / 64);
    assert.not.ok(p.hasSpace(0));
    p.publish();
    assert.not.ok(p.tryWrite(99, fill(56, 99)), 'still full after publish');
    // Take one without releasing: still full.
    assert.ok(c.next());
    assert.not.ok(p.tryWrite(99, fill(56, 99)));
    c.release();
    assert.ok(p.tryWrite(n & 0xff, fill(56, n)));
    n++;
    p.publish();
    // Every record intact and in order, the first one included.
    for (let i = 1; i < n; i++) assert.equal(take(c), { type: i & 0xff, body: fill(56, i) }, `record ${i}`);
    assert.not.ok(c.next());
  });

  test('wrap-around: a record that does not fit before the end is padded to the start, many laps, in order', () => {
    const capacity = 256;
    const { p, c } = pair(capacity);
    const sizes = [0, 1, 7, 8, 9, 33, 64, 100, maxBodyFor(capacity), 5, 17, 40];
    let written = 0;
    let read = 0;
    for (let lap = 0; lap < 200; lap++) {
      for (const s of sizes) {
        if (!p.tryWrite(written % 1000, fill(s, written))) {
          p.publish();
          // Drain everything, checking each record, then retry.
          while (c.next()) {
            assert.is(c.type, read % 1000);
            assert.equal(c.bytes.slice(c.offset, c.offset + c.length), fill(sizes[read % sizes.length]!, read), `record ${read}`);
            read++;
          }
          c.release();
          assert.ok(p.tryWrite(written % 1000, fill(s, written)), 'an empty ring takes any record up to maxBody');
        }
        written++;
      }
    }
    p.publish();
    while (c.next()) {
      assert.equal(c.bytes.slice(c.offset, c.offset + c.length), fill(sizes[read % sizes.length]!, read));
      read++;
    }
    c.release();
    assert.is(read, written);
    assert.ok(p.records === written && c.records === written);
  });

  test('sequences are free-running modulo 2^30 and survive the wrap', () => {
    const capacity = 1024;
    const sab = createRing(capacity);
    // Start both sides just below 2^30, as if the ring had moved 1 GiB already.
    const ctl = new Int32Array(sab, 0, 32);
    const start = 2 ** 30 - 3 * 64;
    ctl[kWriteSeqField] = start | 0;
    ctl[kReadSeqField] = start | 0;
    const p = new RingProducer(sab, { stagingSize });
    const c = new RingConsumer(sab);
    for (let i = 0; i < 100; i++) {
      assert.ok(p.tryWrite(1, fill(50, i)));
      assert.ok(p.tryWrite(2, fill(200, i)));
      p.publish();
      assert.equal(take(c), { type: 1, body: fill(50, i) });
      assert.equal(take(c), { type: 2, body: fill(200, i) });
      c.release();
    }
    assert.ok(Atomics.load(ctl, kWriteSeqField) < start, 'the write sequence wrapped past 2^30');
    assert.ok(Atomics.load(ctl, kWriteSeqField) >= 0);
  });

  test('bodies land at the source address modulo 8 (lead), and ranges copy exactly', () => {
    const { p, c } = pair(4096);
    const big = fill(1100, 9);
    for (let start = 0; start < 16; start++) {
      for (const len of [0, 3, 15, 16, 17, 31, 32, 33, 500, 768, 769, 1000]) {
        assert.ok(p.tryWrite(start, big, start, start + len));
        p.publish();
        assert.ok(c.next());
        assert.is(c.offset % 8, (big.byteOffset + start) % 8, `lead for start ${start}`);
        assert.equal(c.bytes.slice(c.offset, c.offset + c.length), big.slice(start, start + len));
        c.release();
      }
    }
    // A record written in place (here: larger than any staged record) lands at its source's address modulo 8.
    const odd = Buffer.alloc(1300, 7).subarray(3);
    assert.ok(p.tryWrite(1, odd));
    p.publish();
    assert.ok(c.next());
    assert.is(c.offset % 8, 3);
    assert.equal(c.bytes.slice(c.offset, c.offset + c.length), new Uint8Array(odd));
    c.release();
    // A small whole array at an odd offset round-trips (staged with lead 0, or in place with its lead).
    const small = Buffer.from('a small buffer at an odd offset').subarray(5);
    assert.ok(p.tryWrite(1, small));
    p.publish();
    assert.ok(c.next());
    assert.is(Buffer.from(c.bytes.slice(c.offset, c.offset + c.length)).toString(), small.toString());
    c.release();
  });

  test('claim lets the caller encode in place; the header says type and length', () => {
    const { p, c } = pair(1024);
    const at = p.tryClaim(42, 4);
    assert.ok(at >= RECORD_HEADER_SIZE);
    new DataView(p.bytes.buffer, p.bytes.byteOffset).setUint32(at, 0xdeadbeef, true);
    p.publish();
    assert.ok(c.next());
    assert.is(c.type, 42);
    assert.is(c.length, 4);
    assert.is(new DataView(c.bytes.buffer, c.bytes.byteOffset).getUint32(c.offset, true), 0xdeadbeef);
  });

  test('records written in place (tryClaim) and copied (tryWrite, maybe staged) keep their order', () => {
    const { p, c } = pair(1024);
    const seen: number[] = [];
    for (let lap = 0; lap < 50; lap++) {
      assert.ok(p.tryWrite(1, fill(10, lap)));
      const at = p.tryClaim(2, 3);
      assert.ok(at >= 0);
      p.bytes.set([lap & 0xff, 2, 3], at);
      assert.ok(p.tryWrite(3, fill(20, lap)));
      assert.ok(p.tryWrite(4, fill(300, lap)));
      p.publish();
      while (c.next()) {
        seen.push(c.type);
        if (c.type === 2) assert.equal([...c.bytes.subarray(c.offset, c.offset + 3)], [lap & 0xff, 2, 3]);
        if (c.type === 3) assert.equal(c.bytes.slice(c.offset, c.offset + c.length), fill(20, lap));
      }
      c.release();
    }
    assert.equal(seen, Array.from({ length: 50 }, () => [1, 2, 3, 4]).flat());
  });

  test('drain takes all available records in order and releases once', () => {
    const { p, c } = pair(4096);
    for (let i = 0; i < 20; i++) p.tryWrite(i, fill(i, i));
    p.publish();
    const seen: number[] = [];
    const n = c.drain((type, bytes, offset, length) => {
      assert.equal(bytes.slice(offset, offset + length), fill(type, type));
      seen.push(type);
    });
    assert.is(n, 20);
    assert.equal(seen, [...Array(20).keys()]);
    assert.is(c.batches, 1);
    assert.is(p.batches, 1);
    assert.is(c.drain(() => assert.unreachable()), 0);
    assert.is(c.batches, 1, 'an empty drain releases nothing');
  });

  test('close: the consumer sees every record before it, then closed', () => {
    const { p, c } = pair(1024);
    p.tryWrite(1, fill(5, 1));
    assert.ok(p.closeSync(0));
    assert.equal(take(c), { type: 1, body: fill(5, 1) });
    assert.not.ok(c.closed);
    assert.not.ok(c.next());
    assert.ok(c.closed);
    assert.not.ok(c.waitSync(1000), 'waiting on a closed, drained ring returns at once');
  });

  test('beginPoll/endPoll: no notify for what the poll takes; a record published during the poll is reported, one after it wakes the pending wait', async () => {
    const { p, c } = pair(4096);
    // A pending wait (the read loop), then a synchronous poll on the same thread.
    let woke = false;
    const pending = c.wait(2000, false).then((v) => { woke = true; return v; });
    const was = c.beginPoll();
    assert.is(was, 1, 'the pending wait had announced itself');
    assert.ok(p.tryWrite(1, fill(8, 1)));
    p.publish(); // the flag is clear: no notify
    assert.ok(c.next(), 'the poll takes the record');
    c.release();
    assert.not.ok(c.endPoll(was), 'nothing more');
    await new Promise((r) => setTimeout(r, 30));
    assert.not.ok(woke, 'the pending wait was not woken for the record the poll took');
    // A record published while the flag is clear, and not polled: endPoll reports it.
    const was2 = c.beginPoll();
    assert.ok(p.tryWrite(1, fill(8, 2)));
    p.publish();
    assert.ok(c.endPoll(was2), 'endPoll sees the record that got no notify');
    assert.ok(c.next());
    c.release();
    // After endPoll the flag is back: a later publish wakes the pending wait.
    assert.ok(p.tryWrite(1, fill(8, 3)));
    p.publish();
    assert.ok(await pending);
    assert.ok(woke);
  });

  test('interrupt ends a wait with no timeout (false: no record), and the next wait sleeps again', async () => {
    const { p, c } = pair(4096);
    const pending = c.wait(Infinity, false);
    const outcome = await Promise.race([
      (async () => { await new Promise((r) => setTimeout(r, 20)); c.interrupt(); return pending; })(),
      new Promise((r) => setTimeout(() => r('still pending'), 2000)),
    ]);
    assert.is(outcome, false, 'the interrupted wait returned false');
    const again = c.wait(Infinity, false);
    assert.ok(p.tryWrite(1, fill(8, 1)));
    p.publish();
    assert.is(await again, true, 'a later wait is woken by a publish as usual');
  });

  test('waits time out: an empty ring for the consumer, a full ring for the producer', async () => {
    const { p, c } = pair(256);
    let t = performance.now();
    assert.not.ok(c.waitSync(20));
    assert.ok(performance.now() - t >= 15);
    t = performance.now();
    assert.not.ok(await c.wait(20));
    assert.ok(performance.now() - t >= 15);
    while (p.tryWrite(1, fill(100, 1)));
    t = performance.now();
    assert.not.ok(p.waitForSpaceSync(100, 20));
    assert.ok(performance.now() - t >= 15);
    assert.not.ok(await p.waitForSpace(100, 20));
    assert.not.ok(p.writeSync(1, fill(100, 1), 0, 100, 10));
    assert.not.ok(await p.write(1, fill(100, 1), 0, 100, 10));
    // waitForSpace published the claimed records: the consumer sees them now.
    assert.ok(c.waitSync(0));
  });

  test.run();
}
