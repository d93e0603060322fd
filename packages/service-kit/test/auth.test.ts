import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { ErrorCodes, HttpErrorBody, type TokenRole } from '@tandem/contracts';
import {
  createHttpServer,
  createLogger,
  generateApiToken,
  hashApiToken,
  mayActAsAgent,
  mayActOnTask,
  maySeeApproverGroup,
  principalRef,
  requirePrincipal,
  type HttpServer,
  type Principal,
} from '../src/index.js';

/** Tokens the fake lookup knows, by hash (what the database would hold). */
function tokenTable(): {
  add(role: TokenRole, options?: { agents?: string[]; name?: string }): string;
  revoke(token: string): void;
  lookups: string[];
  findPrincipal(tokenHash: string): Promise<Principal | null>;
} {
  const rows = new Map<string, Principal>();
  const lookups: string[] = [];
  let next = 0;
  return {
    add(role, options = {}) {
      const token = generateApiToken();
      next += 1;
      rows.set(hashApiToken(token), {
        tokenId: `00000000-0000-4000-8000-${String(next).padStart(12, '0')}`,
        name: options.name ?? `${role}-${next}`,
        role,
        agents: options.agents ?? [],
        groups: [],
      });
      return token;
    },
    revoke(token) {
      rows.delete(hashApiToken(token));
    },
    lookups,
    async findPrincipal(tokenHash) {
      lookups.push(tokenHash);
      return rows.get(tokenHash) ?? null;
    },
  };
}

function memoryLog(): { log: ReturnType<typeof createLogger>; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return {
    log: createLogger({ service: 'auth-test', level: 'trace', destination }),
    text: () => chunks.join(''),
  };
}

function errorOf(payload: string): { code: string; message: string } {
  const parsed = HttpErrorBody.safeParse(JSON.parse(payload));
  if (!parsed.success) throw new Error(`not an HTTP error body: ${payload}`);
  return parsed.data.error;
}

const servers: HttpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function server(): {
  app: HttpServer;
  tokens: ReturnType<typeof tokenTable>;
  handled: string[];
  logText: () => string;
} {
  const tokens = tokenTable();
  const { log, text } = memoryLog();
  const handled: string[] = [];
  const app = createHttpServer({
    log,
    registry: new Registry(),
    readiness: [],
    auth: { findPrincipal: (tokenHash) => tokens.findPrincipal(tokenHash) },
  });
  servers.push(app);
  app.get('/v1/anyone', async (request) => {
    handled.push('anyone');
    const principal = requirePrincipal(request);
    return { name: principal.name, role: principal.role };
  });
  app.post(
    '/v1/approvers',
    { config: { roles: ['approver'] }, schema: { body: z.strictObject({ ok: z.boolean() }) } },
    async () => {
      handled.push('approvers');
      return { ok: true };
    },
  );
  app.post('/v1/hook', { config: { public: true } }, async (request) => {
    handled.push('hook');
    return { principal: request.principal };
  });
  app.get('/v1/hook/who', { config: { public: true } }, async (request) => requirePrincipal(request));
  app.get('/v1/boom', async (request) => {
    request.log.warn({ headers: request.headers }, 'about to fail');
    throw new Error('something broke');
  });
  return { app, tokens, handled, logText: text };
}

describe('API tokens', () => {
  it('generates tdm_ + 32 random bytes in base64url, different every time', () => {
    const token = generateApiToken();
    expect(token).toMatch(/^tdm_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(4), 'base64url')).toHaveLength(32);
    expect(generateApiToken()).not.toBe(token);
  });

  it('stores a token as the sha256 hex of its text', () => {
    expect(hashApiToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const token = generateApiToken();
    expect(hashApiToken(token)).toBe(createHash('sha256').update(token).digest('hex'));
  });

  it('lets a submitter act only for its listed agents, `*` for any, and an admin for any', () => {
    const base = { tokenId: 'x', name: 'n', groups: [] };
    expect(mayActAsAgent({ ...base, role: 'submitter', agents: ['billing'] }, 'billing')).toBe(true);
    expect(mayActAsAgent({ ...base, role: 'submitter', agents: ['billing'] }, 'hr')).toBe(false);
    expect(mayActAsAgent({ ...base, role: 'submitter', agents: ['*'] }, 'hr')).toBe(true);
    expect(mayActAsAgent({ ...base, role: 'approver', agents: [] }, 'hr')).toBe(false);
    expect(mayActAsAgent({ ...base, role: 'admin', agents: [] }, 'hr')).toBe(true);
  });
});

