/**
 * Exchanges and bindings, resolved on the I/O thread (design.md): given an
 * exchange, a routing key and headers, which queues get a message. Pure, no
 * I/O. RabbitMQ's rules:
 *  - the default exchange "" routes to the queue named by the routing key;
 *  - direct: key equality; fanout: every bound queue;
 *  - topic: words split on '.', '*' = exactly one word, '#' = zero or more;
 *  - headers: x-match all (default) / any / all-with-x / any-with-x; keys
 *    starting "x-" are ignored by all/any; a binding value of undefined/null
 *    (AMQP void) matches any value of a present header;
 *  - no match: the exchange's alternate exchange, recursively, each once;
 *  - a queue matched through several bindings gets the message once.
 *
 * Hot path: route() clears and fills a caller-owned array. Direct, fanout and
 * default routes allocate nothing (bindings are kept per key as arrays).
 * Topic routes split the key (allocates) unless it is in the exchange's
 * small cache of recent keys, cleared on every bind/unbind.
 */
export type ExchangeType = 'direct' | 'fanout' | 'topic' | 'headers';

export interface ExchangeDef {
  name: string;
  type: ExchangeType;
  durable: boolean;
  autoDelete: boolean;
  internal: boolean;
  alternateExchange?: string;
  arguments: Record<string, unknown>;
}

export interface BindingDef {
  exchange: string;
  queue: string;
  routingKey: string;
  arguments: Record<string, unknown>;
}

export type RouterErrorCode = 'ERR_NOT_FOUND' | 'ERR_PRECONDITION' | 'ERR_ACCESS_REFUSED' | 'ERR_INVALID_ARGUMENT';

export class RouterError extends Error {
  constructor(readonly code: RouterErrorCode, message: string) {
    super(message);
    this.name = 'RouterError';
  }
}

interface Binding extends BindingDef {
  /** Canonical identity: queue \0 key \0 JSON(args). */
  id: string;
  words: string[];
  xMatch: 'all' | 'any' | 'all-with-x' | 'any-with-x';
}

const TOPIC_CACHE_MAX = 1024;

class Exchange {
  readonly bindings = new Map<string, Binding>();
  /** direct: routing key -> queue names (deduplicated). */
  readonly byKey = new Map<string, string[]>();
  /** fanout: the bound queue names (deduplicated). */
  fanoutQueues: string[] = [];
  readonly topicCache = new Map<string, string[]>();
  constructor(readonly def: ExchangeDef) {}

  rebuild(): void {
    this.byKey.clear();
    this.topicCache.clear();
    const fan = new Set<string>();
    for (const b of this.bindings.values()) {
      fan.add(b.queue);
      const l = this.byKey.get(b.routingKey);
      if (l === undefined) this.byKey.set(b.routingKey, [b.queue]);
      else if (!l.includes(b.queue)) l.push(b.queue);
    }
    this.fanoutQueues = [...fan];
  }
}

const BUILTIN: ExchangeDef[] = [
  { name: '', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.direct', type: 'direct', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.fanout', type: 'fanout', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.topic', type: 'topic', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.headers', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: {} },
  { name: 'amq.match', type: 'headers', durable: true, autoDelete: false, internal: false, arguments: {} },
];

function sameDef(a: ExchangeDef, b: ExchangeDef): boolean {
  return a.type === b.type && a.durable === b.durable && a.autoDelete === b.autoDelete && a.internal === b.internal
    && (a.alternateExchange ?? '') === (b.alternateExchange ?? '') && canonical(a.arguments) === canonical(b.arguments);
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'bigint') return `${x}n`;
    if (x instanceof Uint8Array) return `bytes:${Buffer.from(x).toString('base64')}`;
    return withSortedKeys(x);
  });
}

/** A JSON.stringify replacer step: a plain object with its keys sorted, anything else as it is. */
export function withSortedKeys(x: unknown): unknown {
  if (x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Uint8Array)) {
    const o = x as Record<string, unknown>;
    return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  }
  return x;
}

/** Topic match over word arrays: '*' one word, '#' zero or more. */
export function topicMatch(pattern: string[], key: string[], pi = 0, ki = 0): boolean {
  for (;;) {
    if (pi === pattern.length) return ki === key.length;
    const p = pattern[pi]!;
    if (p === '#') {
      // Collapse runs of '#'.
      while (pi + 1 < pattern.length && pattern[pi + 1] === '#') pi++;
      if (pi + 1 === pattern.length) return true;
      for (let k = ki; k <= key.length; k++) if (topicMatch(pattern, key, pi + 1, k)) return true;
      return false;
    }
    if (ki === key.length) return false;
    if (p !== '*' && p !== key[ki]) return false;
    pi++;
    ki++;
  }
}

