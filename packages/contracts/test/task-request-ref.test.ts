import { describe, expect, it } from 'vitest';
import { HTTP_TASK_SOURCE, TaskRequestRef, taskRequestRef } from '../src/index.js';

const TOKEN = '6f1c2b8e-3d4a-4b5c-9d6e-7f8091a2b3c4';

describe('the request ref of a stored task', () => {
  it('gives an HTTP task its key and the token whose key it is', () => {
    expect(taskRequestRef({ source: HTTP_TASK_SOURCE, externalId: `token:${TOKEN}:order-7` })).toEqual({
      idempotencyKey: 'order-7',
      tokenId: TOKEN,
    });
    // A key may itself contain colons.
    expect(taskRequestRef({ source: HTTP_TASK_SOURCE, externalId: `token:${TOKEN}:a:b:c` })).toEqual({
      idempotencyKey: 'a:b:c',
      tokenId: TOKEN,
    });
  });

  it('gives a task submitted without a key a null key, still with its token', () => {
    expect(taskRequestRef({ source: HTTP_TASK_SOURCE, externalId: `token:${TOKEN}:auto:${TOKEN}` })).toEqual({
      idempotencyKey: null,
      tokenId: TOKEN,
    });
  });

  it('reads rows stored before keys were scoped per token as they were', () => {
    expect(taskRequestRef({ source: HTTP_TASK_SOURCE, externalId: 'order-7' })).toEqual({
      idempotencyKey: 'order-7',
    });
    expect(taskRequestRef({ source: HTTP_TASK_SOURCE, externalId: `auto:${TOKEN}` })).toEqual({
      idempotencyKey: null,
    });
  });

  it('gives a CloudEvent task its source and id', () => {
    expect(taskRequestRef({ source: 'urn:billing', externalId: `token:${TOKEN}:x` })).toEqual({
      source: 'urn:billing',
      id: `token:${TOKEN}:x`,
    });
  });

  it('parses refs with and without the token, and refuses a token id that is not a uuid', () => {
    expect(TaskRequestRef.parse({ idempotencyKey: 'k' })).toEqual({ idempotencyKey: 'k' });
    expect(TaskRequestRef.parse({ idempotencyKey: null, tokenId: TOKEN })).toEqual({
      idempotencyKey: null,
      tokenId: TOKEN,
    });
    expect(TaskRequestRef.safeParse({ idempotencyKey: 'k', tokenId: 'ops' }).success).toBe(false);
  });
});
