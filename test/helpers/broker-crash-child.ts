/**
 * Child process for test/recovery/broker-sigkill.test.ts: a Broker publishing
 * persistent messages with confirms to a durable queue from several
 * publishers, and a consumer that acks some deliveries and holds the rest
 * unacked, until it is SIGKILLed. It reports on stdout:
 *   "c <n>"  message n confirmed      "a <n>"  ack of n sent (not necessarily on disk)
 *   "d <n>"  n delivered and held unacked
 * argv: <dir> <seed> <first n> <shards>
 */
import { Broker } from '../../src/broker.js';
import { rng } from './log-tmp.js';

const [dir, seedArg, firstArg, shardsArg] = process.argv.slice(2);
const random = rng(Number(seedArg));
let next = Number(firstArg);
const b = await Broker.open({ dir: dir!, shards: Number(shardsArg), fsync: 'always' });
await b.declareQueue('g1');
await b.declareQueue('g1-other', { deadLetterExchange: '' });
let out = '';
const flush = (): void => { if (out) { process.stdout.write(out); out = ''; } };
setInterval(flush, 2).unref();
await b.consume('g1', (m) => {
  const n = Number(m.text().split(' ')[0]);
  if (n % 3 === 0) { out += `d ${n}\n`; return; } // held unacked until the kill
  m.ack();
  out += `a ${n}\n`;
}, { prefetch: 50 });
process.stdout.write('ready\n');
async function publisher(): Promise<never> {
  for (;;) {
    const n = next++;
    const size = Math.floor(random() * 2000);
    await b.send(n % 7 === 0 ? 'g1-other' : 'g1', `${n} ${'x'.repeat(size)}`);
    out += `c ${n}\n`;
  }
}
await Promise.all(Array.from({ length: 16 }, publisher));
