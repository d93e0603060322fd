import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStoredMessage } from '../src/index.js';
import { createHarness, type Harness } from './harness.js';

// A publish whose PubAck was lost may be stored, and may have reached core-NATS subscribers already; the
// relay asks the stream with findPublished before sending such a row again (issue 12, item 7).

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness?.close();
});

describe('bus.findPublished', () => {
  it('finds a stored message by Nats-Msg-Id on its subject after a lower bound, and says when it is not there', async () => {
    const { bus } = harness;
    const subject = bus.subject('task.completed.v1');
    const other = bus.subject('task.failed.v1');
    const first = randomUUID();
    const second = randomUUID();
    const elsewhere = randomUUID();
    const a = await bus.publish(subject, { n: 1 }, { msgId: first });
    await bus.publish(other, { n: 2 }, { msgId: elsewhere });
    await bus.publish(subject, { n: 3 }, { msgId: second });

    expect(await bus.findPublished(subject, second, 0)).toBe(true);
    expect(await bus.findPublished(subject, first, 0)).toBe(true);
    // After the first one's sequence, only later messages are looked at.
    expect(await bus.findPublished(subject, first, a.seq)).toBe(false);
    expect(await bus.findPublished(subject, second, a.seq)).toBe(true);
    // Another subject's message is not this subject's.
    expect(await bus.findPublished(subject, elsewhere, 0)).toBe(false);
    expect(await bus.findPublished(subject, randomUUID(), 0)).toBe(false);
    // Too many messages to look at within its limits: it cannot tell.
    expect(await bus.findPublished(subject, randomUUID(), 0, { maxSteps: 1 })).toBeNull();
    // A subject outside the prefix is never looked up.
    expect(await bus.findPublished('elsewhere.task.completed.v1', first, 0)).toBeNull();
  });
});

describe('readStoredMessage', () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  it('reads the sequence and Nats-Msg-Id of a STREAM.MSG.GET reply, a 404 as none, anything else as null', () => {
    const hdrs = Buffer.from('NATS/1.0\r\nNats-Msg-Id: abc\r\nOther: x\r\n\r\n').toString('base64');
    expect(readStoredMessage(encode({ message: { seq: 7, hdrs, subject: 's' } }))).toEqual({
      seq: 7,
      msgId: 'abc',
    });
    expect(readStoredMessage(encode({ message: { seq: 7 } }))).toEqual({ seq: 7, msgId: null });
    expect(readStoredMessage(encode({ error: { code: 404, err_code: 10037 } }))).toBe('none');
    expect(readStoredMessage(encode({ error: { code: 503 } }))).toBeNull();
    expect(readStoredMessage(encode({ message: { seq: -1 } }))).toBeNull();
    expect(readStoredMessage(new TextEncoder().encode('not json'))).toBeNull();
  });
});
