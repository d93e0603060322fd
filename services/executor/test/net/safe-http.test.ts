import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes, TandemError } from '@tandem/contracts';
import { createSafeHttpClient, type Resolver, type SafeHttpClientOptions } from '../../src/net/index.js';

/** A real HTTP server on a loopback address that records what reached it. */
interface TestServer {
  port: number;
  connections: number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  /** Whether the last response finished writing (false when the client stopped reading). */
  lastFinished: Promise<boolean>;
  close(): Promise<void>;
}

async function startServer(
  handler: (request: http.IncomingMessage, response: http.ServerResponse, body: string) => void,
  host = '127.0.0.1',
  port = 0,
): Promise<TestServer> {
  let markFinished: (finished: boolean) => void = () => undefined;
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      state.requests.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body,
      });
      state.lastFinished = new Promise((resolve) => {
        markFinished = resolve;
      });
      response.on('close', () => markFinished(response.writableFinished));
      handler(request, response, body);
    });
  });
  const state: TestServer = {
    port: 0,
    connections: 0,
    requests: [],
    lastFinished: Promise.resolve(true),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const ok = (_request: http.IncomingMessage, response: http.ServerResponse, body: string) => {
  response.setHeader('content-type', 'application/json');
  response.end(JSON.stringify({ hello: 'world', echoed: body }));
};

/** Maps test hostnames to addresses and counts how often each was asked. */
function fakeResolver(table: Record<string, string[] | (() => string[])>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = async (hostname: string) => {
    calls.push(hostname);
    const entry = table[hostname];
    if (entry === undefined)
      throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    const addresses = typeof entry === 'function' ? entry() : entry;
    return addresses.map((address) => ({
      address,
      family: address.includes(':') ? (6 as const) : (4 as const),
    }));
  };
  return Object.assign(resolver, { calls });
}

async function rejection(promise: Promise<unknown>): Promise<TandemError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TandemError) return error;
    throw new Error(`expected a TandemError, got ${String(error)}`);
  }
  throw new Error('expected the request to fail');
}

let api: TestServer;
const servers: TestServer[] = [];

beforeAll(async () => {
  api = await startServer(ok);
});

afterAll(async () => {
  await api.close();
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  api.requests.length = 0;
  api.connections = 0;
});

function client(overrides: Partial<SafeHttpClientOptions> = {}) {
  return createSafeHttpClient({
    allowHosts: [
      'api.example.test',
      'other.example.test',
      '127.0.0.1',
      '127.0.0.2',
      '169.254.169.254',
      '[::1]',
    ],
    allowHttp: true,
    resolve: fakeResolver({ 'api.example.test': ['127.0.0.1'], 'other.example.test': ['127.0.0.1'] }),
    allowPrivateCidrs: ['127.0.0.1/32'],
    timeoutMs: 2000,
    ...overrides,
  });
}

describe('safe HTTP client: the allowed path', () => {
  it('reaches an allow-listed name through the injected resolver and the operator opt-in', async () => {
    const resolve = fakeResolver({ 'api.example.test': ['127.0.0.1'] });
    const response = await client({ resolve }).request({
      method: 'POST',
      url: `http://api.example.test:${api.port}/v1/items?x=1`,
      headers: [
        ['Content-Type', 'application/json'],
        ['Authorization', 'Bearer s3cret-value'],
      ],
      body: '{"a":1}',
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ hello: 'world', echoed: '{"a":1}' });
    expect(response).toMatchObject({ truncated: false, address: '127.0.0.1', redirects: 0 });
    expect(response.finalUrl).toBe(`http://api.example.test:${api.port}/v1/items?x=1`);
    expect(response.headers['content-type']).toBe('application/json');
    const seen = api.requests[0];
    // Host keeps the name although the connection went to the pinned address.
    expect(seen?.headers.host).toBe(`api.example.test:${api.port}`);
    expect(seen?.headers['authorization']).toBe('Bearer s3cret-value');
    expect(seen?.headers['accept-encoding']).toBe('identity');
    expect(seen?.headers['content-length']).toBe('7');
    expect(resolve.calls).toEqual(['api.example.test']);
  });

  it('reaches an allow-listed IP literal inside the opt-in without resolving', async () => {
    const resolve = fakeResolver({});
    const response = await client({ resolve }).request({
      method: 'GET',
      url: `http://127.0.0.1:${api.port}/`,
      headers: [],
    });
    expect(response.status).toBe(200);
    expect(resolve.calls).toEqual([]);
  });
});

