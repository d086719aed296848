/**
 * cpuYield (src/engine/cpu-yield.ts): the polling loops' sched_yield through
 * Node's WASI. If the hand-assembled module or the WASI set-up broke, cpuYield
 * would quietly do nothing and the loops would hold their cores again: so the
 * first test requires the system call on Linux. Loading it must not print
 * node:wasi's experimental warning, and must not swallow anyone else's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { cpuYield, cpuYieldKind } from '../../../src/engine/cpu-yield.js';

const moduleUrl = new URL('../../../src/engine/cpu-yield.js', import.meta.url).href;

test('on Linux, cpuYield reaches sched_yield (not the do-nothing fallback)', () => {
  if (process.platform !== 'linux') return;
  assert.is(cpuYieldKind, 'sched_yield');
});

test('cpuYield returns, and costs little when nothing waits for the core', () => {
  const n = 20_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) cpuYield();
  const perCallUs = ((performance.now() - t0) * 1000) / n;
  // A system call: well under a µs here; 50 µs would mean it sleeps.
  assert.ok(perCallUs < 50, `${perCallUs.toFixed(2)} µs per call`);
});

test('loading it prints no WASI warning, and other warnings still get through', () => {
  const script = `const m = await import(${JSON.stringify(moduleUrl)}); m.cpuYield(); process.emitWarning('a warning of the application');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, r.stderr);
  assert.not.match(r.stderr, /WASI/);
  assert.match(r.stderr, /a warning of the application/);
});

test.run();
