/**
 * The Prometheus endpoint: the exposition is checked line by line against
 * the text format (a strict checker written here), the counters move as a
 * scripted workload says they must, and G6 holds on the exported numbers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMetricsServer, parseExposition, renderMetrics } from '../../../src/metrics/prometheus.js';
import { formatStatTable, queueRows } from '../../../src/cli/stat.js';
import { openBroker, removeDir, sleep, tempDir } from '../../helpers/broker-util.js';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Strict check of the text exposition format 0.0.4: every family has one
 * HELP and one TYPE before its samples, samples of a family are contiguous,
 * names and labels are valid, values parse, no sample repeats, counters end
 * in _total, histograms have cumulative buckets ending in +Inf = _count.
 */
function checkExposition(text: string): void {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current = '';
  const buckets = new Map<string, { le: number; v: number }[]>();
  const counts = new Map<string, number>();
  const familyOf = (name: string): string => {
    for (const suf of ['_bucket', '_sum', '_count']) {
      const base = name.endsWith(suf) ? name.slice(0, -suf.length) : null;
      if (base !== null && (types.get(base) === 'histogram' || types.get(base) === 'summary')) return base;
    }
    return name;
  };
  for (const line of text.slice(0, -1).split('\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      assert.ok(NAME.test(m[1]!), `HELP name ${m[1]}`);
      assert.not.ok(helps.has(m[1]!), `one HELP for ${m[1]}`);
      assert.not.ok(closed.has(m[1]!) || types.has(m[1]!), `HELP before TYPE and samples of ${m[1]}`);
      helps.add(m[1]!);
      continue;
    }
    if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(helps.has(m[1]!), `HELP before TYPE for ${m[1]}`);
      assert.not.ok(types.has(m[1]!), `one TYPE for ${m[1]}`);
      types.set(m[1]!, m[2]!);
      if (m[2] === 'counter') assert.ok(m[1]!.endsWith('_total'), `counter ${m[1]} ends in _total`);
      else assert.not.ok(m[1]!.endsWith('_total'), `${m[2]} ${m[1]} does not end in _total`);
      if (current !== '') closed.add(current);
      current = m[1]!;
      continue;
    }
    assert.not.ok(line.startsWith('#'), `unknown comment line: ${line}`);
    m = /^([^{ ]+)(\{[^}]*\})? (\S+)$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    const name = m![1]!;
    assert.ok(NAME.test(name), `metric name ${name}`);
    const fam = familyOf(name);
    assert.is(fam, current, `sample ${name} belongs to the family just declared (${current})`);
    const labels: Record<string, string> = {};
    if (m![2]) {
      const body = m![2].slice(1, -1);
      const re = /([^=,]+)="((?:[^"\\]|\\["\\n])*)"(?:,|$)/y;
      let at = 0;
      while (at < body.length) {
        re.lastIndex = at;
        const l = re.exec(body);
        assert.ok(l, `labels of ${line}`);
        assert.ok(LABEL.test(l![1]!), `label name ${l![1]}`);
        assert.not.ok(l![1]! in labels, `label ${l![1]} once`);
        labels[l![1]!] = l![2]!;
        at = re.lastIndex;
      }
    }
    const v = m![3]!;
    assert.ok(/^(NaN|[+-]Inf|-?\d+(\.\d+)?(e[+-]?\d+)?)$/.test(v), `value ${v} of ${line}`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.not.ok(seen.has(key), `sample once: ${line}`);
    seen.add(key);
    if (types.get(fam) === 'histogram') {
      const { le, ...rest } = labels;
      const series = `${fam}${JSON.stringify(Object.entries(rest).sort())}`;
      if (name.endsWith('_bucket')) {
        assert.ok(le !== undefined, 'bucket has le');
        const list = buckets.get(series) ?? [];
        list.push({ le: le === '+Inf' ? Infinity : Number(le), v: Number(v) });
        buckets.set(series, list);
      } else if (name.endsWith('_count')) counts.set(series, Number(v));
    }
  }
  for (const [series, list] of buckets) {
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i]!.le > list[i - 1]!.le, `${series}: le increasing`);
      assert.ok(list[i]!.v >= list[i - 1]!.v, `${series}: buckets cumulative`);
    }
    assert.is(list.at(-1)!.le, Infinity, `${series}: last bucket +Inf`);
    assert.is(list.at(-1)!.v, counts.get(series), `${series}: +Inf bucket = _count`);
  }
}

