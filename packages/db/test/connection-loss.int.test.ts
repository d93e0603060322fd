import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/test-database.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/connection-loss.ts', import.meta.url));

let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database?.drop();
});

interface Outcome {
  scenario: string;
  error: { message: string; code: unknown; retryable: unknown } | null;
  next: boolean;
}

function runFixture(url: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('a database connection killed under a process', () => {
  it('never crashes it: a held transaction fails retryably, an idle one is dropped, and the next transaction works', async () => {
    const result = await runFixture(database.url);
    expect(result.stderr).not.toContain('Connection terminated unexpectedly');
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('done');
    const outcomes = new Map<string, Outcome>();
    for (const line of lines.slice(0, -1)) {
      const outcome: Outcome = JSON.parse(line);
      outcomes.set(outcome.scenario, outcome);
    }
    // A transaction or a statement that lost its connection throws a typed, retryable error (the
    // consumer naks it).
    for (const name of ['held-idle', 'held-active', 'statement']) {
      const outcome = outcomes.get(name);
      expect(outcome?.error, name).toMatchObject({ code: 'DB.CONNECTION_LOST', retryable: true });
      expect(outcome?.next, name).toBe(true);
    }
    // A connection killed while idle in the pool costs nothing: it is dropped and replaced.
    expect(outcomes.get('pool-idle')).toEqual({ scenario: 'pool-idle', error: null, next: true });
  }, 40_000);
});
