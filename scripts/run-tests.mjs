#!/usr/bin/env node
// Runs every test: type-checks and compiles (tsc), then runs each compiled
// test file (dist/test/**/*.test.js) in its own node process under uvu, so a
// crashed or hung file cannot take the others down. Prints a line per file
// and, as the last line, the totals over all files: "N passed, N failed".
// Exit code 0 only if nothing failed.
//
//   npm test                 every file
//   npm test -- ring log     only files whose path contains "ring" or "log"
//
// RINGMQ_TEST_TIMEOUT_S (default 300) bounds one file; RINGMQ_TEST_JOBS
// (default 1) runs that many files at once.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);
const timeoutMs = Number(process.env.RINGMQ_TEST_TIMEOUT_S ?? 300) * 1000;
const jobs = Math.max(1, Number(process.env.RINGMQ_TEST_JOBS ?? 1));

function finish(passed, failed, skipped) {
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.log('type check / build failed');
  finish(0, 1, 0);
}

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const files = walk(join(root, 'dist/test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--expose-gc', file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const num = (label) => {
        const m = out.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, 'm'));
        return m ? Number(m[1]) : undefined;
      };
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') ?? 0;
      let r;
      if (total === undefined || passed === undefined) {
        r = { passed: 0, failed: 1, skipped: 0, note: timedOut ? `timed out after ${timeoutMs / 1000}s` : `no summary (exit ${code ?? signal})` };
      } else {
        let failed = total - passed;
        let note = '';
        if (failed === 0 && (code !== 0 || timedOut)) {
          failed = 1;
          note = timedOut ? `timed out after the summary (a handle kept it alive)` : `exit ${code ?? signal} after all passed`;
        }
        r = { passed, failed, skipped, note };
      }
      r.ms = Date.now() - started;
      r.out = out;
      resolve(r);
    });
  });
}

let passed = 0, failed = 0, skipped = 0, next = 0;
async function worker() {
  while (next < files.length) {
    const file = files[next++];
    const r = await runFile(file);
    passed += r.passed; failed += r.failed; skipped += r.skipped;
    const status = r.failed ? 'FAIL' : 'ok  ';
    console.log(`${status} ${file}  ${r.passed}/${r.passed + r.failed} ${(r.ms / 1000).toFixed(1)}s${r.note ? '  ' + r.note : ''}`);
    if (r.failed) console.log(r.out.split('\n').map((l) => '     | ' + l).join('\n'));
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
if (files.length === 0) console.log('no test files found');
finish(passed, failed, skipped);
