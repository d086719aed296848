/**
 * The checker's own routing model: which queues a publish must reach given
 * the topology recorded in the history (G8). Written apart from
 * src/engine/router.ts on purpose (a bug shared by both would hide itself),
 * from RabbitMQ's rules: default exchange → the queue named by the key;
 * direct → key equality; fanout → every bound queue; topic → '*' one word,
 * '#' zero or more; headers → x-match all/any over the non-"x-" arguments
 * (string values only, as the workload uses). A queue matched by several
 * bindings gets the message once.
 */
import type { ExchangeType } from './history.js';

interface Binding {
  q: string;
  key: string;
  args: Record<string, string>;
}

export class ModelRouter {
  private readonly exchanges = new Map<string, { type: ExchangeType; bindings: Binding[] }>();
  private readonly queues = new Set<string>();

  declareExchange(x: string, type: ExchangeType): void {
    if (!this.exchanges.has(x)) this.exchanges.set(x, { type, bindings: [] });
  }

  addQueue(q: string): void {
    this.queues.add(q);
  }

  hasQueue(q: string): boolean {
    return this.queues.has(q);
  }

  /** The queue is gone: its bindings too. */
  removeQueue(q: string): void {
    this.queues.delete(q);
    for (const e of this.exchanges.values()) e.bindings = e.bindings.filter((b) => b.q !== q);
  }

  bind(x: string, q: string, key: string, args: Record<string, string> = {}): void {
    const e = this.exchanges.get(x);
    if (e === undefined || !this.queues.has(q)) return;
    if (!e.bindings.some((b) => same(b, q, key, args))) e.bindings.push({ q, key, args });
  }

  unbind(x: string, q: string, key: string, args: Record<string, string> = {}): void {
    const e = this.exchanges.get(x);
    if (e !== undefined) e.bindings = e.bindings.filter((b) => !same(b, q, key, args));
  }

  route(x: string, key: string, headers: Record<string, string> | undefined): string[] {
    if (x === '') return this.queues.has(key) ? [key] : [];
    const e = this.exchanges.get(x);
    if (e === undefined) return [];
    const out = new Set<string>();
    for (const b of e.bindings) {
      let hit = false;
      switch (e.type) {
        case 'direct': hit = b.key === key; break;
        case 'fanout': hit = true; break;
        case 'topic': hit = topicMatches(b.key.split('.'), key.split('.')); break;
        case 'headers': hit = headersMatch(b.args, headers ?? {}); break;
      }
      if (hit) out.add(b.q);
    }
    return [...out].sort();
  }
}

function same(b: Binding, q: string, key: string, args: Record<string, string>): boolean {
  return b.q === q && b.key === key && JSON.stringify(sorted(b.args)) === JSON.stringify(sorted(args));
}

function sorted(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Dynamic programming over (pattern word, key word): reach[i][j] = pattern[0..i) matches key[0..j). */
export function topicMatches(pattern: string[], key: string[]): boolean {
  let reach: boolean[] = new Array<boolean>(key.length + 1).fill(false);
  reach[0] = true;
  for (const p of pattern) {
    const next = new Array<boolean>(key.length + 1).fill(false);
    for (let j = 0; j <= key.length; j++) {
      if (p === '#') {
        // '#' absorbs zero words (reach[j]) or one more word (next[j-1]).
        next[j] = reach[j]! || (j > 0 && next[j - 1]!);
      } else if (j > 0 && reach[j - 1]! && (p === '*' || p === key[j - 1])) {
        next[j] = true;
      }
    }
    reach = next;
  }
  return reach[key.length]!;
}

function headersMatch(args: Record<string, string>, headers: Record<string, string>): boolean {
  const mode = args['x-match'] ?? 'all';
  const keys = Object.keys(args).filter((k) => !k.startsWith('x-'));
  if (mode === 'any') return keys.some((k) => headers[k] === args[k]);
  return keys.every((k) => headers[k] === args[k]);
}