function headerValueEquals(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    try { return BigInt(a as number) === BigInt(b as number); } catch { return false; }
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && 'value' in (a as object) && 'value' in (b as object)) {
    return headerValueEquals((a as { value: unknown }).value, (b as { value: unknown }).value);
  }
  if (a !== null && typeof a === 'object' && 'value' in (a as object)) return headerValueEquals((a as { value: unknown }).value, b);
  if (b !== null && typeof b === 'object' && 'value' in (b as object)) return headerValueEquals(a, (b as { value: unknown }).value);
  return false;
}

function headersMatch(b: Binding, headers: Record<string, unknown> | undefined): boolean {
  const h = headers ?? {};
  const withX = b.xMatch === 'all-with-x' || b.xMatch === 'any-with-x';
  const all = b.xMatch === 'all' || b.xMatch === 'all-with-x';
  let considered = 0;
  for (const [k, v] of Object.entries(b.arguments)) {
    if (k === 'x-match') continue;
    if (!withX && k.startsWith('x-')) continue;
    considered++;
    const present = Object.prototype.hasOwnProperty.call(h, k);
    const ok = present && (v === undefined || v === null || headerValueEquals(v, h[k]));
    if (all && !ok) return false;
    if (!all && ok) return true;
  }
  return all ? true : considered === 0 ? false : false;
}

export class Router {
  private readonly exchangesByName = new Map<string, Exchange>();
  private readonly knownQueues = new Set<string>();
  private readonly seen = new Set<string>();
  private readonly aeVisited = new Set<string>();
  /** Exchanges removed by auto-delete since the last call of collectAutoDeleted(). */
  private autoDeleted: string[] = [];

  constructor() {
    for (const d of BUILTIN) this.exchangesByName.set(d.name, new Exchange({ ...d }));
  }

  addQueue(name: string): void {
    this.knownQueues.add(name);
  }

  hasQueue(name: string): boolean {
    return this.knownQueues.has(name);
  }

  removeQueue(name: string): BindingDef[] {
    this.knownQueues.delete(name);
    const removed: BindingDef[] = [];
    for (const ex of [...this.exchangesByName.values()]) {
      let changed = false;
      for (const [id, b] of ex.bindings) {
        if (b.queue === name) {
          ex.bindings.delete(id);
          removed.push(strip(b));
          changed = true;
        }
      }
      if (changed) {
        ex.rebuild();
        this.maybeAutoDelete(ex);
      }
    }
    return removed;
  }

  declareExchange(def: ExchangeDef): boolean {
    if (!['direct', 'fanout', 'topic', 'headers'].includes(def.type)) throw new RouterError('ERR_INVALID_ARGUMENT', `unknown exchange type '${String(def.type)}'`);
    const existing = this.exchangesByName.get(def.name);
    if (existing !== undefined) {
      if (!sameDef(existing.def, def)) {
        if (def.name === '' || def.name.startsWith('amq.')) throw new RouterError('ERR_ACCESS_REFUSED', `exchange '${def.name}' is predeclared and cannot be redeclared differently`);
        throw new RouterError('ERR_PRECONDITION', `exchange '${def.name}' exists with other type or arguments (inequivalent redeclare)`);
      }
      return false;
    }
    if (def.name === '' || def.name.startsWith('amq.')) throw new RouterError('ERR_ACCESS_REFUSED', `exchange name '${def.name}' is reserved (amq.*)`);
    this.exchangesByName.set(def.name, new Exchange({ ...def, arguments: { ...def.arguments } }));
    return true;
  }

  exchange(name: string): ExchangeDef | undefined {
    return this.exchangesByName.get(name)?.def;
  }

  deleteExchange(name: string, ifUnused: boolean): BindingDef[] {
    const ex = this.exchangesByName.get(name);
    if (ex === undefined) throw new RouterError('ERR_NOT_FOUND', `no exchange '${name}'`);
    if (name === '' || name.startsWith('amq.')) throw new RouterError('ERR_ACCESS_REFUSED', `exchange '${name}' is predeclared and cannot be deleted`);
    if (ifUnused && ex.bindings.size > 0) throw new RouterError('ERR_PRECONDITION', `exchange '${name}' has ${ex.bindings.size} bindings`);
    this.exchangesByName.delete(name);
    return [...ex.bindings.values()].map(strip);
  }

  private bindingOf(b: BindingDef): Binding {
    const ex = this.exchangesByName.get(b.exchange);
    if (ex === undefined) throw new RouterError('ERR_NOT_FOUND', `no exchange '${b.exchange}'`);
    if (b.exchange === '') throw new RouterError('ERR_ACCESS_REFUSED', 'the default exchange cannot be bound to');
    if (!this.knownQueues.has(b.queue)) throw new RouterError('ERR_NOT_FOUND', `no queue '${b.queue}'`);
    const args = b.arguments ?? {};
    let xMatch: Binding['xMatch'] = 'all';
    if (ex.def.type === 'headers' && args['x-match'] !== undefined) {
      const v = String(args['x-match']);
      if (v !== 'all' && v !== 'any' && v !== 'all-with-x' && v !== 'any-with-x') throw new RouterError('ERR_PRECONDITION', `x-match must be all, any, all-with-x or any-with-x, got '${v}'`);
      xMatch = v;
    }
    return { exchange: b.exchange, queue: b.queue, routingKey: b.routingKey, arguments: { ...args }, id: `${b.queue}\0${b.routingKey}\0${canonical(args)}`, words: b.routingKey.split('.'), xMatch };
  }

