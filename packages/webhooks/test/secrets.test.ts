import { describe, expect, it } from 'vitest';
import { generateWebhookSecret, parseSecrets } from '../src/index.js';

describe('generateWebhookSecret', () => {
  it('makes whsec_ + base64 of 32 random bytes, different each time', () => {
    const first = generateWebhookSecret();
    const second = generateWebhookSecret();
    expect(first).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(first.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(first).not.toBe(second);
    expect(parseSecrets(first)).toEqual([first]);
  });
});

describe('parseSecrets', () => {
  const first = generateWebhookSecret();
  const second = generateWebhookSecret();

  it('reads nothing from an absent or blank value', () => {
    expect(parseSecrets(undefined)).toEqual([]);
    expect(parseSecrets('  ')).toEqual([]);
  });

  it('reads one secret, or two comma-separated and trimmed (a rotation)', () => {
    expect(parseSecrets('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toEqual([
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    ]);
    expect(parseSecrets(` ${first} ,${second} `)).toEqual([first, second]);
  });

  it('refuses more than two secrets', () => {
    expect(() => parseSecrets([first, second, generateWebhookSecret()].join(','))).toThrow(/at most 2/);
  });

  it('refuses malformed secrets without printing them', () => {
    const secretLooking = 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const attempt = (value: string): string => {
      try {
        parseSecrets(value);
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
      throw new Error(`parseSecrets accepted ${JSON.stringify(value)}`);
    };
    expect(attempt(secretLooking)).toMatch(/must start with whsec_/);
    expect(attempt(secretLooking)).not.toContain(secretLooking);
    expect(attempt('whsec_')).toMatch(/base64/);
    expect(attempt('whsec_abc$def')).toMatch(/base64/);
    expect(attempt(`${first},`)).toMatch(/secret 2 of 2 is empty/);
    expect(attempt(`whsec_${Buffer.alloc(16).toString('base64')}`)).toMatch(/16 bytes/);
    expect(attempt(`whsec_${Buffer.alloc(65).toString('base64')}`)).toMatch(/65 bytes/);
    expect(attempt(`${first},${first}`)).toMatch(/twice/);
  });
});
