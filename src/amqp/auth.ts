/**
 * Who may connect: SASL PLAIN and AMQPLAIN over a user table, vhost access,
 * and RabbitMQ's loopback_users rule (by default `guest` may log in only
 * from a loopback address).
 *
 * The user table comes from a JSON file (`ringmq serve --users FILE`):
 *
 *   {
 *     "users": [
 *       { "name": "alice", "password": "s3cret" },
 *       { "name": "bob", "password_sha256": "<hex of sha256(password)>", "vhosts": ["/"] }
 *     ],
 *     "loopback_users": ["guest"]
 *   }
 *
 * or from `--user NAME:PASSWORD` flags. With neither, the table is the one
 * user guest/guest, loopback only, as a fresh RabbitMQ. Only the vhost "/"
 * exists; a user's `vhosts` (default ["/"]) says where it may go.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Cursor } from './codec/cursor.js';
import { readTable } from './codec/field-table.js';

export interface UserEntry {
  name: string;
  /** sha256 of the password. */
  hash: Buffer;
  vhosts: string[];
}

export interface AuthConfig {
  users: UserEntry[];
  /** Users that may log in only from a loopback address. */
  loopbackUsers: string[];
}

export const MECHANISMS = ['PLAIN', 'AMQPLAIN'] as const;

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

export function user(name: string, password: string, vhosts: string[] = ['/']): UserEntry {
  return { name, hash: sha256(password), vhosts };
}

/** The table of a fresh RabbitMQ: guest/guest, from loopback only. */
export function defaultAuthConfig(): AuthConfig {
  return { users: [user('guest', 'guest')], loopbackUsers: ['guest'] };
}

export class AuthConfigError extends Error {
  readonly code = 'ERR_AUTH_CONFIG';
}

/** Reads and checks a users file (format above). Throws AuthConfigError with the file and the fault. */
export function loadUsersFile(path: string): AuthConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new AuthConfigError(`cannot read users file ${path}: ${(e as Error).message}`);
  }
  return parseAuthConfig(raw, path);
}

export function parseAuthConfig(raw: unknown, where = 'users config'): AuthConfig {
  const bad = (what: string): never => { throw new AuthConfigError(`${where}: ${what}`); };
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) bad('must be a JSON object with a "users" array');
  const o = raw as Record<string, unknown>;
  if (!Array.isArray(o.users)) bad('"users" must be an array');
  const users: UserEntry[] = [];
  const seen = new Set<string>();
  (o.users as unknown[]).forEach((u, i) => {
    if (u === null || typeof u !== 'object') bad(`users[${i}] must be an object`);
    const e = u as Record<string, unknown>;
    if (typeof e.name !== 'string' || e.name === '') bad(`users[${i}].name must be a non-empty string`);
    const name = e.name as string;
    if (seen.has(name)) bad(`user "${name}" is listed twice`);
    seen.add(name);
    let hash: Buffer;
    if (typeof e.password === 'string') hash = sha256(e.password);
    else if (typeof e.password_sha256 === 'string' && /^[0-9a-fA-F]{64}$/.test(e.password_sha256)) hash = Buffer.from(e.password_sha256, 'hex');
    else return bad(`users[${i}] ("${name}") needs "password" (string) or "password_sha256" (64 hex digits)`);
    let vhosts = ['/'];
    if (e.vhosts !== undefined) {
      if (!Array.isArray(e.vhosts) || !e.vhosts.every((v) => typeof v === 'string')) bad(`users[${i}].vhosts must be an array of strings`);
      vhosts = e.vhosts as string[];
    }
    users.push({ name, hash, vhosts });
  });
  let loopbackUsers = ['guest'];
  if (o.loopback_users !== undefined) {
    if (!Array.isArray(o.loopback_users) || !o.loopback_users.every((v) => typeof v === 'string')) bad('"loopback_users" must be an array of strings');
    loopbackUsers = o.loopback_users as string[];
  }
  return { users, loopbackUsers };
}

/** `--user NAME:PASSWORD` (the password may contain ':'). */
export function parseUserFlag(s: string): UserEntry {
  const i = s.indexOf(':');
  if (i <= 0) throw new AuthConfigError(`--user must be NAME:PASSWORD, got "${s}"`);
  return user(s.slice(0, i), s.slice(i + 1));
}

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export type AuthResult = { ok: true; user: string } | { ok: false; reason: string };

export class Authenticator {
  private readonly users = new Map<string, UserEntry>();
  private readonly loopbackOnly: Set<string>;

  constructor(config: AuthConfig = defaultAuthConfig()) {
    for (const u of config.users) this.users.set(u.name, u);
    this.loopbackOnly = new Set(config.loopbackUsers);
  }

  /** connection.start `mechanisms`: a space-separated list. */
  get mechanisms(): string {
    return MECHANISMS.join(' ');
  }

  /**
   * Checks a connection.start-ok response. PLAIN (RFC 4616):
   * `[authzid] NUL authcid NUL passwd`; AMQPLAIN: a field table without its
   * length prefix, with LOGIN and PASSWORD. The reason is for the server log,
   * never for the client (RabbitMQ tells the client only "Login was refused").
   */
  authenticate(mechanism: string, response: Buffer, remoteAddress: string | undefined): AuthResult {
    let name: string;
    let password: string;
    if (mechanism === 'PLAIN') {
      const a = response.indexOf(0);
      const b = a < 0 ? -1 : response.indexOf(0, a + 1);
      if (b < 0) return { ok: false, reason: 'malformed PLAIN response' };
      name = response.toString('utf8', a + 1, b);
      password = response.toString('utf8', b + 1);
    } else if (mechanism === 'AMQPLAIN') {
      const t = decodeAmqplain(response);
      if (t === null || typeof t.LOGIN !== 'string' || typeof t.PASSWORD !== 'string') return { ok: false, reason: 'malformed AMQPLAIN response' };
      name = t.LOGIN;
      password = t.PASSWORD;
    } else {
      return { ok: false, reason: `unsupported mechanism ${mechanism}` };
    }
    const u = this.users.get(name);
    // Hash both sides so the comparison takes the same time whatever the password's length.
    const given = sha256(password);
    if (u === undefined || !timingSafeEqual(given, u.hash)) return { ok: false, reason: `user '${name}': invalid credentials` };
    if (this.loopbackOnly.has(name) && !isLoopback(remoteAddress)) {
      return { ok: false, reason: `user '${name}' can only connect via localhost (loopback_users)` };
    }
    return { ok: true, user: name };
  }

  canAccess(user: string, vhost: string): boolean {
    return vhost === '/' && (this.users.get(user)?.vhosts.includes(vhost) ?? false);
  }
}

function decodeAmqplain(response: Buffer): Record<string, unknown> | null {
  const framed = Buffer.allocUnsafe(4 + response.length);
  framed.writeUInt32BE(response.length, 0);
  response.copy(framed, 4);
  const c = new Cursor();
  c.reset(framed, 0, framed.length, 0);
  try {
    return readTable(c) as Record<string, unknown>;
  } catch {
    return null;
  }
}
