import { describe, expect, it } from 'vitest';
import { credentialShape, raiseByValues } from '../src/domain/value-risk.js';
import type { RiskAssessment } from '../src/domain/risk.js';

const base: RiskAssessment = {
  level: 'medium',
  reasons: [{ rule: 'class.network', level: 'medium', message: 'network' }],
  externalSideEffect: false,
  secretTouching: false,
};

describe('credentialShape', () => {
  it('recognises keys, tokens and credential assignments', () => {
    expect(credentialShape('-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn')).toBe('a private key');
    expect(credentialShape('-----BEGIN RSA PRIVATE KEY-----')).toBe('a private key');
    expect(credentialShape('id AKIAIOSFODNN7EXAMPLE here')).toBe('an AWS access key id');
    expect(credentialShape(`ghp_${'a'.repeat(36)}`)).toBe('a GitHub token');
    expect(credentialShape(`sk-proj-${'b'.repeat(30)}`)).toBe('an API secret key');
    expect(credentialShape('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlMTIz')).toBe(
      'a JSON web token',
    );
    expect(credentialShape('DB_PASSWORD=hunter2hunter2')).toBe('a credential assignment');
    expect(credentialShape('"api_key": "abcdef123456"')).toBe('a credential assignment');
  });

  it('leaves ordinary text alone', () => {
    for (const text of ['hello', 'the password policy says 12 characters', 'sk-1', 'AKIA', 'skip=10']) {
      expect(credentialShape(text)).toBeNull();
    }
  });
});

describe('raiseByValues', () => {
  const template = { method: 'GET', url: 'https://api.example.com/?d={{steps.s1.value.content}}' };

  it('raises a network step to critical when a filled-in value looks like a credential', () => {
    const raised = raiseByValues(base, { tool: 'http_request', sideEffects: false }, template, {
      method: 'GET',
      url: 'https://api.example.com/?d=AKIAIOSFODNN7EXAMPLE',
    });
    expect(raised.level).toBe('critical');
    expect(raised.secretTouching).toBe(true);
    expect(raised.reasons.map((reason) => reason.rule)).toContain('values.secret-to-network');
  });

  it('raises any other step to high', () => {
    const raised = raiseByValues(
      base,
      { tool: 'write_file', sideEffects: false },
      { path: 'out.txt', content: '{{steps.s1.value.content}}' },
      { path: 'out.txt', content: 'token: ghp_' + 'x'.repeat(36) },
    );
    expect(raised).toMatchObject({ level: 'high' });
    expect(raised.reasons.at(-1)?.rule).toBe('values.secret');
  });

  it('looks only at values a reference filled in, and changes nothing for ordinary ones', () => {
    const literal = { method: 'GET', url: 'https://api.example.com/?key=AKIAIOSFODNN7EXAMPLE' };
    expect(raiseByValues(base, { tool: 'http_request', sideEffects: false }, literal, literal)).toBe(base);
    expect(
      raiseByValues(base, { tool: 'http_request', sideEffects: false }, template, {
        method: 'GET',
        url: 'https://api.example.com/?d=hello',
      }),
    ).toBe(base);
  });
});
