import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EVENT_SIGNATURE_ATTRIBUTE,
  generateWebhookSecret,
  signCloudEvent,
  verifyCloudEventSignature,
} from '../src/index.js';

const event = {
  specversion: '1.0',
  id: 'order-42',
  source: 'urn:acme:billing',
  type: 'tandem.task.requested',
  data: { goal: ' Sum the invoice lines ', input: { lines: [12.5, 7.5] }, agentId: 'billing-bot' },
};

describe('signed CloudEvents', () => {
  it('verifies what it signed, whatever the key order of the JSON it arrives as', () => {
    const secret = generateWebhookSecret();
    const signed = signCloudEvent(event, [secret]);
    expect(signed[EVENT_SIGNATURE_ATTRIBUTE]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    const reordered = JSON.parse(
      JSON.stringify({
        data: signed.data,
        tandemsig: signed.tandemsig,
        type: signed.type,
        id: signed.id,
        source: signed.source,
        specversion: signed.specversion,
      }),
    );
    expect(verifyCloudEventSignature(reordered, [secret])).toEqual({ ok: true });
  });

  it('is the documented MAC: HMAC-SHA256 over the domain and the canonical JSON without tandemsig', () => {
    const secret = generateWebhookSecret();
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const canonical =
      '{"data":{"agentId":"billing-bot","goal":" Sum the invoice lines ","input":{"lines":[12.5,7.5]}},' +
      '"id":"order-42","source":"urn:acme:billing","specversion":"1.0","type":"tandem.task.requested"}';
    const mac = createHmac('sha256', key).update(`tandem.cloudevent.v1.${canonical}`).digest('base64');
    expect(signCloudEvent(event, [secret]).tandemsig).toBe(`v1,${mac}`);
  });

  it('refuses a changed field, an added attribute, another secret and a malformed attribute', () => {
    const secret = generateWebhookSecret();
    const signed = signCloudEvent(event, [secret]);
    expect(
      verifyCloudEventSignature({ ...signed, data: { ...signed.data, agentId: 'admin-bot' } }, [secret]),
    ).toEqual({ ok: false, reason: 'mismatch' });
    expect(verifyCloudEventSignature({ ...signed, subject: 'x' }, [secret])).toEqual({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyCloudEventSignature(signed, [generateWebhookSecret()])).toEqual({
      ok: false,
      reason: 'mismatch',
    });
    expect(verifyCloudEventSignature({ ...signed, tandemsig: 'garbage' }, [secret])).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyCloudEventSignature({ ...signed, tandemsig: 7 }, [secret])).toEqual({
      ok: false,
      reason: 'malformed',
    });
    expect(verifyCloudEventSignature(event, [secret])).toEqual({ ok: false, reason: 'missing' });
  });

  it('keeps working through a rotation: signed with both, verified by either', () => {
    const next = generateWebhookSecret();
    const old = generateWebhookSecret();
    const signed = signCloudEvent(event, [next, old]);
    expect(signed.tandemsig.split(' ')).toHaveLength(2);
    expect(verifyCloudEventSignature(signed, [old])).toEqual({ ok: true });
    expect(verifyCloudEventSignature(signCloudEvent(event, [old]), [next, old])).toEqual({ ok: true });
  });
});
