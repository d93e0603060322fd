import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createDb, migrate, type Db } from '@tandem/db';
import { hashApiToken } from '@tandem/service-kit';
import { createTestDatabase, createTestToken, type TestDatabase } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeRole, tokenCount, tokenWhere } from './helpers/rows.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

let database: TestDatabase;
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: async (url) => void (await migrate({ url })) });
  db = createDb({ url: database.url, poolMax: 2 });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

/** Runs the fixed command from the repository root, as an operator would. */
function tandem(
  args: string[],
  env: Record<string, string> = { DATABASE_URL: database.url },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('pnpm', ['--silent', 'tandem', ...args], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('pnpm tandem token', () => {
  it('creates a token, printing it once on the last line and storing only its hash', async () => {
    const run = await tandem([
      'token',
      'create',
      '--role',
      'submitter',
      '--name',
      'billing ci',
      '--agent',
      'billing',
      '--agent=invoices',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const token = run.stdout.trimEnd().split('\n').at(-1) ?? '';
    expect(token).toMatch(/^tdm_[A-Za-z0-9_-]{43}$/);
    const row = await tokenWhere(db, { tokenHash: hashApiToken(token) });
    expect(row).toMatchObject({
      name: 'billing ci',
      role: 'submitter',
      agentIds: ['billing', 'invoices'],
      createdBy: 'cli',
      revokedAt: null,
    });
    expect(run.stdout).toContain(row.id);

    const list = await tandem(['token', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(row.id);
    expect(list.stdout).toContain('"billing ci"');
    expect(list.stdout).toContain('agents billing,invoices');
    expect(list.stdout).not.toContain(token);
    expect(list.stdout).not.toContain(row.tokenHash);
  });

  it('revokes a token (twice is fine), fails for an unknown one and for the last admin', async () => {
    const approver = await createTestToken(database.url, { role: 'approver', groups: ['finance'] });
    const first = await tandem(['token', 'revoke', approver.id]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('revoked');
    const row = await tokenWhere(db, { id: approver.id });
    expect(row.revokedAt).not.toBeNull();
    expect((await tandem(['token', 'revoke', approver.id])).code).toBe(0);

    const unknown = await tandem(['token', 'revoke', randomUUID()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/not found/);

    await revokeRole(db, 'admin');
    const admin = await createTestToken(database.url, { role: 'admin' });
    const last = await tandem(['token', 'revoke', admin.id]);
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/last admin token/);
    expect((await tokenWhere(db, { id: admin.id })).revokedAt).toBeNull();
  });

  it('answers usage errors with exit code 2 and changes nothing', async () => {
    const before = await tokenCount(db);
    for (const args of [
      [],
      ['tokens', 'list'],
      ['token'],
      ['token', 'rotate'],
      ['token', 'create', '--role', 'submitter'],
      ['token', 'create', '--role', 'owner', '--name', 'x'],
      ['token', 'create', '--role', 'submitter', '--name'],
      ['token', 'create', '--role', 'submitter', '--name', 'x', '--colour', 'blue'],
      ['token', 'create', '--role', 'submitter', '--role', 'admin', '--name', 'x'],
      ['token', 'create', '--role', 'submitter', '--name', 'x', 'extra'],
      ['token', 'create', '--role', 'approver', '--name', 'x', '--agent', 'billing'],
      ['token', 'list', '--all'],
      ['token', 'revoke'],
      ['token', 'revoke', 'not-a-uuid'],
    ]) {
      const run = await tandem(args);
      expect(run.code, args.join(' ')).toBe(args.length === 0 ? 0 : 2);
      if (args.length > 0) expect(run.stderr, args.join(' ')).toContain('usage:');
    }
    expect(await tokenCount(db)).toBe(before);
  }, 60_000);

  it('says what to do when DATABASE_URL is not set', async () => {
    const run = await tandem(['token', 'list'], {});
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('DATABASE_URL is not set');
    expect(run.stderr).toContain('/v1/tokens');
  });
});
