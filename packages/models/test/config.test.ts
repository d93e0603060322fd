import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  isModelEndpointConfigured,
  ModelsConfig,
  ModelsConfigError,
  modelsConfigFromEnv,
} from '../src/index.js';

const KEY = 'sk-config-secret-0000';

function configError(env: Record<string, string | undefined>): ModelsConfigError {
  try {
    modelsConfigFromEnv(env);
  } catch (error) {
    if (error instanceof ModelsConfigError) return error;
    throw error;
  }
  throw new Error('expected modelsConfigFromEnv to throw');
}

describe('modelsConfigFromEnv', () => {
  it('uses the shared endpoint for both roles, with defaults for timeout and retries', () => {
    const config = modelsConfigFromEnv({
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      OPENAI_API_KEY: KEY,
      TANDEM_PLANNING_MODEL: 'thinker',
      TANDEM_CODE_MODEL: 'coder',
    });
    expect(config.planning.baseURL).toBe('http://127.0.0.1:11434/v1');
    expect(config.code.baseURL).toBe('http://127.0.0.1:11434/v1');
    expect(config.planning.model).toBe('thinker');
    expect(config.code.model).toBe('coder');
    expect(config.code.apiKey.reveal()).toBe(KEY);
    expect(config.timeoutMs).toBe(60_000);
    expect(config.maxRetries).toBe(2);
  });

  it('lets each role override base URL and key', () => {
    const config = modelsConfigFromEnv({
      OPENAI_API_KEY: KEY,
      TANDEM_PLANNING_MODEL: 'o-thinker',
      TANDEM_CODE_MODEL: 'qwen-coder',
      TANDEM_CODE_BASE_URL: 'http://gpu-box:8000/v1',
      TANDEM_CODE_API_KEY: 'local-key-1',
      TANDEM_MODEL_TIMEOUT_MS: '1500',
      TANDEM_MODEL_MAX_RETRIES: '0',
    });
    expect(config.planning.baseURL).toBe('https://api.openai.com/v1');
    expect(config.planning.apiKey.reveal()).toBe(KEY);
    expect(config.code.baseURL).toBe('http://gpu-box:8000/v1');
    expect(config.code.apiKey.reveal()).toBe('local-key-1');
    expect(config.timeoutMs).toBe(1500);
    expect(config.maxRetries).toBe(0);
  });

  it('needs no key for a local endpoint', () => {
    const config = modelsConfigFromEnv({
      OPENAI_BASE_URL: 'http://localhost:1234/v1',
      TANDEM_PLANNING_MODEL: 'a',
      TANDEM_CODE_MODEL: 'b',
    });
    expect(config.planning.apiKey.reveal()).toBe('unused');
  });

  it('reports every problem at once', () => {
    const error = configError({
      OPENAI_BASE_URL: 'https://api.openai.com/v1',
      TANDEM_CODE_MODEL: 'coder',
    });
    expect(error.issues).toEqual([
      expect.stringContaining('TANDEM_PLANNING_MODEL is required'),
      expect.stringContaining(
        'an API key is required for api.openai.com: set OPENAI_API_KEY or TANDEM_PLANNING_API_KEY',
      ),
      expect.stringContaining(
        'an API key is required for api.openai.com: set OPENAI_API_KEY or TANDEM_CODE_API_KEY',
      ),
    ]);
  });

  it('rejects malformed values without echoing secrets', () => {
    const error = configError({
      OPENAI_BASE_URL: 'not a url',
      OPENAI_API_KEY: KEY,
      TANDEM_MODEL_TIMEOUT_MS: 'soon',
    });
    expect(error.issues.map((issue) => issue.split(':')[0])).toEqual([
      'OPENAI_BASE_URL',
      'TANDEM_MODEL_TIMEOUT_MS',
    ]);
    expect(error.message).not.toContain(KEY);
  });

  it('says which role lacks an endpoint', () => {
    const error = configError({
      TANDEM_PLANNING_BASE_URL: 'http://a:1/v1',
      TANDEM_PLANNING_MODEL: 'x',
      TANDEM_CODE_MODEL: 'y',
    });
    expect(error.issues).toEqual([expect.stringContaining('the code model has no endpoint')]);
  });

  it('keeps the key out of JSON, strings and inspect', () => {
    const config = modelsConfigFromEnv({
      OPENAI_API_KEY: KEY,
      TANDEM_PLANNING_MODEL: 'a',
      TANDEM_CODE_MODEL: 'b',
    });
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(inspect(config, { depth: 10 })).not.toContain(KEY);
    expect(`${config.planning.apiKey}`).toBe('[redacted]');
  });

  it('accepts a plain string key when the parsed config is built directly', () => {
    const config = ModelsConfig.parse({
      planning: { model: 'a', baseURL: 'http://127.0.0.1:1/v1', apiKey: 'k-123' },
      code: { model: 'b', baseURL: 'http://127.0.0.1:1/v1', apiKey: 'k-456' },
    });
    expect(config.code.apiKey.reveal()).toBe('k-456');
    expect(config.timeoutMs).toBe(60_000);
  });
});

describe('isModelEndpointConfigured', () => {
  it('is false for an environment without model settings', () => {
    expect(
      isModelEndpointConfigured({ PATH: '/usr/bin', OPENAI_BASE_URL: '  ', TANDEM_MODEL_TIMEOUT_MS: '10' }),
    ).toBe(false);
  });

  it('is true as soon as an endpoint, key or model name is set', () => {
    expect(isModelEndpointConfigured({ OPENAI_BASE_URL: 'http://x/v1' })).toBe(true);
    expect(isModelEndpointConfigured({ OPENAI_API_KEY: KEY })).toBe(true);
    expect(isModelEndpointConfigured({ TANDEM_CODE_MODEL: 'coder' })).toBe(true);
  });
});
