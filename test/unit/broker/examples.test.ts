/**
 * The README's examples (examples/*.mjs) run as a user would run them —
 * `import { Broker } from 'ringmq'` resolved through the package's own
 * exports — and print what the README says they print.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../../../', import.meta.url));

const expected: Record<string, RegExp[]> = {
  'fire-and-forget.mjs': [/fire-and-forget: 1000 events received/],
  'work-queue.mjs': [/work queue: 20 tasks done \((\d+) by a, (\d+) by b\)/],
  'request-response.mjs': [/request-response: 9 16 25/, /unanswered request -> ERR_TIMEOUT/],
  'publish-subscribe.mjs': [/eu got 2 \(order\.eu\.created, order\.eu\.shipped\), all got 3/],
  'dead-letter.mjs': [/"bad payload" from payments, reason rejected/, /"flaky" from payments, reason delivery_limit/, /"too late" from payments, reason expired/],
};

for (const [file, patterns] of Object.entries(expected)) {
  test(`examples/${file} runs and prints its result`, async () => {
    const { stdout } = await run(process.execPath, [`examples/${file}`], { cwd: root, timeout: 30_000 });
    for (const p of patterns) assert.match(stdout, p, `${file} output:\n${stdout}`);
  });
}

test.run();
