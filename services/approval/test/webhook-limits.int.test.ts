import { randomUUID } from 'node:crypto';
import { ErrorCodes } from '@tandem/contracts';
import { generateWebhookSecret, signWebhook } from '@tandem/webhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createHarness, type Harness } from './harness.js';

// Hole 7 of issue 11 on the signed decision webhook, which reads its body as raw text for the signature:
// a signed 10,000-deep body reached the body schema, whose recursion overflowed the stack (500).

const SECRET = generateWebhookSecret();
const ErrorBody = z.object({ error: z.object({ code: z.string(), retryable: z.boolean() }) });

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness({ env: { TANDEM_DECISION_WEBHOOK_SECRETS: SECRET } });
});

afterAll(async () => {
  await harness?.close();
});

async function sendSigned(raw: string): Promise<{ status: number; code: string | undefined }> {
  const headers = signWebhook({
    id: `msg_${randomUUID()}`,
    timestamp: Math.floor(Date.now() / 1000),
    body: raw,
    secrets: [SECRET],
  });
  const response = await fetch(`${harness.baseUrl}/v1/webhooks/decisions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
  });
  const parsed = ErrorBody.safeParse(await response.json());
  return { status: response.status, code: parsed.success ? parsed.data.error.code : undefined };
}

function editWith(argumentsText: string): string {
  return `{"approvalId":"${randomUUID()}","decision":"edit","decidedBy":"carol","arguments":${argumentsText}}`;
}

describe('decision webhook body limits', () => {
  it('answers a signed 10,000-deep body with 400 HTTP.BODY_TOO_DEEP, not 500', async () => {
    const deep = `{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(await sendSigned(editWith(deep))).toEqual({ status: 400, code: ErrorCodes.HTTP_BODY_TOO_DEEP });
  });

  it('answers a body over its 256 KiB limit with 413 HTTP.BODY_TOO_LARGE', async () => {
    const large = JSON.stringify({ x: 'y'.repeat(300 * 1024) });
    expect(await sendSigned(editWith(large))).toEqual({ status: 413, code: ErrorCodes.HTTP_BODY_TOO_LARGE });
  });

  it('still verifies and parses a signed body within the limits', async () => {
    // A well-formed decision for an approval that does not exist: past the signature and the schema.
    expect(await sendSigned(editWith('{"x":[[["nested"]]]}'))).toEqual({
      status: 404,
      code: ErrorCodes.APPROVAL_NOT_FOUND,
    });
  });
});
