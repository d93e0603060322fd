import { describe, expect, it } from 'vitest';
import { BaseConfig, ConfigError, natsConnectionSettings, parseConfig } from '../src/index.js';

const base = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test_kit' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseConfig(BaseConfig, { ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('NATS credentials in the base config', () => {
  it('connects without credentials and ensures streams itself when none are set (or set empty)', () => {
    for (const env of [{}, { TANDEM_NATS_USER: '', TANDEM_NATS_PASSWORD: '' }]) {
      const config = parseConfig(BaseConfig, { ...base, ...env });
      expect(natsConnectionSettings(config)).toEqual({ connection: {}, provisioned: false });
    }
  });

  it('logs in as the configured user with its own inbox prefix, expecting provisioned streams', () => {
    const config = parseConfig(BaseConfig, {
      ...base,
      TANDEM_NATS_USER: 'sandbox-runner',
      TANDEM_NATS_PASSWORD: 'pw-1234567890',
    });
    expect(natsConnectionSettings(config)).toEqual({
      connection: { user: 'sandbox-runner', pass: 'pw-1234567890', inboxPrefix: '_INBOX.sandbox-runner' },
      provisioned: true,
    });
  });

  it('requires the user and the password together, and never prints the password', () => {
    expect(problemsOf({ TANDEM_NATS_USER: 'planner' })).toEqual([
      'TANDEM_NATS_PASSWORD: required when TANDEM_NATS_USER is set',
    ]);
    const problems = problemsOf({ TANDEM_NATS_PASSWORD: 'very-secret-password', LOG_LEVEL: 'loud' });
    expect(problems).toContain('TANDEM_NATS_USER: required when TANDEM_NATS_PASSWORD is set');
    expect(problems.some((problem) => problem.startsWith('LOG_LEVEL'))).toBe(true);
    expect(problems.join('\n')).not.toContain('very-secret-password');
  });

  it('refuses a user name that is not a subject token', () => {
    const problems = problemsOf({ TANDEM_NATS_USER: 'a.b', TANDEM_NATS_PASSWORD: 'x' });
    expect(problems.join('\n')).toMatch(/TANDEM_NATS_USER: a NATS user name/);
  });
});
