import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServices, PROVISIONER_USER } from '@tandem/bus';
import { createTestPrefix, getFreePort } from '@tandem/testing';
import { describe, expect, it } from 'vitest';
import {
  INFRA_EXTERNAL_USERS,
  infraPasswordVariable,
  renderInfraNatsConfig,
} from '../src/infra-nats-conf.js';
import { startAuthenticatedNats } from '../src/nats-auth.js';
import { repositoryRoot } from '../src/paths.js';

const committed = join(repositoryRoot, 'infra', 'nats', 'nats.conf');

/** `nats-server -t -c file`: exit status and output (the Debian 2.9 server on PATH). */
function checkConfig(
  file: string,
  env: Record<string, string> = {},
): { status: number | null; output: string } {
  const result = spawnSync('nats-server', ['-t', '-c', file], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('infra/nats/nats.conf', () => {
  it('is what the generator writes from the topology', async () => {
    expect(await readFile(committed, 'utf8')).toBe(renderInfraNatsConfig());
  });

  it('has no fallback user: every connection needs credentials', async () => {
    const text = await readFile(committed, 'utf8');
    expect(text).not.toMatch(/^\s*no_auth_user/m);
    expect(text).not.toContain('unauthenticated');
  });

  it('is accepted by nats-server -t with every password variable set', () => {
    const env = Object.fromEntries(
      [...NatsServices, PROVISIONER_USER, ...INFRA_EXTERNAL_USERS].map((user) => [
        infraPasswordVariable(user),
        `test-password-${user}`,
      ]),
    );
    const result = checkConfig(committed, env);
    expect(result.output).toMatch(/configuration file .* is valid/i);
    expect(result.status).toBe(0);
  });
});

describe("the launcher's generated config", () => {
  it('is accepted by nats-server -t and written with mode 0600', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'tandem-nats-conf-'));
    const nats = await startAuthenticatedNats({
      port: await getFreePort(),
      prefix: createTestPrefix(),
      storeDir: join(directory, 'jetstream'),
      authDir: join(directory, 'auth'),
    });
    try {
      const file = join(directory, 'auth', 'nats-server.conf');
      const result = checkConfig(file);
      expect(result.output).toMatch(/is valid/i);
      expect(result.status).toBe(0);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect((await stat(nats.credentialsFile)).mode & 0o777).toBe(0o600);
    } finally {
      await nats.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
