/**
 * The benchmark report (`ringmq bench --report DIR`): built from a fixed
 * input (test/fixtures/bench-report-input.jsonl: ring and log rows from a
 * `--quick --json` run, engine and amqp rows written by hand for the test),
 * it must be well-formed XML, have one section per suite with the expected
 * charts, and one bar per figure with the figure's value.
 */
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BenchResult } from '../../../bench/_util.js';
import { buildReport } from '../../../src/report/report.js';
import { barChart, escapeXml } from '../../../src/report/svg.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const input: BenchResult[] = readFileSync(join(root, 'test/fixtures/bench-report-input.jsonl'), 'utf8')
  .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as BenchResult);

interface XmlNode { name: string; attrs: Record<string, string>; children: XmlNode[]; text: string }

/**
 * A strict XML well-formedness parser (enough for XHTML + SVG): one root,
 * every tag closed in order, attributes quoted and unique, only the five
 * predefined entities and numeric references, no stray '<' or '&'.
 */
function parseXml(src: string): XmlNode {
  let i = 0;
  const fail = (what: string): never => { throw new Error(`not well-formed at ${i}: ${what}: ${JSON.stringify(src.slice(Math.max(0, i - 40), i + 40))}`); };
  const checkText = (t: string): string => {
    if (t.includes('<')) fail('"<" in text');
    return t.replace(/&([^;]*);?/g, (m, name: string) => {
      if (!m.endsWith(';')) fail(`bare "&"`);
      if (['amp', 'lt', 'gt', 'quot', 'apos'].includes(name)) return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name]!;
      if (/^#\d+$|^#x[0-9a-fA-F]+$/.test(name)) return ' ';
      return fail(`unknown entity &${name};`);
    });
  };
  const skipMisc = (): void => {
    for (;;) {
      while (/\s/.test(src[i] ?? '')) i++;
      if (src.startsWith('<!DOCTYPE', i) || src.startsWith('<?', i)) i = src.indexOf('>', i) + 1;
      else if (src.startsWith('<!--', i)) i = src.indexOf('-->', i) + 3;
      else return;
    }
  };
  const element = (): XmlNode => {
    if (src[i] !== '<') fail('expected "<"');
    i++;
    const name = /^[A-Za-z_][\w:.-]*/.exec(src.slice(i))?.[0] ?? fail('tag name');
    i += name.length;
    const node: XmlNode = { name, attrs: {}, children: [], text: '' };
    for (;;) {
      while (/\s/.test(src[i]!)) i++;
      if (src.startsWith('/>', i)) { i += 2; return node; }
      if (src[i] === '>') { i++; break; }
      const an = /^[A-Za-z_][\w:.-]*/.exec(src.slice(i))?.[0] ?? fail('attribute name');
      i += an.length;
      if (src[i] !== '=') fail('attribute without "="');
      i++;
      const q = src[i];
      if (q !== '"' && q !== "'") fail('unquoted attribute');
      const end = src.indexOf(q!, i + 1);
      if (end < 0) fail('unterminated attribute');
      if (an in node.attrs) fail(`duplicate attribute ${an}`);
      node.attrs[an] = checkText(src.slice(i + 1, end));
      i = end + 1;
    }
    for (;;) {
      const lt = src.indexOf('<', i);
      if (lt < 0) fail(`unclosed <${name}>`);
      node.text += checkText(src.slice(i, lt));
      i = lt;
      if (src.startsWith('<!--', i)) { i = src.indexOf('-->', i) + 3; continue; }
      if (src.startsWith('</', i)) {
        const close = /^<\/([A-Za-z_][\w:.-]*)\s*>/.exec(src.slice(i)) ?? fail('bad end tag');
        if (close[1] !== name) fail(`</${close[1]}> closes <${name}>`);
        i += close[0].length;
        return node;
      }
      node.children.push(element());
    }
  };
  skipMisc();
  const rootNode = element();
  skipMisc();
  if (i !== src.length) fail('content after the root element');
  return rootNode;
}

function all(n: XmlNode, pred: (x: XmlNode) => boolean, out: XmlNode[] = []): XmlNode[] {
  if (pred(n)) out.push(n);
  for (const c of n.children) all(c, pred, out);
  return out;
}

test('the XML checker itself rejects broken markup', () => {
  for (const bad of ['<a><b></a></b>', '<a x=1></a>', '<a>&nbsp;</a>', '<a>1 < 2</a>', '<a x="1" x="2"/>', '<a/><b/>', '<a>& </a>']) {
    assert.throws(() => parseXml(bad), /not well-formed/, bad);
  }
  parseXml('<!DOCTYPE html>\n<a x="&lt;&amp;"><b/>t&#65;</a>');
});

