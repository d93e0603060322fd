import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TOOL_RESULT_MAX_DEPTH } from '@tandem/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeHttpClient } from '../src/net/index.js';
import { createSecretStore } from '../src/secrets.js';
import { createHttpRunner } from '../src/tools/http.js';

// An HTTP response's JSON becomes part of the step's result, which travels in step events: a body
// nested deeper than a tool result may be is kept as text only, never as a value the bus would refuse.

let server: Server;
let port = 0;

/** `{"a":{"a":...1}}` with `depth` objects. */
function nestedJson(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const depth = Number(new URL(request.url ?? '/', 'http://localhost').searchParams.get('depth'));
    response.setHeader('content-type', 'application/json');
    response.end(nestedJson(depth));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? (address satisfies AddressInfo).port : 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function fetchDepth(depth: number) {
  return createHttpRunner({
    secrets: createSecretStore(new Map()),
    client: createSafeHttpClient({
      allowHosts: ['api.example.test'],
      allowHttp: true,
      allowPrivateCidrs: ['127.0.0.1/32'],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
      timeoutMs: 5000,
    }),
  }).run({
    stepId: '7d9c5a52-4b1e-4f7e-9c1a-2f0e8d6b3a10',
    arguments: { method: 'GET', url: `http://api.example.test:${port}/deep?depth=${depth}` },
  });
}

describe('http_request results nested deeply', () => {
  it('keeps the JSON of a response nested up to the tool-result depth limit', async () => {
    const result = await fetchDepth(TOOL_RESULT_MAX_DEPTH);
    expect(result).toMatchObject({ status: 200, body: nestedJson(TOOL_RESULT_MAX_DEPTH) });
    expect(result).toHaveProperty('json.a.a.a');
  });

  it('keeps a deeper response as text only (json null), without parsing it', async () => {
    for (const depth of [TOOL_RESULT_MAX_DEPTH + 1, 10_000]) {
      const result = await fetchDepth(depth);
      expect(result, `depth ${depth}`).toMatchObject({ status: 200, body: nestedJson(depth), json: null });
    }
  });
});
