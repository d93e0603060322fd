import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSafeHttpClient } from '../src/net/index.js';
import { createSecretStore, scrubSecrets, secretStoreFromEnv } from '../src/secrets.js';
import { createHttpRunner } from '../src/tools/http.js';

const SECRET = 'sk-live-0123456789abcdef';
const STEP_ID = '7d9c5a52-4b1e-4f7e-9c1a-2f0e8d6b3a10';

/** A real local server that echoes what it received (headers included) as JSON. */
let server: Server;
let port = 0;
const received: Array<{ method: string; headers: IncomingMessage['headers']; body: string }> = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ method: request.method ?? '', headers: request.headers, body });
      response.setHeader('content-type', 'application/json');
      response.setHeader('set-cookie', 'session=abc');
      response.end(JSON.stringify({ echoedAuthorization: request.headers['authorization'] ?? null, body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  port = typeof address === 'object' && address !== null ? (address satisfies AddressInfo).port : 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function runner(secrets = createSecretStore(new Map([['API_TOKEN', SECRET]]))) {
  return createHttpRunner({
    secrets,
    client: createSafeHttpClient({
      allowHosts: ['api.example.test'],
      allowHttp: true,
      // The operator's opt-in for an internal service; the resolver maps the allowed name to it.
      allowPrivateCidrs: ['127.0.0.1/32'],
      resolve: async () => [{ address: '127.0.0.1', family: 4 }],
      timeoutMs: 5000,
    }),
  });
}

describe('http_request steps', () => {
  it('resolves a secret header at execution, sends the step id as Idempotency-Key and scrubs echoes', async () => {
    const result = await runner().run({
      stepId: STEP_ID,
      arguments: {
        method: 'POST',
        url: `http://api.example.test:${port}/v1/things`,
        headers: [
          { name: 'Authorization', secret: 'API_TOKEN' },
          { name: 'Content-Type', value: 'application/json' },
        ],
        body: '{"name":"x"}',
      },
    });
    const last = received.at(-1);
    expect(last?.headers['authorization']).toBe(SECRET);
    expect(last?.headers['idempotency-key']).toBe(STEP_ID);
    expect(last?.headers['host']).toBe(`api.example.test:${port}`);
    expect(last?.body).toBe('{"name":"x"}');
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(result).toMatchObject({
      status: 200,
      truncated: false,
      json: { echoedAuthorization: '[secret]', body: '{"name":"x"}' },
    });
    // Cookies and other response headers outside the kept list are not stored in the step result.
    expect(JSON.stringify(result)).not.toContain('session=abc');
  });

  it('sends no Idempotency-Key on a GET', async () => {
    await runner().run({
      stepId: STEP_ID,
      arguments: { method: 'GET', url: `http://api.example.test:${port}/` },
    });
    expect(received.at(-1)?.headers['idempotency-key']).toBeUndefined();
  });

  it('fails with HTTP.REQUEST_FAILED when a header names a secret the store does not have', async () => {
    const before = received.length;
    await expect(
      runner(createSecretStore(new Map())).run({
        stepId: STEP_ID,
        arguments: {
          method: 'GET',
          url: `http://api.example.test:${port}/`,
          headers: [{ name: 'Authorization', secret: 'API_TOKEN' }],
        },
      }),
    ).rejects.toMatchObject({ code: 'HTTP.REQUEST_FAILED' });
    expect(received.length).toBe(before);
  });

  it('refuses hosts outside the allow-list and loopback literals before connecting', async () => {
    const before = received.length;
    for (const url of [`http://127.0.0.1:${port}/`, `http://other.example.test:${port}/`, 'http://[::1]/']) {
      await expect(
        runner().run({ stepId: STEP_ID, arguments: { method: 'GET', url } }),
      ).rejects.toMatchObject({
        code: 'TOOL.URL_REJECTED',
      });
    }
    expect(received.length).toBe(before);
  });
});

describe('the secret store', () => {
  it('reads TANDEM_SECRET_<NAME> variables and a JSON file, a variable winning', () => {
    const store = secretStoreFromEnv(
      { TANDEM_SECRET_API_TOKEN: 'from-env', TANDEM_SECRETS_FILE: '/secrets.json', TANDEM_SECRET_bad: 'x' },
      () => JSON.stringify({ API_TOKEN: 'from-file', OTHER: 'other-value' }),
    );
    expect(store.resolve('API_TOKEN')).toBe('from-env');
    expect(store.resolve('OTHER')).toBe('other-value');
    expect(store.names()).toEqual(['API_TOKEN', 'OTHER']);
  });

  it('rejects a malformed secrets file without printing any value', () => {
    expect(() =>
      secretStoreFromEnv({ TANDEM_SECRETS_FILE: '/secrets.json' }, () => '{"lower": "sk-should-not-leak"}'),
    ).toThrow(/must be a JSON object/);
    try {
      secretStoreFromEnv({ TANDEM_SECRETS_FILE: '/secrets.json' }, () => '{"lower": "sk-should-not-leak"}');
    } catch (error) {
      expect(String(error)).not.toContain('sk-should-not-leak');
    }
  });

  it('scrubs every known value of four characters or more', () => {
    expect(scrubSecrets('token=abcd1234 and abc', ['abcd1234', 'abc'])).toBe('token=[secret] and abc');
  });
});
