import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { CreatedToken, ErrorCodes, TokenView } from '@tandem/contracts';
import { createDb, migrate, type Db } from '@tandem/db';
import {
  createHttpServer,
  createLogger,
  createMetrics,
  databaseAuth,
  hashApiToken,
  type HttpServer,
} from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { registerTokenRoutes } from '../src/http/tokens.js';
import { BOOTSTRAP_ADMIN_NAME, ensureBootstrapAdmin } from '../src/tokens.js';
import { auditRows, deleteTokens, tokenCount, tokenWhere } from './helpers/rows.js';

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
const TokenList = z.object({ tokens: z.array(TokenView) });

let database: TestDatabase;
let db: Db;
let app: HttpServer;
let logText: () => string;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 4 });
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  logText = () => chunks.join('');
  const log = createLogger({ service: 'approval', level: 'trace', destination });
  app = createHttpServer({
    log,
    registry: createMetrics('approval').registry,
    readiness: [],
    auth: databaseAuth(db),
  });
  registerTokenRoutes(app, { db });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await db?.close();
  await database?.drop();
});

// Every test starts from an empty token table and makes the tokens it needs.
beforeEach(async () => {
  await deleteTokens(db);
});

async function call(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  token: string | null,
  payload?: unknown,
): Promise<{ status: number; body: unknown; headers: Record<string, unknown> }> {
  const response = await app.inject({
    method,
    url,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  return { status: response.statusCode, body: response.json(), headers: response.headers };
}

function codeOf(body: unknown): string {
  return ErrorBody.parse(body).error.code;
}

describe('token routes', () => {
  it('lets an admin create a submitter token, shown once, that then authenticates', async () => {
    const admin = await createTestToken(database.url, { role: 'admin', name: 'ops' });
    const created = await call('POST', '/v1/tokens', admin.token, {
      name: 'billing-ci',
      role: 'submitter',
      agents: ['billing', 'billing'],
    });
    expect(created.status).toBe(201);
    const view = CreatedToken.parse(created.body);
    expect(view).toMatchObject({
      name: 'billing-ci',
      role: 'submitter',
      agents: ['billing'],
      groups: [],
      createdBy: 'token:ops',
      revokedAt: null,
    });
    expect(view.token).toMatch(/^tdm_[A-Za-z0-9_-]{43}$/);
    // Stored as its sha256, never as text.
    const row = await tokenWhere(db, { id: view.id });
    expect(row.tokenHash).toBe(createHash('sha256').update(view.token).digest('hex'));
    expect(JSON.stringify(row)).not.toContain(view.token);
    // The new token authenticates (403: known, but not an admin), where an unknown one is 401.
    expect((await call('GET', '/v1/tokens', view.token)).status).toBe(403);
    expect((await call('GET', '/v1/tokens', `tdm_${randomUUID()}`)).status).toBe(401);
    const [audit] = await auditRows(db, { subjectId: view.id, actions: ['token.created'] });
    expect(audit?.actor).toBe('token:ops');
  });

  it('lists tokens without secrets or hashes', async () => {
    const admin = await createTestToken(database.url, { role: 'admin' });
    const approver = await createTestToken(database.url, { role: 'approver', groups: ['finance'] });
    const listed = await call('GET', '/v1/tokens', admin.token);
    expect(listed.status).toBe(200);
    const { tokens } = TokenList.parse(listed.body);
    expect(tokens.map((token) => token.id).sort()).toEqual([admin.id, approver.id].sort());
    expect(tokens.find((token) => token.id === approver.id)).toMatchObject({
      role: 'approver',
      groups: ['finance'],
    });
    const text = JSON.stringify(listed.body);
    for (const secret of [
      admin.token,
      approver.token,
      hashApiToken(admin.token),
      hashApiToken(approver.token),
    ])
      expect(text).not.toContain(secret);
    expect(text).not.toContain('tokenHash');
  });

  it('refuses non-admin tokens (403) and missing, unknown or revoked tokens (401), creating nothing', async () => {
    const submitter = await createTestToken(database.url, { role: 'submitter', agents: ['*'] });
    const approver = await createTestToken(database.url, { role: 'approver' });
    const revokedAdmin = await createTestToken(database.url, { role: 'admin', revoked: true });
    const body = { name: 'sneaky', role: 'admin' };
    for (const token of [submitter.token, approver.token]) {
      const response = await call('POST', '/v1/tokens', token, body);
      expect(response.status).toBe(403);
      expect(codeOf(response.body)).toBe(ErrorCodes.AUTH_FORBIDDEN);
      expect((await call('DELETE', `/v1/tokens/${submitter.id}`, token)).status).toBe(403);
    }
    for (const token of [null, revokedAdmin.token, `tdm_${'x'.repeat(43)}`]) {
      const response = await call('POST', '/v1/tokens', token, body);
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer');
      expect(codeOf(response.body)).toBe(ErrorCodes.AUTH_UNAUTHENTICATED);
      expect((await call('DELETE', `/v1/tokens/${submitter.id}`, token)).status).toBe(401);
    }
    expect(await tokenCount(db)).toBe(3);
    expect(await tokenCount(db, { revoked: true })).toBe(1);
  });

  it('rejects unknown fields, agents on non-submitters and groups on non-approvers (400)', async () => {
    const admin = await createTestToken(database.url, { role: 'admin' });
    for (const body of [
      { name: 'x', role: 'submitter', extra: true },
      { name: 'x', role: 'approver', agents: ['billing'] },
      { name: 'x', role: 'submitter', groups: ['finance'] },
      { name: 'x', role: 'admin', agents: ['*'] },
      { name: 'x', role: 'owner' },
      { name: '', role: 'submitter' },
    ]) {
      const response = await call('POST', '/v1/tokens', admin.token, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(codeOf(response.body)).toBe(ErrorCodes.HTTP_BAD_REQUEST);
    }
    expect(await tokenCount(db)).toBe(1);
  });

  it('revokes a token at once; a second revoke returns the same view; an unknown id is 404', async () => {
    const admin = await createTestToken(database.url, { role: 'admin', name: 'ops' });
    const approver = await createTestToken(database.url, { role: 'approver' });
    const probe = await createTestToken(database.url, { role: 'submitter' });
    // The approver is accepted until revoked (403 here proves it authenticated).
    expect((await call('GET', '/v1/tokens', approver.token)).status).toBe(403);
    const first = await call('DELETE', `/v1/tokens/${approver.id}`, admin.token);
    expect(first.status).toBe(200);
    const view = TokenView.parse(first.body);
    expect(view.revokedAt).not.toBeNull();
    expect((await call('GET', '/v1/tokens', approver.token)).status).toBe(401);
    const second = await call('DELETE', `/v1/tokens/${approver.id}`, admin.token);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    const unknown = await call('DELETE', `/v1/tokens/${randomUUID()}`, admin.token);
    expect(unknown.status).toBe(404);
    expect(codeOf(unknown.body)).toBe(ErrorCodes.TOKEN_NOT_FOUND);
    expect((await call('DELETE', '/v1/tokens/not-a-uuid', admin.token)).status).toBe(400);
    const audit = await auditRows(db, { subjectId: approver.id, actions: ['token.revoked'] });
    expect(audit.map((entry) => entry.actor)).toEqual(['token:ops']);
    expect((await tokenWhere(db, { id: probe.id })).revokedAt).toBeNull();
  });

  it('refuses to revoke the last admin token (409), allows it once another admin exists', async () => {
    const admin = await createTestToken(database.url, { role: 'admin' });
    const last = await call('DELETE', `/v1/tokens/${admin.id}`, admin.token);
    expect(last.status).toBe(409);
    expect(codeOf(last.body)).toBe(ErrorCodes.HTTP_CONFLICT);
    expect((await call('GET', '/v1/tokens', admin.token)).status).toBe(200);
    const second = CreatedToken.parse(
      (await call('POST', '/v1/tokens', admin.token, { name: 'b', role: 'admin' })).body,
    );
    expect((await call('DELETE', `/v1/tokens/${admin.id}`, second.token)).status).toBe(200);
    expect((await call('DELETE', `/v1/tokens/${second.id}`, second.token)).status).toBe(409);
  });

  it('never lets two admins revoking each other at once leave no admin token', async () => {
    const first = await createTestToken(database.url, { role: 'admin' });
    const second = await createTestToken(database.url, { role: 'admin' });
    const results = await Promise.all([
      call('DELETE', `/v1/tokens/${second.id}`, first.token),
      call('DELETE', `/v1/tokens/${first.id}`, second.token),
    ]);
    // One revoke wins. The other is refused either way: 409 when it took the lock while its own token
    // still counted, 401 when the winner had already committed before it authenticated (a loaded host).
    const [won, lost] = results.map((result) => result.status).sort();
    expect(won).toBe(200);
    expect([401, 409]).toContain(lost);
    expect(await tokenCount(db, { role: 'admin', revoked: false })).toBe(1);
  });

  it('writes no token to the log', async () => {
    const admin = await createTestToken(database.url, { role: 'admin' });
    const created = CreatedToken.parse(
      (await call('POST', '/v1/tokens', admin.token, { name: 'logged?', role: 'submitter' })).body,
    );
    await call('DELETE', `/v1/tokens/${created.id}`, admin.token);
    await call('GET', '/v1/tokens', created.token);
    await ensureBootstrapAdmin(db, { log: createLogger({ service: 'approval', level: 'silent' }) });
    const text = logText();
    expect(text).not.toContain(admin.token);
    expect(text).not.toContain(created.token);
  });
});

describe('ensureBootstrapAdmin', () => {
  function memoryLog(): { log: ReturnType<typeof createLogger>; text: () => string } {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk.toString('utf8'));
        callback();
      },
    });
    return {
      log: createLogger({ service: 'approval', level: 'trace', destination }),
      text: () => chunks.join(''),
    };
  }

  it('creates an admin token once when there is none, returns it, and never logs it', async () => {
    const { log, text } = memoryLog();
    const first = await ensureBootstrapAdmin(db, { log });
    expect(first.created).toBe(true);
    const token = first.token ?? '';
    expect(token).toMatch(/^tdm_/);
    const row = await tokenWhere(db, { tokenHash: hashApiToken(token) });
    expect(row).toMatchObject({ role: 'admin', name: BOOTSTRAP_ADMIN_NAME, revokedAt: null });
    expect(await ensureBootstrapAdmin(db, { log })).toEqual({ created: false });
    expect(await tokenCount(db)).toBe(1);
    expect(text()).toContain(row.id);
    expect(text()).not.toContain(token);
  });

  it('creates no admin token when a non-revoked one exists', async () => {
    await createTestToken(database.url, { role: 'admin', revoked: true });
    await createTestToken(database.url, { role: 'admin' });
    expect(await ensureBootstrapAdmin(db, { log: memoryLog().log })).toEqual({ created: false });
    expect(await tokenCount(db)).toBe(2);
  });

  it('makes one token of TANDEM_ADMIN_TOKEN, idempotently, even beside other admins', async () => {
    await createTestToken(database.url, { role: 'admin' });
    const value = `my-own-admin-token-${'x'.repeat(20)}`;
    const runs = await Promise.all([
      ensureBootstrapAdmin(db, { token: value, log: memoryLog().log }),
      ensureBootstrapAdmin(db, { token: value, log: memoryLog().log }),
    ]);
    expect(runs.map((run) => run.created).sort()).toEqual([false, true]);
    expect(runs.every((run) => run.token === undefined)).toBe(true);
    const row = await tokenWhere(db, { tokenHash: hashApiToken(value) });
    expect(row).toMatchObject({ role: 'admin', name: BOOTSTRAP_ADMIN_NAME, revokedAt: null });
    // It authenticates as an admin.
    expect((await call('GET', '/v1/tokens', value)).status).toBe(200);
  });

  it('refuses a short TANDEM_ADMIN_TOKEN, a revoked one and a non-admin token', async () => {
    const log = memoryLog().log;
    await expect(ensureBootstrapAdmin(db, { token: 'short', log })).rejects.toThrow(/at least 32 characters/);
    await expect(
      ensureBootstrapAdmin(db, { token: `${'a'.repeat(20)} ${'b'.repeat(20)}`, log }),
    ).rejects.toThrow(/without spaces/);
    const revoked = await createTestToken(database.url, { role: 'admin', revoked: true });
    await expect(ensureBootstrapAdmin(db, { token: revoked.token, log })).rejects.toThrow(/never revived/);
    const submitter = await createTestToken(database.url, { role: 'submitter' });
    await expect(ensureBootstrapAdmin(db, { token: submitter.token, log })).rejects.toThrow(
      /not an admin token/,
    );
    expect(await tokenCount(db)).toBe(2);
  });
});
