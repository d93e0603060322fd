import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  createModelSelector,
  isModelEndpointConfigured,
  ModelsConfigError,
  parseSelectorConfig,
  selectorConfigFromEnv,
} from '../src/index.js';
import type { SelectorConfig } from '../src/index.js';

const KEY = 'sk-selector-config-secret-9876';
const LOCAL_KEY = 'local-secret-key-5555';

function configError(run: () => unknown): ModelsConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ModelsConfigError) return error;
    throw error;
  }
  throw new Error('expected a ModelsConfigError');
}

function files(contents: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = contents[path];
    if (text === undefined)
      throw Object.assign(new Error(`ENOENT: no such file ${path}`), { code: 'ENOENT' });
    return text;
  };
}

function summary(config: SelectorConfig): unknown {
  return config.candidates.map((candidate) => ({
    id: candidate.id,
    model: candidate.model,
    baseURL: candidate.baseURL,
    key: candidate.apiKey.reveal(),
    tier: candidate.tier,
    prices: [candidate.inputUsdPerMTok, candidate.outputUsdPerMTok],
    timeoutMs: candidate.timeoutMs,
    maxRetries: candidate.maxRetries,
  }));
}

describe('selectorConfigFromEnv from env variables', () => {
  it('keeps the old variables working: one candidate per role, SDK retries off by default', () => {
    const config = selectorConfigFromEnv({
      OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1',
      OPENAI_API_KEY: KEY,
      TANDEM_PLANNING_MODEL: 'thinker',
      TANDEM_CODE_MODEL: 'coder',
      TANDEM_MODEL_TIMEOUT_MS: '1500',
    });
    expect(summary(config)).toEqual([
      {
        id: 'planning:thinker',
        model: 'thinker',
        baseURL: 'http://127.0.0.1:11434/v1',
        key: KEY,
        tier: 'default',
        prices: [0, 0],
        timeoutMs: 1500,
        maxRetries: 0,
      },
      {
        id: 'code:coder',
        model: 'coder',
        baseURL: 'http://127.0.0.1:11434/v1',
        key: KEY,
        tier: 'default',
        prices: [0, 0],
        timeoutMs: 1500,
        maxRetries: 0,
      },
    ]);
    expect(config.roles).toEqual({ planning: ['planning:thinker'], code: ['code:coder'] });
    expect(config.breaker).toEqual({ failureThreshold: 3, cooldownMs: 30_000 });
  });

  it('adds fallback models on the same endpoint, prices and an explicit retry count', () => {
    const config = selectorConfigFromEnv({
      OPENAI_API_KEY: KEY,
      TANDEM_PLANNING_MODEL: 'gpt-4.1',
      TANDEM_PLANNING_FALLBACK_MODELS: 'gpt-4.1-mini, gpt-4.1-nano',
      TANDEM_CODE_MODEL: 'qwen2.5-coder:7b',
      TANDEM_CODE_BASE_URL: 'http://gpu-box:8000/v1',
      TANDEM_CODE_API_KEY: LOCAL_KEY,
      TANDEM_CODE_FALLBACK_MODELS: 'llama3.1:8b',
      TANDEM_MODEL_PRICES: 'gpt-4.1=2:8, gpt-4.1-mini=0.4:1.6,qwen2.5-coder:7b=0:0',
      TANDEM_MODEL_MAX_RETRIES: '1',
    });
    expect(config.roles).toEqual({
      planning: ['planning:gpt-4.1', 'planning:gpt-4.1-mini', 'planning:gpt-4.1-nano'],
      code: ['code:qwen2.5-coder:7b', 'code:llama3.1:8b'],
    });
    const byId = new Map(config.candidates.map((candidate) => [candidate.id, candidate]));
    expect(byId.get('planning:gpt-4.1')).toMatchObject({
      baseURL: 'https://api.openai.com/v1',
      inputUsdPerMTok: 2,
      outputUsdPerMTok: 8,
      maxRetries: 1,
      timeoutMs: 60_000,
    });
    expect(byId.get('planning:gpt-4.1-mini')).toMatchObject({ inputUsdPerMTok: 0.4, outputUsdPerMTok: 1.6 });
    expect(byId.get('planning:gpt-4.1-nano')).toMatchObject({ inputUsdPerMTok: 0, outputUsdPerMTok: 0 });
    expect(byId.get('code:llama3.1:8b')?.baseURL).toBe('http://gpu-box:8000/v1');
    expect(byId.get('code:llama3.1:8b')?.apiKey.reveal()).toBe(LOCAL_KEY);
    // The config is usable as is.
    expect(createModelSelector(config).candidates('code')).toHaveLength(2);
  });

  it('lists every problem together, without the keys', () => {
    const error = configError(() =>
      selectorConfigFromEnv({
        OPENAI_API_KEY: KEY,
        TANDEM_PLANNING_MODEL: 'gpt-4.1',
        TANDEM_PLANNING_FALLBACK_MODELS: 'gpt-4.1,gpt-4.1-mini',
        TANDEM_CODE_FALLBACK_MODELS: 'a,,b',
        TANDEM_MODEL_PRICES: `gpt-4.1=2:8,gpt-4.l-mini=0.4:1.6,${KEY}`,
      }),
    );
    expect(error.issues).toEqual([
      expect.stringContaining('TANDEM_CODE_MODEL is required'),
      'TANDEM_CODE_FALLBACK_MODELS: must be comma-separated model ids, e.g. "gpt-4.1-mini,gpt-4o-mini"',
      expect.stringMatching(/^TANDEM_MODEL_PRICES: entry 3 is not model=input:output/),
    ]);
    // A key pasted into the wrong variable must not leak either.
    expect(error.message).not.toContain(KEY);
  });

  it('reports a duplicate fallback and a price for a model no role uses', () => {
    const error = configError(() =>
      selectorConfigFromEnv({
        OPENAI_BASE_URL: 'http://localhost:11434/v1',
        TANDEM_PLANNING_MODEL: 'llama3.1:8b',
        TANDEM_PLANNING_FALLBACK_MODELS: 'llama3.1:8b',
        TANDEM_CODE_MODEL: 'qwen2.5-coder:7b',
        TANDEM_MODEL_PRICES: 'gpt-4.l=2:8',
      }),
    );
    expect(error.issues).toEqual([
      'TANDEM_PLANNING_FALLBACK_MODELS: "llama3.1:8b" is already a planning model',
      'TANDEM_MODEL_PRICES: "gpt-4.l" is not a planning or code model (a typo would leave it unpriced)',
    ]);
  });
});