describe('safe HTTP client: refusals before any connection', () => {
  it.each([
    ['a loopback literal without opt-in', 'http://127.0.0.1:PORT/', { allowPrivateCidrs: [] }],
    ['the metadata address', 'http://169.254.169.254/latest/meta-data/', {}],
    [
      'the metadata address even with a link-local opt-in',
      'http://169.254.169.254/',
      { allowPrivateCidrs: ['169.254.0.0/16'] },
    ],
    ['IPv6 loopback', 'http://[::1]:PORT/', { allowPrivateCidrs: [] }],
    ['a hex IPv4 literal', 'http://0x7f000001:PORT/', { allowPrivateCidrs: [] }],
    ['a decimal IPv4 literal', 'http://2130706433:PORT/', { allowPrivateCidrs: [] }],
    ['an IPv4-mapped IPv6 literal', 'http://[::ffff:127.0.0.1]:PORT/', { allowPrivateCidrs: [] }],
    ['a host that is not allow-listed', 'http://elsewhere.example.test:PORT/', {}],
    ['localhost', 'http://localhost:PORT/', { allowHosts: ['localhost'] }],
    ['credentials in the URL', 'http://user:pw@api.example.test:PORT/', {}],
    ['plain http when only https is allowed', 'http://api.example.test:PORT/', { allowHttp: false }],
  ])('refuses %s', async (_label, template, overrides: Partial<SafeHttpClientOptions>) => {
    const url = template.replace('PORT', String(api.port));
    const error = await rejection(client(overrides).request({ method: 'GET', url, headers: [] }));
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(api.connections).toBe(0);
  });

  it('refuses a host that resolves to loopback when no range was opened', async () => {
    const resolve = fakeResolver({ 'api.example.test': ['127.0.0.1'] });
    const error = await rejection(
      client({ resolve, allowPrivateCidrs: [] }).request({
        method: 'GET',
        url: `http://api.example.test:${api.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(error.message).toContain('resolves to a loopback address');
    expect(api.connections).toBe(0);
  });

  it('refuses the whole request when any resolved address is forbidden, instead of picking another', async () => {
    const resolve = fakeResolver({ 'api.example.test': ['127.0.0.1', '169.254.169.254'] });
    const error = await rejection(
      client({ resolve }).request({
        method: 'GET',
        url: `http://api.example.test:${api.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(error.message).toContain('metadata');
    expect(api.connections).toBe(0);
  });

  it('refuses a resolver answer that is not an IP address', async () => {
    const resolve = fakeResolver({ 'api.example.test': ['localhost'] });
    const error = await rejection(
      client({ resolve }).request({
        method: 'GET',
        url: `http://api.example.test:${api.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
  });

  it('refuses injected and forbidden headers without echoing their values', async () => {
    const injected = await rejection(
      client().request({
        method: 'GET',
        url: `http://api.example.test:${api.port}/`,
        headers: [['X-Token', 'secret-abc\r\nX-Evil: 1']],
      }),
    );
    expect(injected.code).toBe(ErrorCodes.TOOL_HEADER_REJECTED);
    expect(injected.message).not.toContain('secret-abc');
    expect(JSON.stringify(injected.toShape())).not.toContain('secret-abc');
    const host = await rejection(
      client().request({
        method: 'GET',
        url: `http://api.example.test:${api.port}/`,
        headers: [['Host', 'internal.example']],
      }),
    );
    expect(host.code).toBe(ErrorCodes.TOOL_HEADER_REJECTED);
    expect(api.connections).toBe(0);
  });

  it('reports a name that does not resolve as a request failure', async () => {
    const error = await rejection(
      client()
        .request({ method: 'GET', url: 'http://missing.example.test/', headers: [] })
        .catch((e: unknown) => {
          throw e;
        }),
    );
    // Not allow-listed, so refused by policy before DNS.
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    const unresolved = await rejection(
      client({ allowHosts: ['*.example.test'] }).request({
        method: 'GET',
        url: 'http://missing.example.test/',
        headers: [],
      }),
    );
    expect(unresolved.code).toBe(ErrorCodes.HTTP_REQUEST_FAILED);
    expect(unresolved.details).toEqual({ reason: 'dns' });
  });
});

describe('safe HTTP client: DNS rebinding', () => {
  it('connects to the address it checked and never resolves again inside the connect', async () => {
    // A canary on 127.0.0.2 with the same port: a second resolution would land there.
    const canary = await startServer(ok, '127.0.0.2', api.port).catch(() => null);
    if (canary) servers.push(canary);
    let answers = 0;
    const resolve = fakeResolver({
      'api.example.test': () => {
        answers += 1;
        return answers === 1 ? ['127.0.0.1'] : ['127.0.0.2'];
      },
    });
    const rebinding = client({ resolve });
    const response = await rebinding.request({
      method: 'GET',
      url: `http://api.example.test:${api.port}/`,
      headers: [],
    });
    expect(response.status).toBe(200);
    expect(response.address).toBe('127.0.0.1');
    expect(resolve.calls).toEqual(['api.example.test']);
    expect(api.requests).toHaveLength(1);
    if (canary) expect(canary.connections).toBe(0);

    // The next request resolves afresh, sees the forbidden answer and refuses.
    const error = await rejection(
      rebinding.request({ method: 'GET', url: `http://api.example.test:${api.port}/`, headers: [] }),
    );
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(resolve.calls).toHaveLength(2);
    expect(api.requests).toHaveLength(1);
    if (canary) expect(canary.connections).toBe(0);
  });
});

describe('safe HTTP client: redirects', () => {
  it('follows an allowed redirect, re-checking it, and reports the hop count', async () => {
    const target = await startServer(ok);
    servers.push(target);
    const start = await startServer((_request, response) => {
      response.writeHead(302, { location: `http://other.example.test:${target.port}/landed` });
      response.end('moved');
    });
    servers.push(start);
    const resolve = fakeResolver({ 'api.example.test': ['127.0.0.1'], 'other.example.test': ['127.0.0.1'] });
    const response = await client({ resolve }).request({
      method: 'GET',
      url: `http://api.example.test:${start.port}/`,
      headers: [
        ['Authorization', 'Bearer s3cret'],
        ['Accept', 'application/json'],
        ['X-Api-Key', 'k3y'],
      ],
    });
    expect(response.status).toBe(200);
    expect(response.redirects).toBe(1);
    expect(response.finalUrl).toBe(`http://other.example.test:${target.port}/landed`);
    expect(resolve.calls).toEqual(['api.example.test', 'other.example.test']);
    // Another origin: credentials stay behind, harmless headers go along.
    const seen = target.requests[0]?.headers;
    expect(seen?.['authorization']).toBeUndefined();
    expect(seen?.['x-api-key']).toBeUndefined();
    expect(seen?.['accept']).toBe('application/json');
  });

  it.each([
    ['a loopback literal outside the opt-in', 'http://127.0.0.2:TARGET/', {}],
    ['the metadata address', 'http://169.254.169.254/latest/meta-data/iam/', {}],
    ['a hex loopback literal outside the opt-in', 'http://0x7f000002:TARGET/', {}],
    ['IPv6 loopback', 'http://[::1]:TARGET/', {}],
    ['a name that resolves to a forbidden address', 'http://other.example.test:TARGET/', {}],
    ['a host that is not allow-listed', 'http://not-allowed.example.test:TARGET/', {}],
    ['a non-http scheme', 'file:///etc/passwd', {}],
  ])('refuses a redirect to %s', async (_label, template, overrides: Partial<SafeHttpClientOptions>) => {
    const target = await startServer(ok);
    servers.push(target);
    const start = await startServer((_request, response) => {
      response.writeHead(301, { location: template.replace('TARGET', String(target.port)) });
      response.end();
    });
    servers.push(start);
    const resolve = fakeResolver({ 'api.example.test': ['127.0.0.1'], 'other.example.test': ['10.0.0.7'] });
    const error = await rejection(
      client({ resolve, ...overrides }).request({
        method: 'GET',
        url: `http://api.example.test:${start.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.TOOL_URL_REJECTED);
    expect(start.requests).toHaveLength(1);
    expect(target.connections).toBe(0);
  });

  it.each([
    [303, 'POST'],
    [303, 'PUT'],
    [302, 'POST'],
    [301, 'POST'],
  ])('turns a %s after %s into GET without the body or its Content-* headers', async (status, method) => {
    const start = await startServer((request, response, body) => {
      if (request.url === '/start') {
        response.writeHead(status, { location: '/landed' });
        response.end();
      } else ok(request, response, body);
    });
    servers.push(start);
    const response = await client().request({
      method,
      url: `http://api.example.test:${start.port}/start`,
      headers: [
        ['Content-Type', 'text/plain'],
        ['Content-Language', 'en'],
        ['X-Kept', 'same-origin'],
      ],
      body: 'payload',
    });
    expect(response.status).toBe(200);
    expect(start.requests.map((request) => [request.method, request.url, request.body])).toEqual([
      [method, '/start', 'payload'],
      ['GET', '/landed', ''],
    ]);
    const second = start.requests[1]?.headers;
    expect(second?.['content-type']).toBeUndefined();
    expect(second?.['content-language']).toBeUndefined();
    expect(second?.['content-length']).toBeUndefined();
    expect(second?.['x-kept']).toBe('same-origin');
  });

  it('keeps HEAD on a 303', async () => {
    const start = await startServer((request, response, body) => {
      if (request.url === '/start') {
        response.writeHead(303, { location: '/landed' });
        response.end();
      } else ok(request, response, body);
    });
    servers.push(start);
    const response = await client().request({
      method: 'HEAD',
      url: `http://api.example.test:${start.port}/start`,
      headers: [],
    });
    expect(response).toMatchObject({ status: 200, body: '', redirects: 1 });
    expect(start.requests.map((request) => request.method)).toEqual(['HEAD', 'HEAD']);
  });

  it('keeps method and body on 307 and 308', async () => {
    const start = await startServer((request, response, body) => {
      if (request.url === '/start') {
        response.writeHead(307, { location: '/next' });
        response.end();
      } else if (request.url === '/next') {
        response.writeHead(308, { location: '/final' });
        response.end();
      } else ok(request, response, body);
    });
    servers.push(start);
    const response = await client().request({
      method: 'PUT',
      url: `http://api.example.test:${start.port}/start`,
      headers: [['Content-Type', 'text/plain']],
      body: 'payload',
    });
    expect(response.redirects).toBe(2);
    expect(start.requests.map((request) => [request.method, request.url, request.body])).toEqual([
      ['PUT', '/start', 'payload'],
      ['PUT', '/next', 'payload'],
      ['PUT', '/final', 'payload'],
    ]);
  });

  it('fails after too many redirects, and returns the 3xx itself when following none', async () => {
    const loop = await startServer((_request, response) => {
      response.writeHead(302, { location: '/again' });
      response.end();
    });
    servers.push(loop);
    const url = `http://api.example.test:${loop.port}/`;
    const error = await rejection(client({ maxRedirects: 2 }).request({ method: 'GET', url, headers: [] }));
    expect(error.code).toBe(ErrorCodes.HTTP_REQUEST_FAILED);
    expect(error.details).toEqual({ reason: 'too_many_redirects' });
    expect(loop.requests).toHaveLength(3);
    const unfollowed = await client({ maxRedirects: 0 }).request({ method: 'GET', url, headers: [] });
    expect(unfollowed.status).toBe(302);
    expect(unfollowed.headers['location']).toBe('/again');
  });
});

describe('safe HTTP client: limits', () => {
  const big = (_request: http.IncomingMessage, response: http.ServerResponse) => {
    // 32 MiB, far more than the socket buffers hold: the server only finishes if the client reads it all.
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let sent = 0;
    const write = () => {
      while (sent < 512) {
        sent += 1;
        if (!response.write(chunk)) {
          response.once('drain', write);
          return;
        }
      }
      response.end();
    };
    write();
  };

  it('keeps at most maxResponseBytes and stops reading', async () => {
    const server = await startServer(big);
    servers.push(server);
    const response = await client({ maxResponseBytes: 1000 }).request({
      method: 'GET',
      url: `http://api.example.test:${server.port}/`,
      headers: [],
    });
    expect(response.truncated).toBe(true);
    expect(response.body).toBe('a'.repeat(1000));
    expect(await server.lastFinished).toBe(false);
  });

  it('fails with HTTP.RESPONSE_TOO_LARGE when configured to', async () => {
    const server = await startServer(big);
    servers.push(server);
    const error = await rejection(
      client({ maxResponseBytes: 1000, onResponseTooLarge: 'fail' }).request({
        method: 'GET',
        url: `http://api.example.test:${server.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.HTTP_RESPONSE_TOO_LARGE);
  });

  it('returns a body of exactly the cap untruncated', async () => {
    const server = await startServer((_request, response) => response.end('b'.repeat(1000)));
    servers.push(server);
    const response = await client({ maxResponseBytes: 1000 }).request({
      method: 'GET',
      url: `http://api.example.test:${server.port}/`,
      headers: [],
    });
    expect(response).toMatchObject({ truncated: false, body: 'b'.repeat(1000) });
  });

  it('times out a server that never answers, as a retryable failure for GET', async () => {
    const silent = await startServer(() => undefined);
    servers.push(silent);
    const started = Date.now();
    const error = await rejection(
      client({ timeoutMs: 200 }).request({
        method: 'GET',
        url: `http://api.example.test:${silent.port}/`,
        headers: [],
      }),
    );
    expect(error.code).toBe(ErrorCodes.HTTP_REQUEST_FAILED);
    expect(error.details).toEqual({ reason: 'timeout' });
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('times out a body that stalls half-way, and POST timeouts are not retryable', async () => {
    const stalling = await startServer((_request, response) => {
      response.writeHead(200, { 'content-length': '100' });
      response.write('partial');
    });
    servers.push(stalling);
    const error = await rejection(
      client({ timeoutMs: 200 }).request({
        method: 'POST',
        url: `http://api.example.test:${stalling.port}/`,
        headers: [],
        body: 'x',
      }),
    );
    expect(error.details).toEqual({ reason: 'timeout' });
    expect(error.retryable).toBe(false);
  });

  it('stops when the caller aborts', async () => {
    const silent = await startServer(() => undefined);
    servers.push(silent);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(
      client().request({
        method: 'GET',
        url: `http://api.example.test:${silent.port}/`,
        headers: [],
        signal: controller.signal,
      }),
    );
    expect(error.details).toEqual({ reason: 'aborted' });
  });

  it('refuses a malformed allow-list or CIDR at construction', () => {
    expect(() => createSafeHttpClient({ allowHosts: ['https://x.example'], allowHttp: false })).toThrow(
      /not hosts/,
    );
    expect(() =>
      createSafeHttpClient({
        allowHosts: ['x.example'],
        allowHttp: false,
        allowPrivateCidrs: ['10.0.0.0/99'],
      }),
    ).toThrow(/malformed/);
  });
});
