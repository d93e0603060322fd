import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function run(
  command: string,
  args: string[],
  env: Record<string, string>,
  stdin = '',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('a host where the sandbox cannot run', () => {
  it('the runner refuses to start, says why, and touches neither the database nor NATS', async () => {
    const started = await run(process.execPath, ['--import', 'tsx', 'services/sandbox-runner/src/main.ts'], {
      TANDEM_SANDBOX_BWRAP_PATH: '/nonexistent/bwrap',
      // Nothing listens here: reaching it would fail differently (and later).
      DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none',
      NATS_URL: 'nats://127.0.0.1:1',
    });
    expect(started.code).toBe(2);
    expect(started.stderr).toContain('the bwrap backend cannot run jobs here, so the runner does not start');
    expect(started.stderr).toContain('/nonexistent/bwrap');
    expect(started.stderr).toContain('TANDEM_SANDBOX_BACKEND=process');
  });

  it('the check command reports sandbox_error as its JSON result', async () => {
    const checked = await run(
      'pnpm',
      ['--silent', 'sandbox', 'run', '--language', 'python'],
      { TANDEM_SANDBOX_BWRAP_PATH: '/nonexistent/bwrap' },
      'result = 1\n',
    );
    expect(checked.code).toBe(1);
    const last = checked.stdout.trimEnd().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ outcome: 'sandbox_error', backend: 'bwrap' });
  });
});

describe('the weaker backend, chosen explicitly', () => {
  it('runs a job where bubblewrap is missing when TANDEM_SANDBOX_BACKEND=process', async () => {
    const checked = await run(
      'pnpm',
      ['--silent', 'sandbox', 'run', '--language', 'python'],
      { TANDEM_SANDBOX_BACKEND: 'process', TANDEM_SANDBOX_BWRAP_PATH: '/nonexistent/bwrap' },
      'result = 1\n',
    );
    expect(checked.code).toBe(0);
    const last = checked.stdout.trimEnd().split('\n').at(-1) ?? '';
    expect(JSON.parse(last)).toMatchObject({ outcome: 'ok', value: 1, backend: 'process' });
  });
});