const YAML_FILE = `
candidates:
  - id: cloud
    model: gpt-4.1
    baseURL: https://api.openai.com/v1
    apiKeyEnv: OPENAI_API_KEY
    tier: strong
    inputUsdPerMTok: 2
    outputUsdPerMTok: 8
    contextTokens: 1047576
    timeoutMs: 90000
    maxTokensField: max_completion_tokens
  - id: local
    model: qwen2.5-coder:7b
    baseURL: http://localhost:11434/v1
    tier: fast
    contextTokens: 32768
roles:
  planning: [cloud, local]
  code: [local]
breaker:
  cooldownMs: 5000
`;

describe('selectorConfigFromEnv from a file', () => {
  it('reads a YAML file, keys from apiKeyEnv, no key for a local endpoint', () => {
    const config = selectorConfigFromEnv(
      {
        TANDEM_MODELS_FILE: '/etc/tandem/models.yaml',
        OPENAI_API_KEY: KEY,
        TANDEM_PLANNING_MODEL: 'ignored',
      },
      files({ '/etc/tandem/models.yaml': YAML_FILE }),
    );
    expect(summary(config)).toEqual([
      {
        id: 'cloud',
        model: 'gpt-4.1',
        baseURL: 'https://api.openai.com/v1',
        key: KEY,
        tier: 'strong',
        prices: [2, 8],
        timeoutMs: 90_000,
        maxRetries: 0,
      },
      {
        id: 'local',
        model: 'qwen2.5-coder:7b',
        baseURL: 'http://localhost:11434/v1',
        key: 'unused',
        tier: 'fast',
        prices: [0, 0],
        timeoutMs: 60_000,
        maxRetries: 0,
      },
    ]);
    expect(config.candidates[0]?.contextTokens).toBe(1_047_576);
    expect(config.candidates[0]?.maxTokensField).toBe('max_completion_tokens');
    expect(config.candidates[1]?.contextTokens).toBe(32_768);
    expect(config.roles).toEqual({ planning: ['cloud', 'local'], code: ['local'] });
    expect(config.breaker).toEqual({ failureThreshold: 3, cooldownMs: 5000 });
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(inspect(config, { depth: 10 })).not.toContain(KEY);
  });

  it('reads a JSON file from disk by default', () => {
    const directory = mkdtempSync(join(tmpdir(), 'tandem-models-'));
    try {
      const path = join(directory, 'models.json');
      writeFileSync(
        path,
        JSON.stringify({
          candidates: [
            {
              id: 'router',
              model: 'anthropic/claude-sonnet-4',
              baseURL: 'https://openrouter.ai/api/v1',
              apiKeyEnv: 'OPENROUTER_API_KEY',
            },
          ],
          roles: { planning: ['router'], code: ['router'] },
        }),
      );
      const config = selectorConfigFromEnv({ TANDEM_MODELS_FILE: path, OPENROUTER_API_KEY: LOCAL_KEY });
      expect(config.candidates[0]?.apiKey.reveal()).toBe(LOCAL_KEY);
      expect(config.candidates[0]?.model).toBe('anthropic/claude-sonnet-4');
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('lists every problem of a file together, without the keys', () => {
    const file = {
      candidates: [
        { id: 'a', model: 'm', baseURL: 'https://api.openai.com/v1', apiKeyEnv: 'MISSING_KEY' },
        { id: 'a', model: 'm2', baseURL: 'not a url', apiKey: KEY, inputUsdPerMtok: 3 },
        { id: 'c', model: 'm3', baseURL: 'https://api.openai.com/v1' },
        { id: 'd', model: 'm4', baseURL: 'http://x/v1', apiKey: LOCAL_KEY, apiKeyEnv: 'OTHER' },
      ],
      roles: { planning: ['a', 'ghost'], code: [] },
    };
    const error = configError(() =>
      selectorConfigFromEnv(
        { TANDEM_MODELS_FILE: 'models.json', OTHER: 'x' },
        files({ 'models.json': JSON.stringify(file) }),
      ),
    );
    const where = 'TANDEM_MODELS_FILE models.json';
    expect(error.issues).toEqual([
      `${where}: candidates.0 ("a").apiKeyEnv: MISSING_KEY is not set`,
      `${where}: candidates.2 ("c"): api.openai.com needs a key: set apiKeyEnv (e.g. OPENAI_API_KEY)`,
      `${where}: candidates.3 ("d"): give apiKey or apiKeyEnv, not both`,
      `${where}: candidates.1.baseURL: must be an http(s) URL`,
      expect.stringMatching(
        /^TANDEM_MODELS_FILE models\.json: candidates\.1: Unrecognized key: "inputUsdPerMtok"/,
      ),
      `${where}: roles.code: needs at least one candidate id`,
      `${where}: candidates.1.id: duplicate candidate id "a"`,
      `${where}: roles.planning.1: "ghost" is not a candidate id (candidates: a, c, d)`,
    ]);
    expect(error.message).not.toContain(KEY);
    expect(error.message).not.toContain(LOCAL_KEY);
  });

  it('keeps the source text of a file that does not parse out of the message', () => {
    const brokenJson = `{"candidates": [{"id": "a", "apiKey": ${KEY}}]}`;
    const brokenYaml = `candidates:\n  - apiKey: ${KEY}\n   id: [`;
    const json = configError(() =>
      selectorConfigFromEnv({ TANDEM_MODELS_FILE: 'm.json' }, files({ 'm.json': brokenJson })),
    );
    const yaml = configError(() =>
      selectorConfigFromEnv({ TANDEM_MODELS_FILE: 'm.yml' }, files({ 'm.yml': brokenYaml })),
    );
    expect(json.issues).toEqual([expect.stringMatching(/^TANDEM_MODELS_FILE m\.json: is not valid JSON/)]);
    expect(yaml.issues).toEqual([
      expect.stringMatching(
        /^TANDEM_MODELS_FILE m\.yml: is not valid YAML \([A-Z_]+ at line \d+ column \d+\)$/,
      ),
    ]);
    expect(json.message + yaml.message).not.toContain(KEY);
    expect(json.message + yaml.message).not.toContain('sk-');
  });

  it('says when the file is missing or of an unknown kind', () => {
    expect(
      configError(() => selectorConfigFromEnv({ TANDEM_MODELS_FILE: '/nope/models.yaml' }, files({}))).issues,
    ).toEqual(['TANDEM_MODELS_FILE /nope/models.yaml: cannot be read (ENOENT)']);
    expect(
      configError(() => selectorConfigFromEnv({ TANDEM_MODELS_FILE: 'models.toml' }, files({}))).issues,
    ).toEqual(['TANDEM_MODELS_FILE models.toml: must end in .json, .yaml or .yml']);
  });

  it('rejects a config object with problems through parseSelectorConfig and createModelSelector', () => {
    const input = {
      candidates: [{ id: 'a', model: 'm', baseURL: 'http://x/v1', apiKey: 'k-1' }],
      roles: { planning: ['a'], code: ['b'] },
    };
    expect(configError(() => parseSelectorConfig(input)).issues).toEqual([
      'config: roles.code.0: "b" is not a candidate id (candidates: a)',
    ]);
    const valid = parseSelectorConfig({ ...input, roles: { planning: ['a'], code: ['a'] } });
    expect(
      configError(() => createModelSelector({ ...valid, roles: { planning: ['a', 'a'], code: ['a'] } }))
        .issues,
    ).toEqual(['roles.planning.1: "a" is listed twice']);
  });
});

describe('README examples', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const blocks = (language: string): string[] =>
    [...readme.matchAll(new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``, 'g'))].map(
      (match) => match[1] ?? '',
    );

  it('has env examples that parse', () => {
    const examples = blocks('sh');
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const example of examples) {
      const env = Object.fromEntries(
        example
          .split('\n')
          .filter((line) => /^[A-Z_]+=/.test(line))
          .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      );
      expect(isModelEndpointConfigured(env)).toBe(true);
      expect(selectorConfigFromEnv(env).candidates.length).toBeGreaterThanOrEqual(2);
    }
  });

  it('has config files (OpenAI and local Ollama) that parse', () => {
    const examples = [
      ...blocks('yaml').map((text) => ['models.yaml', text] as const),
      ...blocks('json').map((text) => ['models.json', text] as const),
    ];
    expect(examples.length).toBeGreaterThanOrEqual(3);
    const baseUrls = new Set<string>();
    for (const [name, text] of examples) {
      const config = selectorConfigFromEnv(
        { TANDEM_MODELS_FILE: name, OPENAI_API_KEY: KEY },
        files({ [name]: text }),
      );
      for (const candidate of config.candidates) baseUrls.add(candidate.baseURL);
    }
    expect([...baseUrls].sort()).toEqual(['http://localhost:11434/v1', 'https://api.openai.com/v1']);
  });
});

describe('isModelEndpointConfigured', () => {
  it('is true for a models file or fallback list alone', () => {
    expect(isModelEndpointConfigured({ TANDEM_MODELS_FILE: 'models.yaml' })).toBe(true);
    expect(isModelEndpointConfigured({ TANDEM_CODE_FALLBACK_MODELS: 'a' })).toBe(true);
    expect(isModelEndpointConfigured({ TANDEM_MODEL_PRICES: 'a=1:1' })).toBe(false);
  });
});