describe('who may act on a task', () => {
  const principal = (role: TokenRole, options: { agents?: string[]; groups?: string[] } = {}): Principal => ({
    tokenId: randomUUID(),
    name: role,
    role,
    agents: options.agents ?? [],
    groups: options.groups ?? [],
  });
  const task = (options: Partial<Parameters<typeof mayActOnTask>[1]> = {}) => ({
    agentId: null,
    submittedBy: null,
    approverGroups: [],
    ...options,
  });

  it('names a principal by its token id, not its name', () => {
    const caller = principal('submitter');
    expect(principalRef(caller)).toBe(`token:${caller.tokenId}`);
  });

  it("gives a task with an agent to the agent's submitter tokens and `*` tokens, not to other agents'", () => {
    const billing = task({ agentId: 'billing', submittedBy: 'token:someone-else' });
    expect(mayActOnTask(principal('submitter', { agents: ['billing'] }), billing)).toBe(true);
    expect(mayActOnTask(principal('submitter', { agents: ['hr', 'billing'] }), billing)).toBe(true);
    expect(mayActOnTask(principal('submitter', { agents: ['*'] }), billing)).toBe(true);
    expect(mayActOnTask(principal('submitter', { agents: ['hr'] }), billing)).toBe(false);
    expect(mayActOnTask(principal('submitter'), billing)).toBe(false);
  });

  it('gives a task without an agent to its submitting token, `*` tokens and admins only', () => {
    const submitter = principal('submitter', { agents: ['billing'] });
    const own = task({ submittedBy: principalRef(submitter) });
    expect(mayActOnTask(submitter, own)).toBe(true);
    expect(mayActOnTask(principal('submitter', { agents: ['billing'] }), own)).toBe(false);
    expect(mayActOnTask(principal('submitter', { agents: ['*'] }), own)).toBe(true);
    expect(mayActOnTask(principal('admin'), own)).toBe(true);
    // From NATS: no submitting token.
    expect(mayActOnTask(principal('submitter', { agents: ['billing'] }), task())).toBe(false);
    expect(mayActOnTask(principal('submitter', { agents: ['*'] }), task())).toBe(true);
  });

  it('lets approvers reach a task only through approval requests of groups they see', () => {
    const finance = principal('approver', { groups: ['finance'] });
    const groupless = principal('approver');
    expect(mayActOnTask(finance, task({ approverGroups: ['security', 'finance'] }))).toBe(true);
    expect(mayActOnTask(finance, task({ approverGroups: ['security', null] }))).toBe(false);
    expect(mayActOnTask(groupless, task({ approverGroups: ['security', null] }))).toBe(true);
    expect(mayActOnTask(groupless, task({ approverGroups: ['finance'] }))).toBe(false);
    expect(mayActOnTask(groupless, task({ agentId: 'billing' }))).toBe(false);
    // A submitter never reaches a task through approval requests.
    expect(mayActOnTask(principal('submitter'), task({ approverGroups: [null] }))).toBe(false);
    // Agents on an approver token (not creatable through the API) grant nothing.
    expect(mayActOnTask(principal('approver', { agents: ['*'] }), task({ agentId: 'billing' }))).toBe(false);
  });

  it('shows approver groups to their approvers, requests without a group to approvers without groups', () => {
    const finance = principal('approver', { groups: ['finance', 'ops'] });
    expect(maySeeApproverGroup(finance, 'finance')).toBe(true);
    expect(maySeeApproverGroup(finance, 'ops')).toBe(true);
    expect(maySeeApproverGroup(finance, 'security')).toBe(false);
    expect(maySeeApproverGroup(finance, null)).toBe(false);
    expect(maySeeApproverGroup(principal('approver'), null)).toBe(true);
    expect(maySeeApproverGroup(principal('approver'), 'finance')).toBe(false);
    expect(maySeeApproverGroup(principal('admin'), 'finance')).toBe(true);
    expect(maySeeApproverGroup(principal('admin'), null)).toBe(true);
    expect(maySeeApproverGroup(principal('submitter', { agents: ['*'] }), null)).toBe(false);
  });
});

