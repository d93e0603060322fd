import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { PolicyError, parseDuration, parsePolicy } from '../src/domain/policy.js';
import { DEFAULT_POLICY_PATH, loadPolicy } from '../src/policy-file.js';
import { HOSTILE_POLICIES } from './scenarios/hostile-policies.js';

const EXAMPLE_PATH = new URL('../policy/example.yaml', import.meta.url).pathname;
const directory = mkdtempSync(join(tmpdir(), 'tandem-policy-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function refusal(text: string): PolicyError {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('the policy was accepted');
}

describe('parseDuration', () => {
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['0', 0],
    [' 10m ', 600_000],
    [2500, 2500],
    [0, 0],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'soon', '1 h', '1.5h', '-1m', '10x', 'h'])('%j is refused', (text) => {
    expect(() => parseDuration(text)).toThrow(PolicyError);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('%d ms is refused', (value) => {
    expect(() => parseDuration(value)).toThrow(/not a duration/);
  });
});

describe('the shipped default policy', () => {
  const loaded = loadPolicy(undefined);

  it('loads from policy/default.yaml with its version and sha256', () => {
    expect(loaded.origin).toBe(DEFAULT_POLICY_PATH);
    expect(loaded.version).toBe(loaded.policy.version);
    expect(loaded.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps the quickstart working: low risk by trust from zero, medium after 5 successes at 0.5', () => {
    expect(loaded.policy.trust).toEqual({
      low: { minScore: 0, minSuccesses: 0 },
      medium: { minScore: 0.5, minSuccesses: 5 },
    });
    expect(loaded.policy.defaults).toEqual({ deadline: 3_600_000, onExpiry: 'reject', reminderBefore: 0 });
    expect(loaded.policy.rules).toEqual([]);
    expect(loaded.policy.webhooks).toEqual([]);
  });
});

describe('the example policy', () => {
  it('is valid and uses every section', () => {
    const { policy } = loadPolicy(EXAMPLE_PATH);
    expect(policy.escalation).toEqual({ group: 'oncall', deadline: 1_800_000 });
    expect(policy.defaults).toEqual({
      deadline: 3_600_000,
      onExpiry: 'reject',
      reminderBefore: 600_000,
      group: 'approvers',
    });
    expect(policy.rules.map((rule) => rule.effect)).toEqual(['deny', 'deny', 'allow', 'ask', 'ask']);
    expect(policy.rules.find((rule) => rule.id === 'finance-reviews-billing-writes')).toMatchObject({
      deadline: 14_400_000,
      onExpiry: 'escalate',
      group: 'finance',
    });
    expect(policy.agents).toEqual({ 'billing-bot': { sources: ['urn:tandem:billing'] } });
    expect(policy.webhooks[0]).toMatchObject({
      name: 'slack-bridge',
      secretEnv: 'TANDEM_WEBHOOK_SECRET_SLACK',
    });
  });
});

describe('parsePolicy', () => {
  it('accepts JSON', () => {
    const policy = parsePolicy(
      JSON.stringify({ version: 'j1', rules: [{ id: 'r', effect: 'deny', tools: ['write_file'] }] }),
      'policy.json',
    );
    expect(policy.version).toBe('j1');
    expect(policy.rules).toHaveLength(1);
  });

  it('fills defaults for a minimal policy: nothing approved by trust', () => {
    const policy = parsePolicy('version: "minimal"\n', 'minimal.yaml');
    expect(policy.defaults).toEqual({ deadline: 3_600_000, onExpiry: 'reject', reminderBefore: 0 });
    expect(policy.trust).toEqual({});
    expect(policy.rules).toEqual([]);
    expect(policy.agents).toEqual({});
  });

  it('an escalating policy with an escalation group is fine', () => {
    const policy = parsePolicy(
      'version: "e"\ndefaults: { onExpiry: escalate, deadline: 20m, reminderBefore: 5m }\nescalation: { group: oncall }\n',
      'e.yaml',
    );
    expect(policy.escalation).toEqual({ group: 'oncall', deadline: 3_600_000 });
  });

  it.each(HOSTILE_POLICIES)('refuses $name', ({ text, message }) => {
    const error = refusal(text);
    expect(error.message).toMatch(/^test\.yaml: /);
    expect(error.message).toMatch(message);
  });

  it('lists every problem at once', () => {
    const error = refusal(
      'version: "1"\nfoo: 1\ndefaults: { deadline: soon }\ntrust: { high: { minScore: 1, minSuccesses: 1 } }\n',
    );
    expect(error.problems).toHaveLength(3);
  });
});

describe('loadPolicy', () => {
  it('reads a file and hashes its exact text', () => {
    const text = 'version: "file-1"\ntrust:\n  low: { minScore: 0.2, minSuccesses: 1 }\n';
    const path = join(directory, 'policy.yaml');
    writeFileSync(path, text);
    const loaded = loadPolicy(path);
    expect(loaded).toMatchObject({ version: 'file-1', origin: path });
    expect(loaded.hash).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('names the file when it cannot be read', () => {
    const path = join(directory, 'missing.yaml');
    expect(() => loadPolicy(path)).toThrow(new RegExp(`cannot read the policy file ${path}`));
  });

  it('names the file when it is invalid', () => {
    const path = join(directory, 'bad.yaml');
    writeFileSync(path, 'version: "x"\nrules:\n  - { id: a, effect: deny, arguments: { path: "[" } }\n');
    expect(() => loadPolicy(path)).toThrow(PolicyError);
    expect(() => loadPolicy(path)).toThrow(new RegExp(`${path}: invalid approval policy`));
  });
});
