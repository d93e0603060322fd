import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { getFreePort } from '@tandem/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isListening } from '../src/nats.js';
import { repositoryRoot } from '../src/paths.js';

// Hole 9 of issue 11 as found: infra/nats/nats.conf kept a shared fallback user (`no_auth_user`) with
// the union of every service's permissions, so anyone reaching NATS without credentials could publish
// `approval.decided`. This runs the committed file itself on a free port.

let server: ChildProcess;
let store: string;
let url: string;

beforeAll(async () => {
  store = await mkdtemp(join(tmpdir(), 'tandem-infra-nats-'));
  const port = await getFreePort();
  const passwords = Object.fromEntries(
    [
      'PLANNER',
      'APPROVAL',
      'EXECUTOR',
      'SANDBOX_RUNNER',
      'LEARNING',
      'INTEGRATION',
      'PROVISIONER',
      'UNAUTHENTICATED',
    ].map((user) => [`NATS_${user}_PASSWORD`, `test-password-${user.toLowerCase()}`]),
  );
  // The committed file with only its JetStream store moved to a temporary directory (nats-server
  // refuses -sd beside a store_dir); command-line flags override its host, port and monitoring port.
  const committed = await readFile(join(repositoryRoot, 'infra', 'nats', 'nats.conf'), 'utf8');
  const config = join(store, 'nats.conf');
  await writeFile(config, committed.replace(/^(\s*store_dir:).*$/m, `$1 "${join(store, 'jetstream')}"`));
  server = spawn(
    'nats-server',
    ['-c', config, '-a', '127.0.0.1', '-p', String(port), '-m', String(await getFreePort())],
    { env: { ...process.env, ...passwords }, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  const deadline = Date.now() + 10_000;
  while (!(await isListening('127.0.0.1', port))) {
    if (server.exitCode !== null) throw new Error(`nats-server exited with ${server.exitCode}`);
    if (Date.now() > deadline) throw new Error('nats-server did not start');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  url = `nats://127.0.0.1:${port}`;
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  if (store) await rm(store, { recursive: true, force: true });
});

describe('infra/nats/nats.conf', () => {
  it('refuses a connection without credentials (no shared fallback user)', async () => {
    // A connection that gets in is closed again, so a failing run leaves nothing open.
    const outcome = await connect({ servers: url, reconnect: false }).then(
      async (nc) => {
        await nc.close();
        return 'connected without credentials';
      },
      (error: unknown) => String(error),
    );
    expect(outcome).toMatch(/authorization violation/i);
  });

  it('refuses an outside system publishing approval.decided', async () => {
    const outside = await connect({
      servers: url,
      reconnect: false,
      user: 'integration',
      pass: 'test-password-integration',
      inboxPrefix: '_INBOX.integration',
    });
    const errors: string[] = [];
    const watching = (async () => {
      for await (const status of outside.status())
        if (status.type === 'error') errors.push(String(status.error));
    })();
    try {
      outside.publish('tandem.approval.decided.v1', '{}');
      await outside.flush();
      const deadline = Date.now() + 5_000;
      while (
        !errors.some((error) => error.includes('Publish to "tandem.approval.decided.v1"')) &&
        Date.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(errors.join('\n')).toMatch(
        /permissions violation for publish to "tandem\.approval\.decided\.v1"/i,
      );
    } finally {
      await outside.close();
      await watching;
    }
  });
});
