import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  discoverNats,
  discoverPostgres,
  findNats,
  findPostgres,
  getFreePort,
  START_NATS_COMMAND,
  START_POSTGRES_COMMAND,
} from '../src/index.js';

const dockerLikely = process.env['DOCKER_HOST'] !== undefined || existsSync('/var/run/docker.sock');

describe('infrastructure discovery', () => {
  it('finds the local Postgres and caches the answer per process', async () => {
    const first = await findPostgres();
    expect(first.url).toMatch(/^postgres(ql)?:\/\//);
    if (process.env['DATABASE_URL'] === undefined) expect(first.source).toBe('local');
    expect(findPostgres()).toBe(findPostgres());
    expect(await findPostgres()).toEqual(first);
  });

  it('finds the local NATS with JetStream and caches the answer per process', async () => {
    const first = await findNats();
    expect(first.url).toMatch(/^nats:\/\//);
    if (process.env['NATS_URL'] === undefined) expect(first.source).toBe('local');
    expect(await findNats()).toEqual(first);
  });

  it('prefers DATABASE_URL and NATS_URL from the environment', async () => {
    const postgres = await discoverPostgres({
      env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres' },
    });
    expect(postgres).toEqual({ url: 'postgres://postgres@127.0.0.1:5432/postgres', source: 'env' });
    const nats = await discoverNats({ env: { NATS_URL: 'nats://127.0.0.1:4222' } });
    expect(nats).toEqual({ url: 'nats://127.0.0.1:4222', source: 'env' });
  });

  it('fails clearly, hiding the password, when DATABASE_URL points nowhere', async () => {
    const port = await getFreePort();
    const attempt = discoverPostgres({
      env: { DATABASE_URL: `postgres://me:hunter2@127.0.0.1:${port}/postgres` },
    });
    await expect(attempt).rejects.toThrow(/DATABASE_URL is set .* does not answer/);
    await expect(attempt).rejects.not.toThrow(/hunter2/);
  });

  it('says exactly what to start when nothing answers', async () => {
    const port = await getFreePort();
    const postgres = discoverPostgres({
      env: {},
      localUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
      containers: false,
    });
    await expect(postgres).rejects.toThrow(START_POSTGRES_COMMAND);
    const nats = discoverNats({ env: {}, localUrl: `nats://127.0.0.1:${port}`, containers: false });
    await expect(nats).rejects.toThrow(START_NATS_COMMAND);
  });

  it.skipIf(dockerLikely)('gives up on testcontainers quickly without a Docker engine', async () => {
    const port = await getFreePort();
    const started = Date.now();
    const nats = discoverNats({ env: {}, localUrl: `nats://127.0.0.1:${port}` });
    await expect(nats).rejects.toThrow(/testcontainers: .*\..*start-stop-daemon/s);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('rejects a port that answers without JetStream-enabled NATS', async () => {
    // Postgres answers on 5432 but is not a nats-server.
    const nats = discoverNats({ env: { NATS_URL: 'nats://127.0.0.1:5432' }, probeTimeoutMs: 500 });
    await expect(nats).rejects.toThrow(/NATS_URL is set/);
  });
});