const value = (text: string, name: string, labels: Record<string, string> = {}): number => {
  const s = parseExposition(text).filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.is(s.length, 1, `one sample ${name} ${JSON.stringify(labels)}`);
  return s[0]!.value;
};

function g6(text: string, queue: string): void {
  const q = { queue };
  const published = value(text, 'ringmq_queue_messages_published_total', q);
  const sum = value(text, 'ringmq_queue_messages_acked_total', q) + value(text, 'ringmq_queue_messages_ready', q) + value(text, 'ringmq_queue_messages_unacked', q)
    + value(text, 'ringmq_queue_messages_dead_lettered_total', { queue, reason: 'rejected' }) + value(text, 'ringmq_queue_messages_dead_lettered_total', { queue, reason: 'delivery_limit' })
    + value(text, 'ringmq_queue_messages_expired_total', q) + value(text, 'ringmq_queue_messages_dropped_total', q)
    + value(text, 'ringmq_queue_messages_purged_total', q) + value(text, 'ringmq_queue_messages_deleted_total', q);
  assert.is(sum, published, `G6 on the exported numbers of ${queue}`);
}

test('the checker rejects malformed expositions', () => {
  const bad = [
    'x_total 1\n', // no HELP/TYPE
    '# HELP a_total h\n# TYPE a_total counter\na_total one\n',
    '# HELP a h\n# TYPE a counter\na 1\n', // counter without _total
    '# HELP a h\n# TYPE a gauge\na{b="1",b="2"} 1\n',
    '# HELP a h\n# TYPE a gauge\na 1\na 2\n',
    '# HELP h h\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# HELP a h\n# TYPE a gauge\n# HELP b h\n# TYPE b gauge\nb 1\na 1\n',
  ];
  for (const b of bad) {
    let rejected = false;
    try {
      checkExposition(b);
    } catch {
      rejected = true; // (uvu's assert.throws re-throws assertion errors, so catch here)
    }
    assert.ok(rejected, `rejected: ${JSON.stringify(b)}`);
  }
  checkExposition('# HELP a_total h\n# TYPE a_total counter\na_total{x="1"} 1\na_total{x="2"} 2e+3\n');
});