  bind(b: BindingDef): boolean {
    const binding = this.bindingOf(b);
    const ex = this.exchangesByName.get(b.exchange)!;
    if (ex.bindings.has(binding.id)) return false;
    ex.bindings.set(binding.id, binding);
    ex.rebuild();
    return true;
  }

  unbind(b: BindingDef): boolean {
    const ex = this.exchangesByName.get(b.exchange);
    if (ex === undefined) throw new RouterError('ERR_NOT_FOUND', `no exchange '${b.exchange}'`);
    const id = `${b.queue}\0${b.routingKey}\0${canonical(b.arguments ?? {})}`;
    if (!ex.bindings.delete(id)) return false;
    ex.rebuild();
    this.maybeAutoDelete(ex);
    return true;
  }

  private maybeAutoDelete(ex: Exchange): void {
    if (ex.def.autoDelete && ex.bindings.size === 0 && this.exchangesByName.get(ex.def.name) === ex) {
      this.exchangesByName.delete(ex.def.name);
      this.autoDeleted.push(ex.def.name);
    }
  }

  /** Names of auto-delete exchanges removed (their last binding went) since the last call. */
  collectAutoDeleted(): string[] {
    const r = this.autoDeleted;
    this.autoDeleted = [];
    return r;
  }

  bindings(): BindingDef[] {
    const out: BindingDef[] = [];
    for (const ex of this.exchangesByName.values()) for (const b of ex.bindings.values()) out.push(strip(b));
    return out;
  }

  exchanges(): ExchangeDef[] {
    return [...this.exchangesByName.values()].map((e) => e.def);
  }

  route(exchange: string, routingKey: string, headers: Record<string, unknown> | undefined, out: string[]): number {
    out.length = 0;
    const ex = this.exchangesByName.get(exchange);
    if (ex === undefined) throw new RouterError('ERR_NOT_FOUND', `no exchange '${exchange}'`);
    if (ex.def.internal) throw new RouterError('ERR_ACCESS_REFUSED', `exchange '${exchange}' is internal: it cannot be published to`);
    this.routeInto(ex, routingKey, headers, out);
    if (out.length === 0 && ex.def.alternateExchange !== undefined) {
      const visited = this.aeVisited;
      visited.clear();
      visited.add(exchange);
      let ae: string | undefined = ex.def.alternateExchange;
      while (ae !== undefined && out.length === 0 && !visited.has(ae)) {
        visited.add(ae);
        const next = this.exchangesByName.get(ae);
        if (next === undefined) break;
        this.routeInto(next, routingKey, headers, out);
        ae = next.def.alternateExchange;
      }
    }
    return out.length;
  }

  private routeInto(ex: Exchange, key: string, headers: Record<string, unknown> | undefined, out: string[]): void {
    const start = out.length;
    switch (ex.def.type) {
      case 'direct': {
        if (ex.def.name === '') {
          if (this.knownQueues.has(key)) out.push(key);
          return;
        }
        const l = ex.byKey.get(key);
        if (l !== undefined) for (let i = 0; i < l.length; i++) out.push(l[i]!);
        return;
      }
      case 'fanout': {
        const l = ex.fanoutQueues;
        for (let i = 0; i < l.length; i++) out.push(l[i]!);
        return;
      }
      case 'topic': {
        let hit = ex.topicCache.get(key);
        if (hit === undefined) {
          const words = key.split('.');
          const set = new Set<string>();
          for (const b of ex.bindings.values()) if (!set.has(b.queue) && topicMatch(b.words, words)) set.add(b.queue);
          hit = [...set];
          if (ex.topicCache.size >= TOPIC_CACHE_MAX) ex.topicCache.clear();
          ex.topicCache.set(key, hit);
        }
        for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
        return;
      }
      case 'headers': {
        const seen = this.seen;
        seen.clear();
        for (const b of ex.bindings.values()) {
          if (!seen.has(b.queue) && headersMatch(b, headers)) {
            seen.add(b.queue);
            out.push(b.queue);
          }
        }
        void start;
        return;
      }
    }
  }
}

function strip(b: Binding): BindingDef {
  return { exchange: b.exchange, queue: b.queue, routingKey: b.routingKey, arguments: { ...b.arguments } };
}
