import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isHardError, REPLY_CODE_SCOPE, ReplyCode, replyCodeName } from '../../../src/amqp/codec/constants.js';
import { AmqpError } from '../../../src/amqp/errors.js';

test('soft errors close the channel, hard errors the connection (amqp0-9-1.xml classes)', () => {
  for (const code of [311, 403, 404, 405, 406]) assert.is(new AmqpError(code, 'x').closes, 'channel', String(code));
  for (const code of [320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]) assert.is(new AmqpError(code, 'x').closes, 'connection', String(code));
  assert.ok(isHardError(999), 'unknown codes are hard');
  assert.equal(Object.keys(REPLY_CODE_SCOPE).map(Number).sort(), Object.values(ReplyCode).slice().sort());
});

test('reply codes are named as in the spec', () => {
  assert.is(ReplyCode.FRAME_ERROR, 501);
  assert.is(ReplyCode.PRECONDITION_FAILED, 406);
  assert.is(replyCodeName(505), 'UNEXPECTED_FRAME');
  assert.is(replyCodeName(1), undefined);
});

test('an error carries class, method and channel, and a reply-text that fits a short string', () => {
  const e = new AmqpError(ReplyCode.FRAME_ERROR, 'é'.repeat(300), 60, 40, 3);
  assert.is(e.classId, 60);
  assert.is(e.methodId, 40);
  assert.is(e.channel, 3);
  assert.ok(e.replyText.startsWith('FRAME_ERROR - é'));
  assert.ok(Buffer.byteLength(e.replyText) <= 255);
  assert.ok(!e.replyText.includes('\uFFFD'));
  assert.ok(e instanceof Error);
});

test.run();
