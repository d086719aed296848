/**
 * native-free.md's check: the engine runs with native addon loading disabled
 * (process.dlopen made to report and throw in every thread), and nothing tries
 * to load one — in particular piscina's optional `@napi-rs/nice`, which is
 * installed here, so its absence from the log is not an accident of installs.
 * Two controls show the hook does see an attempt: a dlopen in a worker and in
 * the main thread, and piscina asked for a nice increment.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NATIVE_LOAD_MARKER } from '../helpers/no-native-hook.js';

const hook = new URL('../helpers/no-native-hook.js', import.meta.url).href;
const child = fileURLToPath(new URL('../helpers/native-free-child.js', import.meta.url));

function run(mode: string) {
  const r = spawnSync(process.execPath, ['--import', hook, child, mode], { encoding: 'utf8', timeout: 60_000 });
  const attempts = (r.stderr.match(new RegExp(`^${NATIVE_LOAD_MARKER} .*$`, 'gm')) ?? []);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, attempts };
}

test('the engine (API, ring across threads, piscina pool, log append + fsync + recovery on piscina) runs with native loading disabled and never attempts it', () => {
  const r = run('engine');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /ENGINE-OK/);
  assert.equal(r.attempts, [], `native load attempts:\n${r.attempts.join('\n')}`);
});

test('piscina optional native dependency @napi-rs/nice is installed, yet not loaded (above)', () => {
  const require = createRequire(import.meta.url);
  assert.ok(require.resolve('@napi-rs/nice'), '@napi-rs/nice resolves in node_modules');
});

test('control: the hook sees a dlopen in a worker thread and in the main thread', () => {
  const r = run('control-dlopen');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.attempts.length, 2, r.stderr);
  assert.ok(r.attempts.some((a) => a.includes('thread=main')));
  assert.ok(r.attempts.some((a) => !a.includes('thread=main')));
});

test('control: piscina with niceIncrement tries to load @napi-rs/nice, and the hook sees it', () => {
  const r = run('control-nice');
  assert.is(r.status, 0, r.stderr);
  assert.ok(r.attempts.length >= 1, r.stderr);
  assert.ok(r.attempts.every((a) => a.includes('nice')), r.attempts.join('\n'));
});

test.run();
