/**
 * Child process for test/recovery/log-sigkill.test.ts. Appends under
 * fsync=always from several concurrent appenders until killed; after each
 * record is durable (its durable() promise resolved) it reports it on stdout:
 *   "e <messageId> <size>"  enqueue durable   "a <messageId>"  settle durable
 * argv: <dir> <seed> <firstMessageId>
 */
import { SegmentedLog } from '../../src/log/segmented-log.js';
import { bodyFor, rng } from './log-tmp.js';

const [dir, seedArg, firstArg] = process.argv.slice(2);
const random = rng(Number(seedArg));
let nextId = Number(firstArg);
const log = await SegmentedLog.open(dir!, { fsync: 'always', segmentBytes: 256 * 1024 });
process.stdout.write('ready\n');

async function appender(): Promise<never> {
  for (;;) {
    const m = nextId++;
    const size = Math.floor(random() * 3000);
    const seq = log.appendEnqueue(1, m, new Uint8Array(0), bodyFor(1, m, size));
    await log.durable(seq);
    process.stdout.write(`e ${m} ${size}\n`);
    if (m % 5 === 0) {
      await log.durable(log.appendSettle(1, m, 0));
      process.stdout.write(`a ${m}\n`);
    }
  }
}
await Promise.all(Array.from({ length: 8 }, appender));
