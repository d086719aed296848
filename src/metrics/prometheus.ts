/**
 * Prometheus text exposition (format 0.0.4) of a Broker's numbers, served by
 * node's `http` on loopback: `ringmq serve --metrics-port N` →
 * `http://127.0.0.1:N/metrics`. Names follow Prometheus conventions: the
 * `ringmq_` prefix, base units (bytes, seconds), `_total` on counters,
 * `# HELP` and `# TYPE` before each family. The catalogue is in
 * docs/metrics.md.
 *
 * Per queue the message counters add up (G6):
 *   published = acked + ready + unacked + dead_lettered{rejected,delivery_limit}
 *             + expired + dropped + purged + deleted
 * (`expired` and `dropped` messages are dead-lettered too when the queue has
 * a dead-letter exchange, with reasons `expired` and `maxlen`.)
 */
import http from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Broker, BrokerStats } from '../broker.js';

/** Extra gauges from the network front (connections, channels, ...). */
export interface FrontStats {
  connections: number;
  channels: number;
  [k: string]: number;
}

type Labels = Record<string, string | number>;

/** Builds one exposition: families in order, each with HELP and TYPE once. */
export class Exposition {
  private readonly lines: string[] = [];
  private readonly seen = new Set<string>();

  private family(name: string, type: 'counter' | 'gauge' | 'histogram' | 'summary', help: string): void {
    if (this.seen.has(name)) return;
    this.seen.add(name);
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    this.lines.push(`# TYPE ${name} ${type}`);
  }

  private sample(name: string, labels: Labels | undefined, value: number): void {
    this.lines.push(`${name}${formatLabels(labels)} ${formatNumber(value)}`);
  }

  counter(name: string, help: string, value: number, labels?: Labels): void {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    this.family(name, 'counter', help);
    this.sample(name, labels, value);
  }

  gauge(name: string, help: string, value: number, labels?: Labels): void {
    this.family(name, 'gauge', help);
    this.sample(name, labels, value);
  }

