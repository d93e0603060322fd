import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '@tandem/service-kit';
import { ApprovalConfig } from '../src/config.js';

const ENV = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test_approval' };

function configProblems(env: Record<string, string | undefined>): string[] {
  try {
    parseConfig(ApprovalConfig, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected parseConfig to throw');
}

describe('ApprovalConfig TANDEM_AUTO_APPROVE', () => {
  it('defaults to every class but destructive (trust and policy decide within them)', () => {
    expect(parseConfig(ApprovalConfig, ENV).TANDEM_AUTO_APPROVE).toEqual([
      'read',
      'compute',
      'write',
      'network',
    ]);
  });

  it('parses a custom comma-separated list, trimming spaces and empty items', () => {
    expect(
      parseConfig(ApprovalConfig, { ...ENV, TANDEM_AUTO_APPROVE: ' read , write,,network ' })
        .TANDEM_AUTO_APPROVE,
    ).toEqual(['read', 'write', 'network']);
  });

  it('allows an empty list: nothing is auto-approved', () => {
    expect(parseConfig(ApprovalConfig, { ...ENV, TANDEM_AUTO_APPROVE: '' }).TANDEM_AUTO_APPROVE).toEqual([]);
  });

  it('rejects an unknown risk class, naming the setting', () => {
    const problems = configProblems({ ...ENV, TANDEM_AUTO_APPROVE: 'read,everything' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^TANDEM_AUTO_APPROVE\.1: /);
  });

  it('is case-sensitive about risk class names', () => {
    expect(configProblems({ ...ENV, TANDEM_AUTO_APPROVE: 'Read' })[0]).toMatch(/^TANDEM_AUTO_APPROVE/);
  });

  it('keeps the other defaults', () => {
    const config = parseConfig(ApprovalConfig, ENV);
    expect(config.TANDEM_APPROVAL_PORT).toBe(7102);
    expect(config.TANDEM_MAX_DELIVER).toBe(5);
  });
});

describe('ApprovalConfig optional settings', () => {
  it('reads an empty policy path, admin token or webhook secret as unset', () => {
    const config = parseConfig(ApprovalConfig, {
      ...ENV,
      TANDEM_APPROVAL_POLICY: '',
      TANDEM_ADMIN_TOKEN: '',
      TANDEM_DECISION_WEBHOOK_SECRETS: '',
    });
    expect(config.TANDEM_APPROVAL_POLICY).toBeUndefined();
    expect(config.TANDEM_ADMIN_TOKEN).toBeUndefined();
    expect(config.TANDEM_DECISION_WEBHOOK_SECRETS).toBeUndefined();
    expect(config.TANDEM_APPROVAL_RISK_OPINION).toBe(false);
  });
});
