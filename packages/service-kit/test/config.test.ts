import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BaseConfig, ConfigError, natsServers, parseConfig } from '../src/index.js';

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const ServiceConfig = BaseConfig.extend({
  SERVICE_PORT: z.coerce.number().int().min(0).max(65535).default(7000),
});

describe('parseConfig', () => {
  it("splits a cluster's NATS_URL into its servers", () => {
    expect(natsServers('nats://127.0.0.1:4222')).toEqual(['nats://127.0.0.1:4222']);
    expect(natsServers('nats://a:4222, nats://b:4222,nats://c:4222')).toEqual([
      'nats://a:4222',
      'nats://b:4222',
      'nats://c:4222',
    ]);
  });

  it('reads one ack wait for every consumer and the stream replicas', () => {
    const url = 'postgresql://postgres@127.0.0.1:5432/test_kit';
    expect(parseConfig(ServiceConfig, { DATABASE_URL: url })).toMatchObject({
      TANDEM_ACK_WAIT_MS: 30_000,
      TANDEM_STREAM_REPLICAS: 1,
    });
    expect(
      parseConfig(ServiceConfig, {
        DATABASE_URL: url,
        TANDEM_ACK_WAIT_MS: '3000',
        TANDEM_STREAM_REPLICAS: '3',
      }),
    ).toMatchObject({ TANDEM_ACK_WAIT_MS: 3_000, TANDEM_STREAM_REPLICAS: 3 });
    const problems = problemsOf(() =>
      parseConfig(ServiceConfig, {
        DATABASE_URL: url,
        TANDEM_ACK_WAIT_MS: '10',
        TANDEM_STREAM_REPLICAS: '7',
      }),
    );
    expect(problems.map((problem) => problem.split(':')[0])).toEqual([
      'TANDEM_ACK_WAIT_MS',
      'TANDEM_STREAM_REPLICAS',
    ]);
  });

  it('applies the shared defaults', () => {
    const config = parseConfig(ServiceConfig, {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test_kit',
    });
    expect(config).toMatchObject({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test_kit',
      NATS_URL: 'nats://127.0.0.1:4222',
      TANDEM_SUBJECT_PREFIX: 'tandem',
      TANDEM_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      TANDEM_LOG_CONTENT: false,
      TANDEM_DB_POOL_MAX: 5,
      SERVICE_PORT: 7000,
    });
  });

  it('coerces numbers and booleans from strings', () => {
    const config = parseConfig(ServiceConfig, {
      DATABASE_URL: 'postgresql://x',
      SERVICE_PORT: '8080',
      TANDEM_LOG_CONTENT: 'true',
      TANDEM_DB_POOL_MAX: '12',
    });
    expect(config.SERVICE_PORT).toBe(8080);
    expect(config.TANDEM_LOG_CONTENT).toBe(true);
    expect(config.TANDEM_DB_POOL_MAX).toBe(12);
  });

  it('collects every problem at once, each naming its setting', () => {
    const problems = problemsOf(() =>
      parseConfig(ServiceConfig, {
        TANDEM_SUBJECT_PREFIX: 'bad prefix.*',
        LOG_LEVEL: 'loud',
        TANDEM_LOG_CONTENT: 'maybe',
        TANDEM_DB_POOL_MAX: '0',
        SERVICE_PORT: '70000',
      }),
    );
    const settings = problems.map((problem) => problem.split(':')[0]);
    expect(settings.sort()).toEqual([
      'DATABASE_URL',
      'LOG_LEVEL',
      'SERVICE_PORT',
      'TANDEM_DB_POOL_MAX',
      'TANDEM_LOG_CONTENT',
      'TANDEM_SUBJECT_PREFIX',
    ]);
  });

  it('puts every problem into the printable message', () => {
    const error = (() => {
      try {
        parseConfig(ServiceConfig, { SERVICE_PORT: 'abc' });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = error instanceof Error ? error.message : '';
    expect(message).toContain('invalid configuration:');
    expect(message).toContain('  - DATABASE_URL: ');
    expect(message).toContain('  - SERVICE_PORT: ');
    expect(error instanceof Error && error.name).toBe('ConfigError');
  });

  it('says what DATABASE_URL should look like when it is empty', () => {
    const problems = problemsOf(() => parseConfig(ServiceConfig, { DATABASE_URL: '' }));
    expect(problems).toEqual(['DATABASE_URL: DATABASE_URL is required (postgresql://user@host:port/db)']);
  });
});
