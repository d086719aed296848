/**
 * `ringmq bench ... --report DIR`: an HTML page with one or more inline SVG
 * charts per suite, drawn from the same result rows `--json` prints (so a
 * report can also be rebuilt from saved JSON lines: `buildReport`).
 *
 * Charts (what each shows is also written under its title):
 * - ring: msgs/s by payload size for the ring, postMessage per message,
 *   postMessage batched by 256 and the memory-copy bound (log scale).
 * - log: MB/s by payload size for each fsync policy and group size, with
 *   the raw-write bound of the disk as its own series (log scale).
 * - engine: msgs/s per case by shard count (and the single-thread bound);
 *   RPC latency percentiles; memory per queued message.
 * - amqp: msgs/s per case for each broker (ringmq, rabbitmq, external);
 *   RPC latency percentiles per broker.
 * - any other suite: msgs/s (or MB/s) per case.
 */
import type { BenchResult } from '../../bench/_util.js';
import { barChart, escapeXml, type BarChart, type BarGroup } from './svg.js';

const fmtBytes = (n: number): string => (n >= 1 << 20 ? `${n / (1 << 20)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);

function grouped(rows: BenchResult[], groupOf: (r: BenchResult) => string | null, seriesOf: (r: BenchResult) => string, valueOf: (r: BenchResult) => number | undefined): BarGroup[] {
  const groups = new Map<string, BarGroup>();
  for (const r of rows) {
    const g = groupOf(r);
    const v = valueOf(r);
    if (g === null || v === undefined || !Number.isFinite(v)) continue;
    let grp = groups.get(g);
    if (grp === undefined) groups.set(g, (grp = { label: g, bars: [] }));
    grp.bars.push({ series: seriesOf(r), value: v });
  }
  return [...groups.values()];
}

const bySize = (a: BenchResult, b: BenchResult): number => (a.payload ?? 0) - (b.payload ?? 0);

/** The charts for one suite's rows (empty charts are left out). */
export function chartsFor(suite: string, rows: BenchResult[]): BarChart[] {
  const charts: BarChart[] = [];
  const push = (c: BarChart): void => { if (c.groups.length > 0) charts.push(c); };
  switch (suite) {
    case 'ring':
      push({
        title: 'ring: throughput by payload size', unit: 'msgs/s', log: true,
        caption: 'SharedArrayBuffer ring vs postMessage (per message and batched by 256) vs the memory-copy bound',
        groups: grouped([...rows].sort(bySize), (r) => (r.payload === undefined ? null : fmtBytes(r.payload)), (r) => r.case, (r) => r.msgs_per_s),
      });
      break;
    case 'log': {
      const raw = rows.find((r) => r.case === 'raw-write')?.mb_per_s;
      const appends = rows.filter((r) => r.case.startsWith('append-') && r.payload !== undefined).sort(bySize);
      const groups = grouped(appends, (r) => fmtBytes(r.payload!), (r) => r.case, (r) => r.mb_per_s);
      if (raw !== undefined) for (const g of groups) g.bars.push({ series: 'raw-write (disk bound)', value: raw });
      push({ title: 'log: append throughput by payload size', unit: 'MB/s', log: true, caption: 'fsync policies never / interval / always (c = concurrent appenders per group) against raw sequential writes', groups });
      const rec = rows.filter((r) => r.case === 'recovery');
      push({ title: 'log: recovery scan', unit: 'MB/s', caption: 'recovery (scan and verify) of the whole log at open', groups: grouped(rec, (r) => `${r.log_mib ?? '?'} MiB`, () => 'recovery', (r) => r.mb_per_s) });
      break;
    }
    case 'engine': {
      const tput = rows.filter((r) => r.msgs_per_s !== undefined && r.case !== 'rpc');
      push({
        title: 'engine: throughput per case by shards', unit: 'msgs/s', log: true,
        caption: 'embedded Broker end to end with 1 and 2 shard workers; single-thread-bound is an in-memory queue with no threads',
        groups: grouped(tput, (r) => r.case, (r) => (r.case === 'single-thread-bound' ? 'no threads' : `${r.shards} shard${r.shards === 1 ? '' : 's'}`), (r) => r.msgs_per_s),
      });
      push(latencyChart('engine: request/response latency', rows.filter((r) => r.case === 'rpc'), (r) => `${r.shards} shard${r.shards === 1 ? '' : 's'}`));
      push({
        title: 'engine: memory per queued persistent message', unit: 'bytes/msg', caption: 'heap and array-buffer growth of the shards over 1M messages at rest, divided (bodies on disk)',
        groups: grouped(rows.filter((r) => r.case === 'memory-at-rest'), (r) => `${r.shards} shard${r.shards === 1 ? '' : 's'}`, () => 'bytes/msg', (r) => r.bytes_per_msg),
      });
      break;
    }
    case 'amqp': {
      const brokerOf = (r: BenchResult): string => String(r['broker'] ?? 'ringmq');
      push({
        title: 'amqp: throughput per case by broker', unit: 'msgs/s',
        caption: 'amqplib clients in child processes over loopback; the same cases against each broker in the same run',
        groups: grouped(rows.filter((r) => r.case !== 'rpc'), (r) => `${r.case} ${r.payload !== undefined ? fmtBytes(r.payload) : ''}`.trim(), brokerOf, (r) => r.msgs_per_s),
      });
      push(latencyChart('amqp: request/response latency', rows.filter((r) => r.case === 'rpc'), brokerOf));
      break;
    }
    default:
      push({
        title: `${suite}: throughput per case`, unit: rows.some((r) => r.msgs_per_s !== undefined) ? 'msgs/s' : 'MB/s',
        groups: grouped(rows, (r) => `${r.case}${r.payload !== undefined ? ` ${fmtBytes(r.payload)}` : ''}`, () => suite, (r) => r.msgs_per_s ?? r.mb_per_s),
      });
  }
  return charts;
}

/** Latency percentiles (every `pNN_us` field a row has), one group per row. */
function latencyChart(title: string, rows: BenchResult[], label: (r: BenchResult) => string): BarChart {
  const groups: BarGroup[] = [];
  for (const r of rows) {
    const bars = Object.keys(r)
      .filter((k) => /^p\d+(\.\d+)?_us$|^max_us$/.test(k) && typeof r[k] === 'number')
      .sort((a, b) => pctOf(a) - pctOf(b))
      .map((k) => ({ series: k.replace('_us', ''), value: r[k] as number }));
    if (bars.length) groups.push({ label: label(r), bars });
  }
  return { title, unit: 'µs', caption: 'round-trip time percentiles (request published to reply received)', groups };
}

const pctOf = (k: string): number => (k === 'max_us' ? 101 : Number(k.slice(1, -3)));

export function buildReport(results: BenchResult[], header: Record<string, string>): string {
  const suites = [...new Set(results.map((r) => r.suite))];
  const fsyncs = [...new Set(results.map((r) => r['fsync']).filter((v): v is string => typeof v === 'string'))];
  const head = { ...header, fsync: header['fsync'] ?? (fsyncs.length ? fsyncs.join(', ') : 'per case (see tables)') };
  const out: string[] = [];
  out.push('<!DOCTYPE html>');
  out.push('<html xmlns="http://www.w3.org/1999/xhtml" lang="en">');
  out.push('<head><meta charset="utf-8"/><title>ringmq benchmark report</title>');
  out.push('<style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:12px;text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}section{margin-bottom:32px}.machine td{text-align:left}</style>');
  out.push('</head><body>');
  out.push('<h1>ringmq benchmark report</h1>');
  out.push('<table class="machine">');
  for (const [k, v] of Object.entries(head)) out.push(`<tr><th>${escapeXml(k)}</th><td>${escapeXml(v)}</td></tr>`);
  out.push('</table>');
  for (const s of suites) {
    const rows = results.filter((r) => r.suite === s);
    out.push(`<section class="suite" data-suite="${escapeXml(s)}">`);
    out.push(`<h2>${escapeXml(s)}</h2>`);
    for (const c of chartsFor(s, rows)) out.push(`<figure>${barChart(c)}</figure>`);
    out.push(resultTable(rows));
    out.push('</section>');
  }
  out.push('</body></html>');
  return out.join('\n') + '\n';
}

function resultTable(rows: BenchResult[]): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((k) => k !== 'suite');
  const cell = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : v === undefined ? '' : String(v));
  const out = ['<table class="results"><tr>' + keys.map((k) => `<th>${escapeXml(k)}</th>`).join('') + '</tr>'];
  for (const r of rows) out.push('<tr>' + keys.map((k) => `<td>${escapeXml(cell(r[k]))}</td>`).join('') + '</tr>');
  out.push('</table>');
  return out.join('\n');
}