test('a scripted workload moves the counters as it must; G6 holds on the exported numbers', async () => {
  const dir = tempDir();
  const b = await openBroker({ dir });
  const server = await startMetricsServer(b, { port: 0, front: () => ({ connections: 3, channels: 5 }) });
  try {
    assert.is(server.host, '127.0.0.1');
    const url = `http://127.0.0.1:${server.port}/metrics`;
    await b.declareExchange('dlx', 'fanout');
    await b.declareQueue('dlq');
    await b.bindQueue('dlq', 'dlx');
    await b.declareQueue('work', { maxLength: 8, deadLetterExchange: 'dlx' });
    const ps = [];
    for (let i = 0; i < 10; i++) ps.push(b.send('work', `m${i}`));
    await Promise.all(ps); // 2 dropped from the head (maxlen)
    for (let i = 0; i < 2; i++) (await b.get('work'))!.ack();
    (await b.get('work'))!.reject(false); // dead-lettered: rejected
    const held = await b.get('work'); // unacked
    await b.send('work', 'short', { expiration: 1 });
    await sleep(30);
    await b.quiesce(); // 'short' expired
    await b.sync();
    const res = await fetch(url);
    assert.is(res.status, 200);
    assert.ok(res.headers.get('content-type')!.startsWith('text/plain; version=0.0.4'));
    const t1 = await res.text();
    checkExposition(t1);
    const q = { queue: 'work' };
    assert.is(value(t1, 'ringmq_queue_messages_published_total', q), 11);
    assert.is(value(t1, 'ringmq_queue_messages_dropped_total', q), 2);
    assert.is(value(t1, 'ringmq_queue_messages_acked_total', q), 2);
    assert.is(value(t1, 'ringmq_queue_messages_delivered_total', q), 4);
    assert.is(value(t1, 'ringmq_queue_messages_dead_lettered_total', { queue: 'work', reason: 'rejected' }), 1);
    assert.is(value(t1, 'ringmq_queue_messages_expired_total', q), 1);
    assert.is(value(t1, 'ringmq_queue_messages_unacked', q), 1);
    assert.is(value(t1, 'ringmq_queue_messages_ready', q), 4);
    // The dead letters arrived: maxlen 2 + rejected 1 + expired 1.
    assert.is(value(t1, 'ringmq_queue_messages_ready', { queue: 'dlq' }), 4);
    g6(t1, 'work');
    g6(t1, 'dlq');
    assert.is(value(t1, 'ringmq_connections'), 3);
    assert.is(value(t1, 'ringmq_channels'), 5);
    // Shard families exist for every shard; the persistent publishes were fsynced.
    const shards = b.shardCount;
    for (let s = 0; s < shards; s++) {
      assert.ok(value(t1, 'ringmq_shard_ring_capacity_bytes', { shard: String(s), ring: 'to_shard' }) > 0);
      assert.ok(value(t1, 'ringmq_shard_log_segments', { shard: String(s) }) >= 1);
    }
    const fsyncs = parseExposition(t1).filter((x) => x.name === 'ringmq_shard_fsyncs_total').reduce((a, x) => a + x.value, 0);
    const hist = parseExposition(t1).filter((x) => x.name === 'ringmq_shard_fsync_duration_seconds_count').reduce((a, x) => a + x.value, 0);
    assert.ok(fsyncs > 0, 'fsyncs counted');
    assert.ok(hist > 0 && hist <= fsyncs, 'fsync latencies observed');
    assert.ok(value(t1, 'ringmq_process_resident_memory_bytes') > 0);
    assert.ok(value(t1, 'ringmq_event_loop_delay_seconds_count') >= 0);

    // More work: the counters move by exactly that much.
    held!.ack();
    await b.purgeQueue('work');
    for (let i = 0; i < 5; i++) await b.send('work', `n${i}`);
    await b.quiesce();
    const t2 = await (await fetch(url)).text();
    checkExposition(t2);
    assert.is(value(t2, 'ringmq_queue_messages_published_total', q), 16);
    assert.is(value(t2, 'ringmq_queue_messages_acked_total', q), 3);
    assert.is(value(t2, 'ringmq_queue_messages_purged_total', q), 4);
    assert.is(value(t2, 'ringmq_queue_messages_ready', q), 5);
    g6(t2, 'work');
    const ringRecords = (t: string): number => parseExposition(t).filter((x) => x.name === 'ringmq_shard_ring_records_total').reduce((a, x) => a + x.value, 0);
    assert.ok(ringRecords(t2) > ringRecords(t1), 'ring records move');

    // ringmq stat's table from the same text.
    const table = formatStatTable(queueRows(t2), queueRows(t1), 1);
    assert.match(table, /^queue\s+ready\s+unacked\s+consumers\s+publish\/s/);
    assert.match(table, /\nwork\s+5\s+0\s+0\s+5\s/);
    assert.is((await fetch(`http://127.0.0.1:${server.port}/other`)).status, 404);
  } finally {
    await server.close();
    await b.close();
    removeDir(dir);
  }
});

test('label values with quotes, backslashes and newlines are escaped', () => {
  const text = renderMetrics({
    queues: { 'a"b\\c\nd': { ready: 1, unacked: 0, consumers: 0, readyBytes: 1, counters: { routed: 1, delivered: 0, redelivered: 0, acked: 0, rejected: 0, deliveryLimit: 0, expired: 0, maxlen: 0, purged: 0, deleted: 0, returned: 0, rejectedPublishes: 0 }, rates: { published: 0, delivered: 0, acked: 0 } } },
    shards: [],
  });
  checkExposition(text);
  assert.is(parseExposition(text).find((s) => s.name === 'ringmq_queue_messages_ready')!.labels['queue'], 'a"b\\c\nd');
});

test.run();