describe('bearer-token auth of createHttpServer', () => {
  it('answers 401 with www-authenticate and does not run the route without a token', async () => {
    const { app, handled } = server();
    const response = await app.inject({ method: 'GET', url: '/v1/anyone' });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toBe('Bearer');
    expect(errorOf(response.payload)).toMatchObject({
      code: ErrorCodes.AUTH_UNAUTHENTICATED,
      message: expect.stringContaining('Authorization: Bearer'),
    });
    expect(handled).toEqual([]);
  });

  it('answers 401 for another scheme, a malformed header and an unknown token', async () => {
    const { app, tokens, handled } = server();
    const token = tokens.add('admin');
    for (const authorization of [
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      token,
      'Bearer',
      'Bearer a b',
    ]) {
      const response = await app.inject({ method: 'GET', url: '/v1/anyone', headers: { authorization } });
      expect(response.statusCode, authorization).toBe(401);
      expect(errorOf(response.payload).message).toContain('must be "Bearer <token>"');
    }
    const unknown = await app.inject({
      method: 'GET',
      url: '/v1/anyone',
      headers: { authorization: `Bearer ${generateApiToken()}` },
    });
    expect(unknown.statusCode).toBe(401);
    expect(errorOf(unknown.payload)).toEqual({
      code: ErrorCodes.AUTH_UNAUTHENTICATED,
      message: 'the token is unknown or revoked',
      retryable: false,
    });
    expect(handled).toEqual([]);
  });

  it('accepts a valid token with any case of the scheme and gives the route its principal', async () => {
    const { app, tokens } = server();
    const token = tokens.add('submitter', { name: 'ci' });
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const response = await app.inject({
        method: 'GET',
        url: '/v1/anyone',
        headers: { authorization: `${scheme} ${token}` },
      });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual({ name: 'ci', role: 'submitter' });
    }
  });

  it('refuses a token as soon as the lookup no longer finds it (no cache)', async () => {
    const { app, tokens } = server();
    const token = tokens.add('approver');
    const call = () =>
      app.inject({ method: 'GET', url: '/v1/anyone', headers: { authorization: `Bearer ${token}` } });
    expect((await call()).statusCode).toBe(200);
    tokens.revoke(token);
    expect((await call()).statusCode).toBe(401);
    expect(tokens.lookups).toHaveLength(2);
  });

  it('answers 403 to a role the route does not allow and lets admin through', async () => {
    const { app, tokens, handled } = server();
    const submitter = tokens.add('submitter');
    const forbidden = await app.inject({
      method: 'POST',
      url: '/v1/approvers',
      headers: { authorization: `Bearer ${submitter}` },
      payload: { ok: true },
    });
    expect(forbidden.statusCode).toBe(403);
    expect(errorOf(forbidden.payload)).toMatchObject({
      code: ErrorCodes.AUTH_FORBIDDEN,
      message: 'a submitter token may not POST /v1/approvers: it needs approver',
    });
    expect(handled).toEqual([]);
    for (const role of ['approver', 'admin'] as const) {
      const response = await app.inject({
        method: 'POST',
        url: '/v1/approvers',
        headers: { authorization: `Bearer ${tokens.add(role)}` },
        payload: { ok: true },
      });
      expect(response.statusCode, role).toBe(200);
    }
  });

  it('checks the token before the body: an unauthenticated bad body is 401, not 400', async () => {
    const { app } = server();
    const response = await app.inject({ method: 'POST', url: '/v1/approvers', payload: { nope: 1 } });
    expect(response.statusCode).toBe(401);
  });

  it('keeps the probes and public routes open, and answers unknown routes 401 without a token', async () => {
    const { app, tokens, handled } = server();
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
    const hook = await app.inject({ method: 'POST', url: '/v1/hook', payload: {} });
    expect(hook.statusCode).toBe(200);
    expect(hook.json()).toEqual({ principal: null });
    expect(handled).toEqual(['hook']);
    // A public route that still asks for a principal gets 401, not a crash.
    const who = await app.inject({ method: 'GET', url: '/v1/hook/who' });
    expect(who.statusCode).toBe(401);
    expect(errorOf(who.payload).code).toBe(ErrorCodes.AUTH_UNAUTHENTICATED);
    expect(tokens.lookups).toEqual([]);

    const hidden = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
    expect(hidden.statusCode).toBe(401);
    const notFound = await app.inject({
      method: 'GET',
      url: '/v1/nothing-here',
      headers: { authorization: `Bearer ${tokens.add('submitter')}` },
    });
    expect(notFound.statusCode).toBe(404);
  });

  it('never writes a token to the log, whatever the request does', async () => {
    const { app, tokens, logText } = server();
    const valid = tokens.add('admin');
    const unknown = generateApiToken();
    const failed = await app.inject({
      method: 'GET',
      url: '/v1/boom',
      headers: { authorization: `Bearer ${valid}` },
    });
    expect(failed.statusCode).toBe(500);
    await app.inject({ method: 'GET', url: '/v1/anyone', headers: { authorization: `Bearer ${unknown}` } });
    await app.inject({ method: 'GET', url: '/v1/anyone', headers: { authorization: `Basic ${valid}` } });
    const text = logText();
    // The log was written (the route's warning and the 500), so the absence below means something.
    expect(text).toContain('about to fail');
    expect(text).toContain('request failed');
    expect(text).toContain('[redacted]');
    expect(text).not.toContain(valid);
    expect(text).not.toContain(valid.slice(4));
    expect(text).not.toContain(unknown);
  });
});
