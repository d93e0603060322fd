import { ConfigError } from '@tandem/service-kit';
import { describe, expect, it } from 'vitest';
import {
  consumerSettingsOf,
  parseProvisionConfig,
  provisionerCredentialsOf,
} from '../src/provision-config.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    parseProvisionConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the provisioning settings', () => {
  it("use the services' defaults, and no credentials when none are set", () => {
    const config = parseProvisionConfig({});
    expect(consumerSettingsOf(config)).toEqual({ maxDeliver: 5, ackWaitMs: 30_000 });
    expect(config.TANDEM_SUBJECT_PREFIX).toBe('tandem');
    expect(provisionerCredentialsOf(config)).toBeNull();
  });

  it("follow the services' variables and take the provisioner's credentials", () => {
    const config = parseProvisionConfig({
      TANDEM_MAX_DELIVER: '8',
      TANDEM_ACK_WAIT_MS: '5000',
      TANDEM_NATS_PROVISIONER_USER: 'provisioner',
      TANDEM_NATS_PROVISIONER_PASSWORD: 'secret-password',
    });
    expect(consumerSettingsOf(config)).toEqual({ maxDeliver: 8, ackWaitMs: 5_000 });
    expect(provisionerCredentialsOf(config)).toEqual({ user: 'provisioner', password: 'secret-password' });
  });

  it('reports every problem at once, the credential pairing among them, without the password', () => {
    const problems = problemsOf({
      TANDEM_MAX_DELIVER: '1',
      TANDEM_NATS_PROVISIONER_PASSWORD: 'secret-password',
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^TANDEM_MAX_DELIVER/);
    expect(problems[1]).toMatch(/set both or neither/);
    expect(problems.join('\n')).not.toContain('secret-password');
    expect(problemsOf({ TANDEM_NATS_PROVISIONER_USER: 'provisioner' })).toEqual([
      'TANDEM_NATS_PROVISIONER_USER and TANDEM_NATS_PROVISIONER_PASSWORD: set both or neither',
    ]);
  });

  it('read the stream replicas the services read (TANDEM_STREAM_REPLICAS, default 1)', () => {
    expect(parseProvisionConfig({}).TANDEM_STREAM_REPLICAS).toBe(1);
    expect(parseProvisionConfig({ TANDEM_STREAM_REPLICAS: '3' }).TANDEM_STREAM_REPLICAS).toBe(3);
    expect(problemsOf({ TANDEM_STREAM_REPLICAS: '0' })[0]).toMatch(/^TANDEM_STREAM_REPLICAS/);
  });
});
