import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, signWebhook, verifyWebhook, type WebhookVerification } from '../src/index.js';

// The published example of the Standard Webhooks specification (and of its reference libraries' tests).
const SPEC_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SPEC_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const NOW = new Date(1_800_000_000_000);
const NOW_SECONDS = 1_800_000_000;
const BODY = JSON.stringify({ type: 'approval.requested', data: { approvalId: 'a' } });

function signed(
  secrets: readonly string[],
  overrides: { id?: string; timestamp?: number; body?: string } = {},
) {
  return signWebhook({
    id: overrides.id ?? 'msg_1',
    timestamp: overrides.timestamp ?? NOW_SECONDS,
    body: overrides.body ?? BODY,
    secrets,
  });
}

function reasonOf(result: WebhookVerification): string {
  return result.ok ? 'ok' : result.reason;
}

describe('signWebhook', () => {
  it('reproduces the specification example signature', () => {
    const headers = signWebhook({
      id: SPEC_ID,
      timestamp: SPEC_TIMESTAMP,
      body: SPEC_BODY,
      secrets: [SPEC_SECRET],
    });
    expect(headers).toEqual({
      'webhook-id': SPEC_ID,
      'webhook-timestamp': String(SPEC_TIMESTAMP),
      'webhook-signature': SPEC_SIGNATURE,
    });
  });

  it('signs `${id}.${timestamp}.${body}` with HMAC-SHA256 of the base64-decoded secret', () => {
    const secret = generateWebhookSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key).update(`msg_x.${NOW_SECONDS}.${BODY}`).digest('base64');
    expect(signed([secret], { id: 'msg_x' })['webhook-signature']).toBe(`v1,${expected}`);
  });

  it('accepts a secret without the whsec_ prefix, like the reference libraries', () => {
    const headers = signWebhook({
      id: SPEC_ID,
      timestamp: SPEC_TIMESTAMP,
      body: SPEC_BODY,
      secrets: [SPEC_SECRET.slice('whsec_'.length)],
    });
    expect(headers['webhook-signature']).toBe(SPEC_SIGNATURE);
  });

  it('takes a Date as whole seconds', () => {
    const headers = signWebhook({
      id: 'msg_1',
      timestamp: new Date(1_700_000_000_999),
      body: '',
      secrets: [SPEC_SECRET],
    });
    expect(headers['webhook-timestamp']).toBe('1700000000');
  });

  it('makes one v1 signature per secret, space-separated', () => {
    const oldSecret = generateWebhookSecret();
    const newSecret = generateWebhookSecret();
    const signature = signed([oldSecret, newSecret])['webhook-signature'];
    const parts = signature.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(signed([oldSecret])['webhook-signature']);
    expect(parts[1]).toBe(signed([newSecret])['webhook-signature']);
  });

  it('refuses to sign without a secret, with a malformed secret or with a bad id or timestamp', () => {
    expect(() => signed([])).toThrow(/at least one secret/);
    expect(() => signed(['whsec_not base64!'])).toThrow(/base64/);
    expect(() => signed([SPEC_SECRET], { id: '' })).toThrow(/webhook id/);
    expect(() => signed([SPEC_SECRET], { id: 'msg 1' })).toThrow(/webhook id/);
    expect(() => signed([SPEC_SECRET], { timestamp: 1.5 })).toThrow(/unix seconds/);
    expect(() => signed([SPEC_SECRET], { timestamp: -1 })).toThrow(/unix seconds/);
  });
});

