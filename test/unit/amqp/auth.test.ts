import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { Authenticator, AuthConfigError, defaultAuthConfig, isLoopback, parseAuthConfig, parseUserFlag } from '../../../src/amqp/auth.js';
import { encodeTable } from '../../../src/amqp/codec/field-table.js';

const plain = (u: string, p: string): Buffer => Buffer.from(`\0${u}\0${p}`);
const amqplain = (u: string, p: string): Buffer => encodeTable({ LOGIN: u, PASSWORD: p }).subarray(4);

test('loopback addresses, v4, v6 and v4-mapped', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '::2', '128.0.0.1', undefined]) assert.not.ok(isLoopback(a), String(a));
});

test('the default table: guest/guest, from loopback only (RabbitMQ loopback_users)', () => {
  const auth = new Authenticator(defaultAuthConfig());
  assert.equal(auth.authenticate('PLAIN', plain('guest', 'guest'), '127.0.0.1'), { ok: true, user: 'guest' });
  const remote = auth.authenticate('PLAIN', plain('guest', 'guest'), '192.168.1.5');
  assert.is(remote.ok, false);
  assert.match((remote as { reason: string }).reason, /only connect via localhost/);
  assert.is(auth.authenticate('PLAIN', plain('guest', 'nope'), '127.0.0.1').ok, false);
  assert.equal(auth.authenticate('AMQPLAIN', amqplain('guest', 'guest'), '::1'), { ok: true, user: 'guest' });
  assert.is(auth.authenticate('AMQPLAIN', Buffer.from([1, 2, 3]), '::1').ok, false, 'malformed AMQPLAIN');
  assert.is(auth.authenticate('PLAIN', Buffer.from('no-nul'), '::1').ok, false, 'malformed PLAIN');
  assert.is(auth.authenticate('EXTERNAL', Buffer.alloc(0), '::1').ok, false);
  assert.ok(auth.canAccess('guest', '/'));
  assert.not.ok(auth.canAccess('guest', 'other'));
});

test('a users file: passwords or their sha256, vhosts, loopback_users; bad files are refused with the reason', () => {
  const cfg = parseAuthConfig({
    users: [
      { name: 'alice', password: 'pw' },
      { name: 'bob', password_sha256: createHash('sha256').update('hunter2').digest('hex'), vhosts: [] },
    ],
    loopback_users: [],
  });
  const auth = new Authenticator(cfg);
  assert.equal(auth.authenticate('PLAIN', plain('alice', 'pw'), '10.1.1.1'), { ok: true, user: 'alice' }, 'not loopback-only');
  assert.equal(auth.authenticate('PLAIN', plain('bob', 'hunter2'), '127.0.0.1'), { ok: true, user: 'bob' });
  assert.not.ok(auth.canAccess('bob', '/'));
  assert.is(auth.authenticate('PLAIN', plain('guest', 'guest'), '127.0.0.1').ok, false, 'guest exists only if listed');
  for (const bad of [null, [], { users: 'x' }, { users: [{ name: '' , password: 'x' }] }, { users: [{ name: 'a' }] },
    { users: [{ name: 'a', password: 'x' }, { name: 'a', password: 'y' }] }, { users: [], loopback_users: 'guest' }]) {
    assert.throws(() => parseAuthConfig(bad), (e: Error) => e instanceof AuthConfigError, JSON.stringify(bad));
  }
  assert.equal(parseUserFlag('carol:a:b').name, 'carol');
  assert.throws(() => parseUserFlag(':x'), (e: Error) => e instanceof AuthConfigError);
});

test.run();
