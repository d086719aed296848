import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QueueIndex } from '../../../src/log/queue-index.js';

type Op = { t: 'add'; gap: number; back: boolean } | { t: 'remove'; pick: number };

test('QueueIndex matches an ordered Map under adds (in order, with gaps, out of order), removes, packing and growth', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ t: fc.constant('add' as const), gap: fc.integer({ min: 1, max: 3 }), back: fc.boolean() }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }) },
        ),
        { maxLength: 400, size: 'max' },
      ),
      fc.boolean(),
      (ops: Op[], allowBack) => {
        const q = new QueueIndex(1, () => undefined, 2);
        const model = new Map<number, number>(); // id -> offset
        let last = 0;
        let off = 0;
        for (const op of ops) {
          if (op.t === 'add') {
            let id = last + op.gap;
            if (allowBack && op.back && last > 5) id = last - 5 - op.gap; // out of order: map mode
            if (model.has(id)) continue;
            last = Math.max(last, id);
            model.set(id, ++off);
            q.add(id, 0, off, 10);
          } else if (model.size) {
            const ids = [...model.keys()];
            const id = ids[op.pick % ids.length]!;
            const slot = q.slotOf(id);
            assert.ok(slot >= 0, `slot of ${id}`);
            q.remove(slot);
            model.delete(id);
          }
          assert.is(q.size, model.size);
        }
        assert.equal([...q.keys()], [...model.keys()]);
        for (const [id, o] of model) assert.is(q.offs[q.slotOf(id)], o);
        assert.is(q.slotOf(last + 100), -1);
      },
    ),
    { numRuns: 300, includeErrorInReport: true },
  );
});

test.run();