test('report of a fixed input: well-formed, one section per suite, the expected charts', () => {
  const html = buildReport(input, { node: 'v20', cpu: 'test x 2', date: '2026-11-29', commit: 'abc1234' });
  const doc = parseXml(html);
  assert.is(doc.name, 'html');
  const sections = all(doc, (n) => n.name === 'section');
  assert.equal(sections.map((s) => s.attrs['data-suite']), ['ring', 'log', 'engine', 'amqp']);
  const chartTitles = (s: XmlNode): string[] => all(s, (n) => n.name === 'svg').map((svg) => svg.children.find((c) => c.name === 'title')!.text);
  assert.equal(chartTitles(sections[0]!), ['ring: throughput by payload size']);
  assert.equal(chartTitles(sections[1]!), ['log: append throughput by payload size', 'log: recovery scan']);
  assert.equal(chartTitles(sections[2]!), ['engine: throughput per case by shards', 'engine: request/response latency', 'engine: memory per queued persistent message']);
  assert.equal(chartTitles(sections[3]!), ['amqp: throughput per case by broker', 'amqp: request/response latency']);
  // The machine header is there, with the fsync policy seen in the results.
  const header = all(doc, (n) => n.name === 'tr' && n.children[0]?.name === 'th' && n.children.length === 2).map((r) => `${r.children[0]!.text}=${r.children[1]!.text}`);
  for (const h of ['node=v20', 'cpu=test x 2', 'date=2026-11-29', 'commit=abc1234', 'fsync=always']) assert.ok(header.includes(h), h);
});

test('every figure is one bar with its value; bars per chart match the input rows', () => {
  const doc = parseXml(buildReport(input, { node: 'v20' }));
  const bars = (suite: string, chart: number): XmlNode[] => {
    const sec = all(doc, (n) => n.name === 'section' && n.attrs['data-suite'] === suite)[0]!;
    const svg = all(sec, (n) => n.name === 'svg')[chart]!;
    return all(svg, (n) => n.name === 'rect' && n.attrs['class'] === 'bar');
  };
  const ringRows = input.filter((r) => r.suite === 'ring');
  const ringBars = bars('ring', 0);
  assert.is(ringBars.length, ringRows.length);
  for (const r of ringRows) {
    const b = ringBars.find((x) => x.attrs['data-series'] === r.case && x.attrs['data-group'] === (r.payload! >= 1024 ? `${r.payload! / 1024} KiB` : `${r.payload} B`));
    assert.ok(b, `bar for ${r.case} ${r.payload}`);
    assert.is(Number(b!.attrs['data-value']), r.msgs_per_s);
  }
  // log: every append row, plus the raw-write bound once per payload group.
  const appends = input.filter((r) => r.suite === 'log' && r.case.startsWith('append-'));
  const payloads = new Set(appends.map((r) => r.payload));
  assert.is(bars('log', 0).length, appends.length + payloads.size);
  assert.is(bars('log', 1).length, 1);
  // engine: throughput rows (rpc and memory excluded), rpc p50+p99 per shard count, memory per shard count.
  const eng = input.filter((r) => r.suite === 'engine');
  assert.is(bars('engine', 0).length, eng.filter((r) => r.msgs_per_s !== undefined && r.case !== 'rpc').length);
  assert.is(bars('engine', 1).length, 4);
  assert.equal(bars('engine', 2).map((b) => Number(b.attrs['data-value'])), [46.5, 46.8]);
  // amqp: a group per case, a bar per broker; names with markup characters survive escaped.
  const amqp = bars('amqp', 0);
  assert.equal(amqp.map((b) => `${b.attrs['data-group']}|${b.attrs['data-series']}`), ['transient 64 B|ringmq', 'transient 64 B|rabbitmq', `x<&>"' 64 B|ringmq`]);
  assert.is(bars('amqp', 1).length, 4);
});

test('bar heights follow the values (linear axis) and the axis covers the largest one', () => {
  const svg = barChart({ title: 't', unit: 'u', groups: [{ label: 'g', bars: [{ series: 'a', value: 10 }, { series: 'b', value: 40 }] }] });
  const doc = parseXml(svg);
  const rects = all(doc, (n) => n.name === 'rect' && n.attrs['class'] === 'bar');
  const h = rects.map((r) => Number(r.attrs['height']));
  assert.ok(Math.abs(h[1]! / h[0]! - 4) < 0.05, `heights ${h}`);
  assert.is(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
});

test('ringmq bench --report writes report.html and results.jsonl', () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'ringmq-report-'));
  try {
    const r = spawnSync(process.execPath, [join(root, 'bin/ringmq.js'), 'bench', 'frame', '--quick', '--report', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 0, r.stderr);
    const lines = readFileSync(join(dir, 'results.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as BenchResult);
    assert.ok(lines.length > 0 && lines.every((l) => l.suite === 'frame'));
    const doc = parseXml(readFileSync(join(dir, 'report.html'), 'utf8'));
    const bars = all(doc, (n) => n.name === 'rect' && n.attrs['class'] === 'bar');
    assert.is(bars.length, lines.filter((l) => (l.msgs_per_s ?? l.mb_per_s) !== undefined).length);
    assert.ok(r.stdout.includes('report:'), 'says where the report is');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
