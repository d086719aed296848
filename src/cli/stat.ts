/**
 * `ringmq stat [--url URL] [--interval S] [--once]`: a live table of the
 * queues of a running broker, read from its Prometheus endpoint (`ringmq
 * serve --metrics-port N`): depth, unacked, consumers and rates (per second,
 * from the counters' change between two reads). On a TTY the table is
 * redrawn in place; otherwise (or with --once) it is printed as lines.
 */
import { parseExposition } from '../metrics/prometheus.js';

export const DEFAULT_METRICS_URL = 'http://127.0.0.1:15692/metrics';

interface QueueRow {
  ready: number;
  unacked: number;
  consumers: number;
  published: number;
  delivered: number;
  acked: number;
}

export function queueRows(text: string): Map<string, QueueRow> {
  const rows = new Map<string, QueueRow>();
  const row = (q: string): QueueRow => {
    let r = rows.get(q);
    if (r === undefined) rows.set(q, (r = { ready: 0, unacked: 0, consumers: 0, published: 0, delivered: 0, acked: 0 }));
    return r;
  };
  for (const s of parseExposition(text)) {
    const q = s.labels['queue'];
    if (q === undefined) continue;
    switch (s.name) {
      case 'ringmq_queue_messages_ready': row(q).ready = s.value; break;
      case 'ringmq_queue_messages_unacked': row(q).unacked = s.value; break;
      case 'ringmq_queue_consumers': row(q).consumers = s.value; break;
      case 'ringmq_queue_messages_published_total': row(q).published = s.value; break;
      case 'ringmq_queue_messages_delivered_total': row(q).delivered = s.value; break;
      case 'ringmq_queue_messages_acked_total': row(q).acked = s.value; break;
    }
  }
  return rows;
}

export function formatStatTable(now: Map<string, QueueRow>, prev: Map<string, QueueRow> | null, seconds: number): string {
  const head = ['queue', 'ready', 'unacked', 'consumers', 'publish/s', 'deliver/s', 'ack/s'];
  const rate = (q: string, k: 'published' | 'delivered' | 'acked'): string => {
    const p = prev?.get(q);
    if (p === undefined || seconds <= 0) return '-';
    return Math.max(0, (now.get(q)![k] - p[k]) / seconds).toFixed(0);
  };
  const body = [...now.keys()].sort().map((q) => {
    const r = now.get(q)!;
    return [q, String(r.ready), String(r.unacked), String(r.consumers), rate(q, 'published'), rate(q, 'delivered'), rate(q, 'acked')];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n') + (body.length ? '' : '\n(no queues)');
}

export async function runStat(opts: { url: string; intervalS: number; once: boolean; out?: NodeJS.WriteStream }): Promise<number> {
  const out = opts.out ?? process.stdout;
  const tty = out.isTTY === true && !opts.once;
  let prev: Map<string, QueueRow> | null = null;
  let prevAt = 0;
  let stop = false;
  const onSig = (): void => { stop = true; };
  process.once('SIGINT', onSig);
  try {
    for (;;) {
      let text: string;
      try {
        const res = await fetch(opts.url);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        text = await res.text();
      } catch (e) {
        process.stderr.write(`ringmq stat: cannot read ${opts.url}: ${(e as Error).message} (start the broker with --metrics-port)\n`);
        return 1;
      }
      const at = Date.now();
      const rows = queueRows(text);
      const table = formatStatTable(rows, prev, (at - prevAt) / 1000);
      if (tty) out.write(`\x1b[H\x1b[2J${new Date(at).toISOString()}  ${opts.url}\n\n${table}\n`);
      else out.write(`${table}\n\n`);
      if (opts.once || stop) return 0;
      prev = rows;
      prevAt = at;
      await new Promise((r) => setTimeout(r, opts.intervalS * 1000));
      if (stop) return 0;
    }
  } finally {
    process.off('SIGINT', onSig);
  }
}