describe('verifyWebhook', () => {
  const secret = generateWebhookSecret();

  it('verifies the specification example', () => {
    const result = verifyWebhook({
      headers: {
        'webhook-id': SPEC_ID,
        'webhook-timestamp': String(SPEC_TIMESTAMP),
        'webhook-signature': SPEC_SIGNATURE,
      },
      body: SPEC_BODY,
      secrets: [SPEC_SECRET],
      now: new Date(SPEC_TIMESTAMP * 1000),
    });
    expect(result).toEqual({ ok: true, id: SPEC_ID, timestamp: SPEC_TIMESTAMP });
  });

  it('accepts what signWebhook signed and returns its id and timestamp', () => {
    const result = verifyWebhook({ headers: signed([secret]), body: BODY, secrets: [secret], now: NOW });
    expect(result).toEqual({ ok: true, id: 'msg_1', timestamp: NOW_SECONDS });
  });

  it('matches header names case-insensitively and takes single-element arrays', () => {
    const headers = signed([secret]);
    const result = verifyWebhook({
      headers: {
        'Webhook-Id': [headers['webhook-id']],
        'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'],
        'Webhook-Signature': headers['webhook-signature'],
      },
      body: BODY,
      secrets: [secret],
      now: NOW,
    });
    expect(result.ok).toBe(true);
  });

  it('refuses a tampered body, id or timestamp', () => {
    const headers = signed([secret]);
    const verify = (changed: Record<string, string>, body = BODY) =>
      reasonOf(verifyWebhook({ headers: { ...headers, ...changed }, body, secrets: [secret], now: NOW }));
    expect(verify({}, BODY.replace('approval.requested', 'approval.expired'))).toBe('bad-signature');
    expect(verify({}, `${BODY} `)).toBe('bad-signature');
    expect(verify({ 'webhook-id': 'msg_2' })).toBe('bad-signature');
    expect(verify({ 'webhook-timestamp': String(NOW_SECONDS + 1) })).toBe('bad-signature');
    expect(verify({})).toBe('ok');
  });

  it('refuses a signature made with another secret', () => {
    const result = verifyWebhook({
      headers: signed([generateWebhookSecret()]),
      body: BODY,
      secrets: [secret],
      now: NOW,
    });
    expect(result).toMatchObject({ ok: false, reason: 'bad-signature' });
  });

  it('verifies with either secret during a rotation, and not with a retired one', () => {
    const oldSecret = generateWebhookSecret();
    const newSecret = generateWebhookSecret();
    const byOld = signed([oldSecret]);
    const byNew = signed([newSecret]);
    const byBoth = signed([oldSecret, newSecret]);
    const verify = (headers: ReturnType<typeof signed>, secrets: string[]) =>
      reasonOf(verifyWebhook({ headers, body: BODY, secrets, now: NOW }));

    // Receiver during the overlap: holds both.
    expect(verify(byOld, [newSecret, oldSecret])).toBe('ok');
    expect(verify(byNew, [newSecret, oldSecret])).toBe('ok');
    // Sender during the overlap signs with both: receivers holding either verify.
    expect(verify(byBoth, [oldSecret])).toBe('ok');
    expect(verify(byBoth, [newSecret])).toBe('ok');
    // After the rotation only the new secret is configured: the retired one no longer verifies.
    expect(verify(byOld, [newSecret])).toBe('bad-signature');
  });

  it('refuses a stale timestamp and one too far in the future, at the tolerance boundary', () => {
    const verify = (timestamp: number, toleranceSeconds?: number) =>
      reasonOf(
        verifyWebhook({
          headers: signed([secret], { timestamp }),
          body: BODY,
          secrets: [secret],
          now: NOW,
          ...(toleranceSeconds === undefined ? {} : { toleranceSeconds }),
        }),
      );
    expect(verify(NOW_SECONDS - 300)).toBe('ok');
    expect(verify(NOW_SECONDS - 301)).toBe('stale');
    expect(verify(NOW_SECONDS + 300)).toBe('ok');
    expect(verify(NOW_SECONDS + 301)).toBe('future');
    expect(verify(NOW_SECONDS - 11, 10)).toBe('stale');
    expect(verify(NOW_SECONDS + 11, 10)).toBe('future');
  });

  it('refuses missing or empty headers and names them', () => {
    const headers = signed([secret]);
    const verify = (changed: Record<string, string | undefined>) =>
      verifyWebhook({ headers: { ...headers, ...changed }, body: BODY, secrets: [secret], now: NOW });
    expect(verify({ 'webhook-id': undefined })).toEqual({
      ok: false,
      reason: 'missing-headers',
      message: 'webhook-id is missing',
    });
    expect(verify({ 'webhook-timestamp': '' })).toMatchObject({ reason: 'missing-headers' });
    expect(verify({ 'webhook-signature': undefined })).toMatchObject({
      reason: 'missing-headers',
      message: 'webhook-signature is missing',
    });
    expect(verifyWebhook({ headers: {}, body: BODY, secrets: [secret], now: NOW })).toMatchObject({
      reason: 'missing-headers',
      message: 'webhook-id is missing; webhook-timestamp is missing; webhook-signature is missing',
    });
  });

  it('refuses malformed headers', () => {
    const headers = signed([secret]);
    const verify = (changed: Record<string, string | string[]>) =>
      reasonOf(
        verifyWebhook({ headers: { ...headers, ...changed }, body: BODY, secrets: [secret], now: NOW }),
      );
    expect(verify({ 'webhook-timestamp': 'yesterday' })).toBe('bad-timestamp');
    expect(verify({ 'webhook-timestamp': '1.8e9' })).toBe('bad-timestamp');
    expect(verify({ 'webhook-timestamp': '-1800000000' })).toBe('bad-timestamp');
    expect(verify({ 'webhook-id': ['msg_1', 'msg_2'] })).toBe('missing-headers');
    expect(verify({ 'webhook-signature': 'garbage' })).toBe('bad-signature');
    expect(verify({ 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v1') })).toBe(
      'bad-signature',
    );
    expect(verify({ 'webhook-signature': 'v1,' })).toBe('bad-signature');
    expect(verify({ 'webhook-signature': headers['webhook-signature'].slice(0, -2) })).toBe('bad-signature');
    expect(verify({ 'webhook-signature': Array(17).fill(headers['webhook-signature']).join(' ') })).toBe(
      'bad-signature',
    );
  });

  it('finds the matching signature among several and ignores other versions', () => {
    const headers = signed([secret]);
    const own = headers['webhook-signature'];
    const other = signed([generateWebhookSecret()])['webhook-signature'];
    const verify = (signature: string | string[]) =>
      reasonOf(
        verifyWebhook({
          headers: { ...headers, 'webhook-signature': signature },
          body: BODY,
          secrets: [secret],
          now: NOW,
        }),
      );
    expect(verify(`${other} ${own}`)).toBe('ok');
    expect(verify(`${own}   ${other}`)).toBe('ok');
    // A repeated header, as an array or as Node joins it.
    expect(verify([other, own])).toBe('ok');
    expect(verify(`${other}, ${own}`)).toBe('ok');
    // The right bytes under another version prefix are not a v1 signature.
    expect(verify(`${own.replace('v1,', 'v1a,')} ${other}`)).toBe('bad-signature');
    expect(verify(own.replace('v1,', 'v2,'))).toBe('bad-signature');
  });

  it('refuses everything when no secret is configured', () => {
    const result = verifyWebhook({ headers: signed([secret]), body: BODY, secrets: [], now: NOW });
    expect(result).toMatchObject({ ok: false, reason: 'no-secret' });
  });

  it('throws for a malformed configured secret instead of verifying with some other key', () => {
    expect(() =>
      verifyWebhook({ headers: signed([secret]), body: BODY, secrets: ['whsec_%%%'], now: NOW }),
    ).toThrow(/base64/);
  });
});
