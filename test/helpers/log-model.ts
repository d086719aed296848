/**
 * A model of the log's live state for property tests: replay the ops that
 * were appended (in order, one record each) and compare with what a
 * recovered SegmentedLog holds — message ids per queue in order, delivery
 * counts, and every body read back byte for byte.
 */
import { readFileSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE } from '../../src/log/format.js';
import type { SegmentedLog } from '../../src/log/segmented-log.js';
import { bodyFor } from './log-tmp.js';

export type Op =
  | { kind: 'enq'; q: number; m: number; size: number; psize: number }
  | { kind: 'settle'; q: number; m: number }
  | { kind: 'count'; q: number; m: number; c: number };

export interface ModelMessage { size: number; psize: number; count: number }

/** Live state after replaying ops (queue → message id → message), insertion order = publish order. */
export function replay(ops: readonly Op[]): Map<number, Map<number, ModelMessage>> {
  const qs = new Map<number, Map<number, ModelMessage>>();
  for (const op of ops) {
    let q = qs.get(op.q);
    if (!q) qs.set(op.q, (q = new Map()));
    if (op.kind === 'enq') {
      q.delete(op.m);
      q.set(op.m, { size: op.size, psize: op.psize, count: 0 });
    } else if (op.kind === 'settle') q.delete(op.m);
    else {
      const msg = q.get(op.m);
      if (msg) msg.count = op.c;
    }
  }
  return qs;
}

export function propsFor(q: number, m: number, size: number): Buffer {
  return bodyFor(m, q + 7, size);
}

/** Appends one op to the log the way the model expects. */
export function apply(log: SegmentedLog, op: Op): number {
  switch (op.kind) {
    case 'enq': return log.appendEnqueue(op.q, op.m, propsFor(op.q, op.m, op.psize), bodyFor(op.q, op.m, op.size));
    case 'settle': return log.appendSettle(op.q, op.m, 0);
    case 'count': return log.appendDeliveryCount(op.q, op.m, op.c);
  }
}

/** Asserts the recovered log holds exactly the model's live state, bodies intact. */
export function assertMatches(log: SegmentedLog, model: Map<number, Map<number, ModelMessage>>, what: string): void {
  let live = 0;
  for (const [q, msgs] of model) {
    live += msgs.size;
    const got = log.queue(q);
    assert.equal([...(got?.keys() ?? [])], [...msgs.keys()], `${what}: queue ${q} ids`);
    for (const [m, want] of msgs) {
      const e = got!.get(m)!;
      assert.is(e.deliveryCount, want.count, `${what}: count of ${q}/${m}`);
      const s = log.readMessage(e);
      assert.ok(s.body.equals(bodyFor(q, m, want.size)), `${what}: body of ${q}/${m}`);
      assert.ok(s.properties.equals(propsFor(q, m, want.psize)), `${what}: properties of ${q}/${m}`);
    }
  }
  assert.is(log.index.liveMessages, live, `${what}: live message count`);
}

/** Independent walk of a segment image by record lengths: how many records end at or before `limit`. */
export function recordsEndingBefore(file: Uint8Array, limit: number): number {
  let pos = SEGMENT_HEADER_SIZE;
  let n = 0;
  if (limit < SEGMENT_HEADER_SIZE) return 0;
  while (pos + RECORD_HEADER_SIZE <= file.length) {
    const len = file[pos + 4]! | (file[pos + 5]! << 8) | (file[pos + 6]! << 16) | (file[pos + 7]! << 24);
    const end = pos + RECORD_HEADER_SIZE + len;
    if (end > file.length || end > limit) break;
    n++;
    pos = end;
  }
  return n;
}

export function countRecords(path: string): number {
  const f = readFileSync(path);
  return recordsEndingBefore(f, f.length);
}