  /** bounds: bucket upper bounds; counts: per bucket (non-cumulative), one more than bounds (the +Inf bucket). */
  histogram(name: string, help: string, bounds: readonly number[], counts: readonly number[], sum: number, labels?: Labels): void {
    this.family(name, 'histogram', help);
    let acc = 0;
    bounds.forEach((b, i) => {
      acc += counts[i] ?? 0;
      this.sample(`${name}_bucket`, { ...labels, le: formatNumber(b) }, acc);
    });
    acc += counts[bounds.length] ?? 0;
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, acc);
    this.sample(`${name}_sum`, labels, sum);
    this.sample(`${name}_count`, labels, acc);
  }

  summary(name: string, help: string, quantiles: [number, number][], sum: number, count: number, labels?: Labels): void {
    this.family(name, 'summary', help);
    for (const [q, v] of quantiles) this.sample(name, { ...labels, quantile: formatNumber(q) }, v);
    this.sample(`${name}_sum`, labels, sum);
    this.sample(`${name}_count`, labels, count);
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

function formatLabels(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Event-loop delay of the I/O thread, sampled continuously (perf_hooks). */
export class LoopDelay {
  private readonly h: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  constructor() {
    this.h.enable();
  }
  quantiles(): { q: [number, number][]; sum: number; count: number } {
    const s = (ns: number): number => (Number.isFinite(ns) ? ns / 1e9 : 0);
    const count = this.h.count;
    return { q: [[0.5, s(this.h.percentile(50))], [0.9, s(this.h.percentile(90))], [0.99, s(this.h.percentile(99))], [1, s(this.h.max)]], sum: s(this.h.mean) * count, count };
  }
  stop(): void {
    this.h.disable();
  }
}

/** The whole exposition for a broker (and, when served by `ringmq serve`, its AMQP front). */
export function renderMetrics(stats: BrokerStats, opts: { loop?: LoopDelay; front?: FrontStats; startedAt?: number } = {}): string {
  const e = new Exposition();
  const queues = Object.entries(stats.queues).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // One family at a time: the samples of a family must be contiguous.
  for (const [queue, q] of queues) e.gauge('ringmq_queue_messages_ready', 'Messages ready for delivery.', q.ready, { queue });
  for (const [queue, q] of queues) e.gauge('ringmq_queue_messages_unacked', 'Messages delivered and not yet settled.', q.unacked, { queue });
  for (const [queue, q] of queues) e.gauge('ringmq_queue_ready_bytes', 'Body bytes of the ready messages.', q.readyBytes, { queue });
  for (const [queue, q] of queues) e.gauge('ringmq_queue_consumers', 'Consumers of the queue.', q.consumers, { queue });
  const c = (name: string, help: string, pick: (k: BrokerStats['queues'][string]['counters']) => number): void => {
    for (const [queue, q] of queues) e.counter(name, help, pick(q.counters), { queue });
  };
  c('ringmq_queue_messages_published_total', 'Messages routed to the queue (since the broker opened; recovered messages count again).', (k) => k.routed);
  c('ringmq_queue_messages_delivered_total', 'Deliveries (to consumers and gets), redeliveries included.', (k) => k.delivered);
  c('ringmq_queue_messages_redelivered_total', 'Deliveries of messages delivered before.', (k) => k.redelivered);
  c('ringmq_queue_messages_acked_total', 'Messages settled by ack (or delivered with no-ack).', (k) => k.acked);
  for (const [queue, q] of queues) {
    e.counter('ringmq_queue_messages_dead_lettered_total', 'Messages that left the queue by reject/nack without requeue or over the delivery limit, by reason (republished to the dead-letter exchange, if any).', q.counters.rejected, { queue, reason: 'rejected' });
    e.counter('ringmq_queue_messages_dead_lettered_total', 'Messages that left the queue by reject/nack without requeue or over the delivery limit, by reason (republished to the dead-letter exchange, if any).', q.counters.deliveryLimit, { queue, reason: 'delivery_limit' });
  }
  c('ringmq_queue_messages_expired_total', 'Messages that expired (TTL); dead-lettered with reason expired if the queue has a dead-letter exchange.', (k) => k.expired);
  c('ringmq_queue_messages_dropped_total', 'Messages dropped from the head of a full queue (max length, drop-head or reject-publish-dlx); dead-lettered with reason maxlen if the queue has a dead-letter exchange.', (k) => k.maxlen);
  c('ringmq_queue_messages_purged_total', 'Messages removed by purge.', (k) => k.purged);
  c('ringmq_queue_messages_deleted_total', 'Messages removed with their queue.', (k) => k.deleted);
  c('ringmq_queue_publishes_rejected_total', 'Publishes refused by a full queue (overflow reject-publish): nacked confirms.', (k) => k.rejectedPublishes);

  const shards = stats.shards;
  const rings = shards.flatMap((s) => [['to_shard', s.toShard], ['from_shard', s.fromShard]].map(([ring, r]) => ({ l: { shard: s.index, ring: ring as string }, r: r as typeof s.toShard })));
  for (const { l, r } of rings) e.gauge('ringmq_shard_ring_used_bytes', 'Bytes published to the ring and not yet released by its reader.', r.usedBytes, l);
  for (const { l, r } of rings) e.gauge('ringmq_shard_ring_capacity_bytes', 'Capacity of the ring.', r.capacity, l);
  for (const { l, r } of rings) e.counter('ringmq_shard_ring_records_total', 'Records carried by the ring.', r.records, l);
  for (const { l, r } of rings) e.counter('ringmq_shard_ring_batches_total', 'Batches published (one index publication each) on the ring.', r.batches, l);
  for (const { l, r } of rings) e.gauge('ringmq_shard_ring_batch_records_average', 'Records per batch since the broker opened (rate(records)/rate(batches) gives it per interval).', r.batches > 0 ? r.records / r.batches : 0, l);
  const per = (f: (s: (typeof shards)[number], l: { shard: number }) => void): void => { for (const s of shards) f(s, { shard: s.index }); };
  per((s, l) => e.counter('ringmq_shard_ring_spilled_records_total', 'Records the shard held back for ring space (backpressure events).', s.ringSpilled, l));
  per((s, l) => e.counter('ringmq_shard_log_appends_total', 'Records appended to the shard log.', s.log['appends'] ?? 0, l));
  per((s, l) => e.counter('ringmq_shard_log_written_bytes_total', 'Bytes written to the shard log.', s.log['bytesWritten'] ?? 0, l));
  per((s, l) => e.counter('ringmq_shard_log_write_syscalls_total', 'Write system calls of the shard log (records are batched).', s.log['writeSyscalls'] ?? 0, l));
  per((s, l) => e.counter('ringmq_shard_fsyncs_total', 'fdatasync calls of the shard log (group commits).', s.log['syncs'] ?? 0, l));
  per((s, l) => e.histogram('ringmq_shard_fsync_duration_seconds', 'fdatasync latency of the shard log (group commits).', s.fsyncBucketBounds, s.fsyncBuckets, s.fsyncSeconds, l));
  per((s, l) => e.gauge('ringmq_shard_log_bytes', 'Bytes of the shard log segments on disk.', s.diskBytes, l));
  per((s, l) => e.gauge('ringmq_shard_log_segments', 'Segment files of the shard log.', s.segments, l));
  per((s, l) => e.gauge('ringmq_shard_log_durable_sequence', 'Highest log record sequence known to be on disk (fdatasync done); ringmq fuzz tears only past it.', s.log['durableSeq'] ?? 0, l));
  per((s, l) => e.gauge('ringmq_shard_memory_bytes', 'Message bytes the shard holds in memory.', s.memBytes, l));
  per((s, l) => e.gauge('ringmq_shard_recovery_seconds', 'Time the shard log recovery took when the broker opened.', s.recovery.ms / 1000, l));
  per((s, l) => e.gauge('ringmq_shard_recovery_bytes', 'Bytes scanned by the shard log recovery when the broker opened.', s.recovery.bytes, l));
  if (opts.front !== undefined) {
    e.gauge('ringmq_connections', 'Open AMQP connections.', opts.front.connections);
    e.gauge('ringmq_channels', 'Open AMQP channels.', opts.front.channels);
    for (const [k, v] of Object.entries(opts.front)) {
      if (k === 'connections' || k === 'channels') continue;
      if (k.endsWith('_total')) e.counter(`ringmq_${k}`, `AMQP front: ${k.replace(/_/g, ' ')}.`, v);
      else e.gauge(`ringmq_${k}`, `AMQP front: ${k.replace(/_/g, ' ')}.`, v);
    }
  }
  const mem = process.memoryUsage();
  e.gauge('ringmq_process_resident_memory_bytes', 'Resident set size of the broker process (every thread).', mem.rss);
  e.gauge('ringmq_process_heap_used_bytes', 'V8 heap used by the I/O thread.', mem.heapUsed);
  e.gauge('ringmq_process_array_buffers_bytes', 'ArrayBuffer and SharedArrayBuffer bytes (rings included).', mem.arrayBuffers);
  if (opts.startedAt !== undefined) e.gauge('ringmq_process_start_time_seconds', 'Start time of the process, seconds since the epoch.', Math.floor(opts.startedAt / 1000));
  if (opts.loop !== undefined) {
    const d = opts.loop.quantiles();
    e.summary('ringmq_event_loop_delay_seconds', 'Event-loop delay of the I/O thread (quantile 1 is the maximum).', d.q, d.sum, d.count);
  }
  return e.toString();
}

export interface MetricsServer {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** Serves `GET /metrics` (Prometheus text format 0.0.4) on host:port (default loopback). */
export async function startMetricsServer(broker: Broker, opts: { port: number; host?: string; front?: () => FrontStats }): Promise<MetricsServer> {
  const loop = new LoopDelay();
  const startedAt = Date.now();
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('ringmq: metrics are at /metrics\n');
      return;
    }
    broker.stats().then((st) => {
      const body = renderMetrics(st, { loop, startedAt, ...(opts.front ? { front: opts.front() } : {}) });
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    }, (e: unknown) => {
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`ringmq: stats unavailable: ${(e as Error).message}\n`);
    });
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
  return {
    port, host,
    close: () => new Promise<void>((resolve) => {
      loop.stop();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Parses the text exposition into samples (used by `ringmq stat`); throws on a malformed line. */
export function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`malformed exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let at = 0;
      while (at < m[3].length) {
        re.lastIndex = at;
        const l = re.exec(m[3]);
        if (l === null) throw new Error(`malformed labels: ${line}`);
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch));
        at = re.lastIndex;
      }
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(v) && m[4] !== 'NaN') throw new Error(`malformed value: ${line}`);
    out.push({ name: m[1]!, labels, value: v });
  }
  return out;
}
