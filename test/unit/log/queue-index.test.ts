import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QueueIndex } from '../../../src/log/queue-index.js';

type Op = { t: 'add'; gap: number; back: boolean; far: boolean; roll: boolean } | { t: 'remove'; pick: number };

test('QueueIndex matches an ordered Map under adds (in order, with gaps, out of order), removes, packing and growth', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          { weight: 3, arbitrary: fc.record({ t: fc.constant('add' as const), gap: fc.integer({ min: 1, max: 3 }), back: fc.boolean(), far: fc.boolean(), roll: fc.boolean() }) },
          { weight: 2, arbitrary: fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }) },
        ),
        { maxLength: 400, size: 'max' },
      ),
      fc.boolean(),
      (ops: Op[], allowBack) => {
        const q = new QueueIndex(1, () => undefined, 2);
        const model = new Map<number, [number, number]>(); // id -> [segment, offset]
        let last = 0;
        let off = 0;
        let seg = 7;
        for (const op of ops) {
          if (op.t === 'add') {
            // Now and then an id 2^32 past the last: no longer fits relative to the base (wide mode).
            let id = last + op.gap + (op.far && off % 7 === 0 ? 2 ** 32 : 0);
            if (allowBack && op.back && last > 5) id = last - 5 - op.gap; // out of order: map mode
            if (model.has(id)) continue;
            last = Math.max(last, id);
            if (op.roll) seg++; // the log rolled to a new segment
            model.set(id, [seg, ++off]);
            q.add(id, seg, off, 10);
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
        for (const [id, [sg, o]] of model) {
          const slot = q.slotOf(id);
          assert.is(q.offs[slot], o);
          assert.is(q.segOf(slot), sg, `segment of ${id}`);
          assert.is(q.idAt(slot), id);
        }
        assert.is(q.slotOf(last + 100), -1);
      },
    ),
    { numRuns: 300, includeErrorInReport: true },
  );
});

test.run();
