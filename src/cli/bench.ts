import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import type { BenchOptions, BenchResult, Suite } from '../../bench/_util.js';
import { formatTable, machineHeader } from '../../bench/_util.js';
import { buildReport } from '../report/report.js';

/** Suites are the files bench/<name>.bench.ts (compiled next to this tree in dist/bench). */
const benchDir = new URL('../../bench/', import.meta.url);

export async function listSuites(): Promise<string[]> {
  const names = await readdir(benchDir);
  return names.filter((n) => n.endsWith('.bench.js')).map((n) => n.slice(0, -'.bench.js'.length)).sort();
}

async function loadSuite(name: string): Promise<Suite> {
  const mod = (await import(new URL(`${name}.bench.js`, benchDir).href)) as { suite: Suite };
  return mod.suite;
}

export interface BenchFlags {
  json: boolean;
  quick: boolean;
  list: boolean;
  compare?: 'rabbitmq' | undefined;
  url?: string | undefined;
  shards?: number | undefined;
  report?: string | undefined;
}

export async function runBench(names: string[], flags: BenchFlags): Promise<number> {
  const known = await listSuites();
  if (flags.list) {
    for (const n of known) process.stdout.write(`${n.padEnd(10)} ${(await loadSuite(n)).description}\n`);
    return 0;
  }
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    process.stderr.write(`ringmq bench: unknown suite ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${known.join(', ')}\n`);
    return 2;
  }
  // Progress: one updating line on a TTY; nothing when stderr is not a TTY or with --json.
  const tty = !flags.json && process.stderr.isTTY === true;
  let progressShown = false;
  const clearProgress = (): void => {
    if (progressShown) process.stderr.write('\r\x1b[K');
    progressShown = false;
  };
  const opts: BenchOptions = {
    json: flags.json,
    quick: flags.quick,
    note: tty ? (line) => { process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 80) - 1)}`); progressShown = true; } : () => {},
  };
  if (flags.compare) opts.compare = flags.compare;
  if (flags.url) opts.url = flags.url;
  if (flags.shards) opts.shards = flags.shards;
  const header = machineHeader();
  if (!flags.json) {
    process.stdout.write(Object.entries(header).map(([k, v]) => `${k}: ${v}`).join('\n') + '\n');
  }
  const all: BenchResult[] = [];
  let failed = 0;
  for (const name of names.length ? names : known) {
    const suite = await loadSuite(name);
    const why = names.length ? undefined : await suite.unavailable?.();
    if (why) {
      if (!flags.json) process.stdout.write(`\n## ${suite.name}: skipped: ${why}\n`);
      else process.stderr.write(`ringmq bench ${name}: skipped: ${why}\n`);
      continue;
    }
    if (!flags.json) {
      process.stdout.write(`\n## ${suite.name}: ${suite.description}\n`);
      if (os.availableParallelism() < suite.threads) {
        process.stdout.write(`warning: ${suite.threads} threads on ${os.availableParallelism()} cores; figures include contention\n`);
      }
    }
    let results: BenchResult[];
    try {
      results = await suite.run(opts);
    } catch (err) {
      clearProgress();
      failed++;
      // A setup error (missing dependency, broker that does not start) is
      // said in its message; anything else gets its stack.
      const setup = (err as { code?: string }).code === 'ERR_BENCH_SETUP';
      process.stderr.write(`ringmq bench ${name}: ${setup ? (err as Error).message : ((err as Error).stack ?? err)}\n`);
      continue;
    }
    clearProgress();
    all.push(...results);
    if (flags.json) for (const r of results) process.stdout.write(JSON.stringify(r) + '\n');
    else process.stdout.write(formatTable(results) + '\n');
  }
  if (flags.report !== undefined) {
    await mkdir(flags.report, { recursive: true });
    await writeFile(join(flags.report, 'results.jsonl'), all.map((r) => JSON.stringify(r)).join('\n') + (all.length ? '\n' : ''));
    await writeFile(join(flags.report, 'report.html'), buildReport(all, header));
    if (!flags.json) process.stdout.write(`\nreport: ${join(flags.report, 'report.html')} (results: ${join(flags.report, 'results.jsonl')})\n`);
  }
  return failed ? 1 : 0;
}
