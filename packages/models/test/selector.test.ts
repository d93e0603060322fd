import { inspect } from 'node:util';
import { createScriptedModelServer, getFreePort } from '@tandem/testing';
import type { ModelScript, ScriptedModelServer, ScriptedReply } from '@tandem/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { BudgetExceededError, createModelSelector, ModelError, SelectorConfig } from '../src/index.js';
import type {
  ModelCallRecord,
  ModelCandidate,
  ModelMessage,
  ModelSelector,
  ModelSelectorDeps,
} from '../src/index.js';

const KEY = 'sk-selector-secret-key-0123456789';
const messages: ModelMessage[] = [{ role: 'user', content: 'plan: compute 6*7' }];

const servers: ScriptedModelServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(script: ModelScript | ScriptedReply[]): Promise<ScriptedModelServer> {
  const server = await createScriptedModelServer(script);
  servers.push(server);
  return server;
}

/** A server whose every answer is the same; `set` changes it. */
async function steady(
  reply: ScriptedReply,
): Promise<ScriptedModelServer & { set(next: ScriptedReply): void }> {
  let current = reply;
  const server = await serve({ match: () => current });
  return Object.assign(server, {
    set(next: ScriptedReply) {
      current = next;
    },
  });
}

async function closedPortUrl(): Promise<string> {
  return `http://127.0.0.1:${await getFreePort()}/v1`;
}

type CandidateInput = z.input<typeof ModelCandidate>;

function candidate(id: string, url: string, extra: Partial<CandidateInput> = {}): CandidateInput {
  return { id, model: `${id}-model`, baseURL: url, apiKey: KEY, timeoutMs: 3000, ...extra };
}

function selectorFor(
  candidates: CandidateInput[],
  options: {
    planning?: string[];
    code?: string[];
    breaker?: { failureThreshold?: number; cooldownMs?: number };
    deps?: ModelSelectorDeps;
  } = {},
): { selector: ModelSelector; records: ModelCallRecord[] } {
  const records: ModelCallRecord[] = [];
  const ids = candidates.map((entry) => entry.id);
  const config = SelectorConfig.parse({
    candidates,
    roles: { planning: options.planning ?? ids, code: options.code ?? ids },
    ...(options.breaker === undefined ? {} : { breaker: options.breaker }),
  });
  const selector = createModelSelector(config, {
    ...options.deps,
    onCall: (record) => records.push(record),
  });
  return { selector, records };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (error: unknown) => error,
  );
}

async function modelFailure(promise: Promise<unknown>): Promise<ModelError> {
  const error = await rejection(promise);
  if (!(error instanceof ModelError)) throw new Error(`expected a ModelError, got ${inspect(error)}`);
  return error;
}

async function budgetFailure(promise: Promise<unknown>): Promise<BudgetExceededError> {
  const error = await rejection(promise);
  if (!(error instanceof BudgetExceededError)) {
    throw new Error(`expected a BudgetExceededError, got ${inspect(error)}`);
  }
  return error;
}

describe('fallback', () => {
  const failures: Array<[string, ScriptedReply, string, Partial<CandidateInput>]> = [
    ['429', { status: 429, error: 'Rate limit reached', retryAfter: 1 }, 'MODEL.RATE_LIMITED', {}],
    ['500', { status: 500, error: 'upstream exploded' }, 'MODEL.SERVER_ERROR', {}],
    ['a timeout', { delayMs: 5000, content: 'too late' }, 'MODEL.TIMEOUT', { timeoutMs: 200 }],
    ['a rejected key', { status: 401, error: 'Incorrect API key provided' }, 'MODEL.UNAUTHORIZED', {}],
  ];
  for (const [what, reply, code, extra] of failures) {
    it(`moves from a planning candidate that fails with ${what} to the next one (${code})`, async () => {
      const primary = await serve([reply]);
      const backup = await serve([
        { content: 'from backup', usage: { promptTokens: 10, completionTokens: 5 } },
      ]);
      const { selector, records } = selectorFor([
        candidate('primary', primary.url, extra),
        candidate('backup', backup.url),
      ]);
      const result = await selector.complete({ role: 'planning', taskId: 'task-1', messages });
      expect(result).toMatchObject({
        content: 'from backup',
        candidateId: 'backup',
        tier: 'default',
        endpoint: new URL(backup.url).host,
        fallback: true,
        attempts: 2,
      });
      expect(primary.requests).toHaveLength(1);
      expect(backup.requests).toHaveLength(1);
      expect(records).toEqual([
        expect.objectContaining({
          taskId: 'task-1',
          role: 'planning',
          candidateId: 'primary',
          model: 'primary-model',
          endpoint: new URL(primary.url).host,
          outcome: 'error',
          errorCode: code,
          fallback: false,
          attempt: 1,
          costUsd: 0,
        }),
        expect.objectContaining({
          candidateId: 'backup',
          model: 'backup-model',
          outcome: 'ok',
          fallback: true,
          attempt: 2,
          totalTokens: 15,
        }),
      ]);
    });
  }

  it('moves on from an endpoint that refuses connections (MODEL.CONNECTION)', async () => {
    const backup = await serve([{ content: 'still working' }]);
    const { selector, records } = selectorFor([
      candidate('gone', await closedPortUrl()),
      candidate('backup', backup.url),
    ]);
    const result = await selector.complete({ role: 'code', messages });
    expect(result.content).toBe('still working');
    expect(records.map((record) => [record.candidateId, record.errorCode ?? 'ok'])).toEqual([
      ['gone', 'MODEL.CONNECTION'],
      ['backup', 'ok'],
    ]);
  });

  it('keeps working while one endpoint answers 429, then 500, then times out; then its breaker skips it', async () => {
    const flaky = await serve([
      { status: 429, error: 'slow down' },
      { status: 500, error: 'internal' },
      { delayMs: 5000, content: 'late' },
    ]);
    const backup = await steady({ content: 'backup answer' });
    const { selector, records } = selectorFor(
      [candidate('flaky', flaky.url, { timeoutMs: 200 }), candidate('backup', backup.url)],
      { breaker: { failureThreshold: 3, cooldownMs: 60_000 } },
    );
    for (let index = 0; index < 4; index += 1) {
      const result = await selector.complete({ role: 'planning', taskId: `task-${index}`, messages });
      expect(result.content).toBe('backup answer');
      expect(result.fallback).toBe(true);
    }
    expect(
      records.filter((record) => record.candidateId === 'flaky').map((record) => record.errorCode),
    ).toEqual(['MODEL.RATE_LIMITED', 'MODEL.SERVER_ERROR', 'MODEL.TIMEOUT']);
    // The fourth request skipped the open breaker: one call, to the backup, still marked a fallback.
    expect(flaky.requests).toHaveLength(3);
    expect(records.at(-1)).toMatchObject({
      candidateId: 'backup',
      attempt: 1,
      fallback: true,
      taskId: 'task-3',
    });
    expect(selector.breakerState().find((state) => state.candidateId === 'flaky')?.state).toBe('open');
  });

  it('does not fall back on a 400: the request is at fault', async () => {
    const primary = await serve([{ status: 400, error: { message: 'Invalid schema', param: 'tools' } }]);
    const backup = await steady({ content: 'never' });
    const { selector, records } = selectorFor([
      candidate('primary', primary.url),
      candidate('backup', backup.url),
    ]);
    const error = await modelFailure(selector.complete({ role: 'planning', messages }));
    expect(error.code).toBe('MODEL.BAD_REQUEST');
    expect(error.retryable).toBe(false);
    expect(backup.requests).toHaveLength(0);
    expect(records).toHaveLength(1);
    expect(selector.breakerState().every((state) => state.state === 'closed')).toBe(true);
  });

  it('does not fall back when the caller aborts', async () => {
    const primary = await serve([{ delayMs: 5000, content: 'late' }]);
    const backup = await steady({ content: 'never' });
    const { selector } = selectorFor([candidate('primary', primary.url), candidate('backup', backup.url)]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await modelFailure(
      selector.complete({ role: 'planning', messages, signal: controller.signal }),
    );
    expect(error.code).toBe('MODEL.ABORTED');
    expect(backup.requests).toHaveLength(0);
  });

  it('throws the last failure, retryable, when every candidate failed', async () => {
    const first = await serve([{ status: 429, error: 'busy' }]);
    const second = await serve([{ status: 503, error: 'overloaded' }]);
    const { selector, records } = selectorFor([
      candidate('first', first.url),
      candidate('second', second.url),
    ]);
    const error = await modelFailure(selector.complete({ role: 'code', messages }));
    expect(error.code).toBe('MODEL.SERVER_ERROR');
    expect(error.retryable).toBe(true);
    expect(error.message).toContain('overloaded');
    expect(records.map((record) => record.attempt)).toEqual([1, 2]);
  });
});

describe('circuit breaker', () => {
  it('opens after the threshold, skips the dead endpoint while open, half-opens after the cooldown', async () => {
    let clock = Date.parse('2030-01-01T00:00:00.000Z');
    const dead = await steady({ status: 500, error: 'down' });
    const backup = await steady({ content: 'ok' });
    const { selector, records } = selectorFor(
      [candidate('dead', dead.url), candidate('backup', backup.url)],
      {
        breaker: { failureThreshold: 2, cooldownMs: 10_000 },
        deps: { now: () => clock },
      },
    );
    await selector.complete({ role: 'planning', messages });
    expect(selector.breakerState()[0]).toEqual({ candidateId: 'dead', state: 'closed', openUntil: null });
    await selector.complete({ role: 'planning', messages });
    expect(dead.requests).toHaveLength(2);
    expect(selector.breakerState()[0]).toEqual({
      candidateId: 'dead',
      state: 'open',
      openUntil: '2030-01-01T00:00:10.000Z',
    });

    clock += 9_999;
    for (let index = 0; index < 3; index += 1) {
      expect((await selector.complete({ role: 'planning', messages })).candidateId).toBe('backup');
    }
    expect(dead.requests).toHaveLength(2);

    clock += 1;
    expect(selector.breakerState()[0]?.state).toBe('half-open');
    dead.set({ content: 'back to life' });
    const trial = await selector.complete({ role: 'planning', messages });
    expect(trial).toMatchObject({ candidateId: 'dead', content: 'back to life', fallback: false });
    expect(dead.requests).toHaveLength(3);
    expect(selector.breakerState()[0]).toEqual({ candidateId: 'dead', state: 'closed', openUntil: null });
    expect(records.at(-1)).toMatchObject({ candidateId: 'dead', outcome: 'ok', attempt: 1 });
  });

  it('reopens at once when the half-open trial fails', async () => {
    let clock = 1_000_000;
    const dead = await steady({ status: 502, error: 'bad gateway' });
    const backup = await steady({ content: 'ok' });
    const { selector } = selectorFor([candidate('dead', dead.url), candidate('backup', backup.url)], {
      breaker: { failureThreshold: 3, cooldownMs: 5_000 },
      deps: { now: () => clock },
    });
    for (let index = 0; index < 3; index += 1) await selector.complete({ role: 'code', messages });
    clock += 5_000;
    await selector.complete({ role: 'code', messages });
    expect(dead.requests).toHaveLength(4);
    expect(selector.breakerState()[0]).toMatchObject({
      state: 'open',
      openUntil: new Date(clock + 5_000).toISOString(),
    });
    await selector.complete({ role: 'code', messages });
    expect(dead.requests).toHaveLength(4);
  });

  it('fails with MODEL.UNAVAILABLE, retryable, without calling anyone when every breaker is open', async () => {
    let clock = 0;
    const first = await steady({ status: 500, error: 'down' });
    const second = await steady({ status: 500, error: 'down too' });
    const { selector, records } = selectorFor(
      [candidate('first', first.url), candidate('second', second.url)],
      {
        breaker: { failureThreshold: 1, cooldownMs: 30_000 },
        deps: { now: () => clock },
      },
    );
    expect((await modelFailure(selector.complete({ role: 'planning', messages }))).code).toBe(
      'MODEL.SERVER_ERROR',
    );
    clock += 1_000;
    const error = await modelFailure(selector.complete({ role: 'planning', messages }));
    expect(error.code).toBe('MODEL.UNAVAILABLE');
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(29_000);
    expect(first.requests).toHaveLength(1);
    expect(second.requests).toHaveLength(1);
    expect(records).toHaveLength(2);
  });

  it('shares one breaker between roles that use the same endpoint and model', async () => {
    const dead = await steady({ status: 500, error: 'down' });
    const backup = await steady({ content: 'ok' });
    const { selector } = selectorFor(
      [
        candidate('plan-dead', dead.url, { model: 'shared' }),
        candidate('code-dead', dead.url, { model: 'shared' }),
        candidate('backup', backup.url),
      ],
      { planning: ['plan-dead', 'backup'], code: ['code-dead', 'backup'], breaker: { failureThreshold: 1 } },
    );
    await selector.complete({ role: 'planning', messages });
    await selector.complete({ role: 'code', messages });
    expect(dead.requests).toHaveLength(1);
  });
});

describe('budgets', () => {
  it('stops with BUDGET.EXCEEDED before any call once the task has used its tokens', async () => {
    const server = await steady({ content: 'never' });
    const { selector, records } = selectorFor([candidate('only', server.url)]);
    const error = await budgetFailure(
      selector.complete({
        role: 'planning',
        messages,
        budget: { maxTokens: 1000 },
        spent: { tokens: 1000, costUsd: 0, calls: 3 },
      }),
    );
    expect(error.toJSON()).toEqual({
      code: 'BUDGET.EXCEEDED',
      message: 'task budget exceeded: 1000 of 1000 tokens used',
      retryable: false,
      details: { limit: 'tokens', max: 1000, spent: 1000 },
    });
    expect(server.requests).toHaveLength(0);
    expect(records).toHaveLength(0);
  });

  it('caps the answer at the tokens left, in the field the endpoint knows', async () => {
    const local = await steady({ content: 'short' });
    const openaiLike = await steady({ content: 'short' });
    const { selector } = selectorFor([
      candidate('local', local.url),
      candidate('strict', openaiLike.url, { maxTokensField: 'max_completion_tokens' }),
    ]);
    await selector.complete({
      role: 'planning',
      messages,
      budget: { maxTokens: 1000 },
      spent: { tokens: 700, costUsd: 0, calls: 1 },
    });
    await selector.complete({
      role: 'planning',
      messages,
      preference: { model: 'strict' },
      budget: { maxTokens: 500 },
    });
    await selector.complete({ role: 'planning', messages });
    expect(local.requests.map((request) => request.body?.max_tokens)).toEqual([300, undefined]);
    expect(local.requests[0]?.body?.max_completion_tokens).toBeUndefined();
    expect(openaiLike.requests[0]?.body?.max_completion_tokens).toBe(500);
    expect(openaiLike.requests[0]?.body?.max_tokens).toBeUndefined();
  });

  it('prices every call and stops once the cost budget is spent', async () => {
    const server = await steady({ content: 'priced', usage: { promptTokens: 1000, completionTokens: 500 } });
    const { selector, records } = selectorFor([
      candidate('priced', server.url, { inputUsdPerMTok: 2, outputUsdPerMTok: 8 }),
    ]);
    const budget = { maxCostUsd: 0.01 };
    const first = await selector.complete({ role: 'code', messages, budget });
    expect(first.costUsd).toBeCloseTo(0.006, 12);
    expect(records[0]?.costUsd).toBeCloseTo(0.006, 12);
    const second = await selector.complete({
      role: 'code',
      messages,
      budget,
      spent: { tokens: 1500, costUsd: first.costUsd, calls: 1 },
    });
    expect(second.costUsd).toBeCloseTo(0.006, 12);
    const error = await budgetFailure(
      selector.complete({
        role: 'code',
        messages,
        budget,
        spent: { tokens: 3000, costUsd: first.costUsd + second.costUsd, calls: 2 },
      }),
    );
    expect(error.details).toEqual({ limit: 'costUsd', max: 0.01, spent: 0.012 });
    expect(server.requests).toHaveLength(2);
  });

  it('counts failed calls and fallbacks against the call budget: no call after the limit', async () => {
    const primary = await steady({ status: 429, error: 'busy' });
    const backup = await steady({ content: 'never' });
    const { selector, records } = selectorFor([
      candidate('primary', primary.url),
      candidate('backup', backup.url),
    ]);
    const error = await budgetFailure(
      selector.complete({
        role: 'planning',
        messages,
        budget: { maxModelCalls: 2 },
        spent: { tokens: 0, costUsd: 0, calls: 1 },
      }),
    );
    expect(error.details).toEqual({ limit: 'calls', max: 2, spent: 2 });
    expect(error.code).toBe('BUDGET.EXCEEDED');
    expect(primary.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(0);
    expect(records).toHaveLength(1);
  });

  it('stops the next request once the tokens of earlier calls reach the limit', async () => {
    const server = await steady({ content: 'x', usage: { promptTokens: 80, completionTokens: 20 } });
    const { selector } = selectorFor([candidate('only', server.url)]);
    const budget = { maxTokens: 100 };
    const first = await selector.complete({ role: 'planning', messages, budget });
    expect(first.usage.totalTokens).toBe(100);
    await budgetFailure(
      selector.complete({
        role: 'planning',
        messages,
        budget,
        spent: { tokens: first.usage.totalTokens, costUsd: 0, calls: 1 },
      }),
    );
    expect(server.requests).toHaveLength(1);
  });
});

describe('selection', () => {
  it('puts the asked-for tier first and keeps the others as fallbacks', async () => {
    const strong = await steady({ content: 'strong' });
    const fastOne = await steady({ status: 503, error: 'busy' });
    const fastTwo = await steady({ content: 'fast' });
    const { selector, records } = selectorFor(
      [
        candidate('strong', strong.url, { tier: 'strong' }),
        candidate('fast-1', fastOne.url, { tier: 'fast' }),
        candidate('fast-2', fastTwo.url, { tier: 'fast' }),
      ],
      { planning: ['strong', 'fast-1', 'fast-2'] },
    );
    const order = (tier?: string): string[] =>
      selector
        .order({ role: 'planning', messages, ...(tier === undefined ? {} : { preference: { tier } }) })
        .map((entry) => entry.id);
    expect(order()).toEqual(['strong', 'fast-1', 'fast-2']);
    expect(order('fast')).toEqual(['fast-1', 'fast-2', 'strong']);
    // A tier no candidate has is a wish, not an error: the role's order stands.
    expect(order('huge')).toEqual(['strong', 'fast-1', 'fast-2']);

    const result = await selector.complete({ role: 'planning', messages, preference: { tier: 'fast' } });
    expect(result).toMatchObject({ content: 'fast', candidateId: 'fast-2', tier: 'fast', fallback: true });
    expect(records.map((record) => [record.candidateId, record.tier])).toEqual([
      ['fast-1', 'fast'],
      ['fast-2', 'fast'],
    ]);
    expect(strong.requests).toHaveLength(0);
  });

  it('puts the asked-for model first, by candidate id or model id', async () => {
    const first = await steady({ content: 'first' });
    const second = await steady({ content: 'second' });
    const { selector } = selectorFor([
      candidate('a', first.url, { model: 'gpt-4.1' }),
      candidate('b', second.url, { model: 'qwen2.5-coder:7b' }),
    ]);
    expect((await selector.complete({ role: 'code', messages, preference: { model: 'b' } })).content).toBe(
      'second',
    );
    expect(
      (await selector.complete({ role: 'code', messages, preference: { model: 'qwen2.5-coder:7b' } }))
        .candidateId,
    ).toBe('b');
    expect(
      selector
        .order({ role: 'code', messages, preference: { model: 'b', tier: 'default' } })
        .map((c) => c.id),
    ).toEqual(['b', 'a']);
    expect(second.requests.map((request) => request.body?.model)).toEqual([
      'qwen2.5-coder:7b',
      'qwen2.5-coder:7b',
    ]);
  });

  it('rejects a model preference the role does not have, without calling anyone', async () => {
    const server = await steady({ content: 'never' });
    const { selector } = selectorFor([candidate('planner', server.url), candidate('coder', server.url)], {
      planning: ['planner'],
      code: ['coder'],
    });
    const error = await modelFailure(
      selector.complete({ role: 'planning', messages, preference: { model: 'coder' } }),
    );
    expect(error.code).toBe('MODEL.UNKNOWN_CANDIDATE');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('planner = planner-model');
    expect(server.requests).toHaveLength(0);
  });

  it('skips candidates whose context is smaller than the prompt', async () => {
    const small = await steady({ content: 'small' });
    const large = await steady({ content: 'large' });
    const { selector, records } = selectorFor([
      candidate('small', small.url, { contextTokens: 100 }),
      candidate('large', large.url, { contextTokens: 100_000 }),
    ]);
    const short = await selector.complete({ role: 'planning', messages });
    expect(short.candidateId).toBe('small');
    const long: ModelMessage[] = [{ role: 'user', content: 'x'.repeat(2000) }];
    const result = await selector.complete({ role: 'planning', messages: long });
    expect(result).toMatchObject({ candidateId: 'large', fallback: false, attempts: 1 });
    expect(small.requests).toHaveLength(1);
    expect(records.at(-1)).toMatchObject({ candidateId: 'large', attempt: 1, fallback: false });
  });

  it('fails with MODEL.CONTEXT_TOO_LARGE when no candidate can hold the prompt', async () => {
    const server = await steady({ content: 'never' });
    const { selector } = selectorFor([candidate('tiny', server.url, { contextTokens: 10 })]);
    const error = await modelFailure(
      selector.complete({ role: 'code', messages: [{ role: 'user', content: 'y'.repeat(400) }] }),
    );
    expect(error.code).toBe('MODEL.CONTEXT_TOO_LARGE');
    expect(error.retryable).toBe(false);
    expect(server.requests).toHaveLength(0);
  });

  it('moves a candidate that mostly failed behind the others of its tier, not across tiers', async () => {
    const server = await steady({ content: 'ok' });
    const history: Record<string, { ok: number; failed: number }> = {
      'fast-bad': { ok: 3, failed: 7 },
      'fast-new': { ok: 0, failed: 4 },
      'strong-bad': { ok: 1, failed: 19 },
    };
    let dice = 0.5;
    const { selector, records } = selectorFor(
      [
        candidate('strong-bad', server.url, { tier: 'strong' }),
        candidate('fast-bad', server.url, { tier: 'fast' }),
        candidate('fast-good', server.url, { tier: 'fast' }),
        candidate('fast-new', server.url, { tier: 'fast' }),
      ],
      { deps: { successRate: (_role, id) => history[id], random: () => dice } },
    );
    const order = (): string[] => selector.order({ role: 'planning', messages }).map((entry) => entry.id);
    // strong-bad is alone in its tier; fast-new has too few calls to judge.
    expect(order()).toEqual(['strong-bad', 'fast-good', 'fast-new', 'fast-bad']);
    expect(
      (await selector.complete({ role: 'planning', messages, preference: { tier: 'fast' } })).candidateId,
    ).toBe('fast-good');
    expect(records[0]?.fallback).toBe(false);
    // Now and then the configured order stands, so a demoted candidate's record can recover.
    dice = 0.05;
    expect(order()).toEqual(['strong-bad', 'fast-bad', 'fast-good', 'fast-new']);
  });

  it('lists the role candidates in configured order', async () => {
    const server = await steady({ content: 'ok' });
    const { selector } = selectorFor([candidate('a', server.url), candidate('b', server.url)], {
      planning: ['b', 'a'],
      code: ['a'],
    });
    expect(selector.candidates('planning').map((entry) => entry.id)).toEqual(['b', 'a']);
    expect(selector.candidates('code').map((entry) => entry.id)).toEqual(['a']);
  });
});

describe('secrets', () => {
  it('never puts a key in records, errors, breaker state or the selector itself', async () => {
    const echo = await serve([{ status: 500, error: `upstream rejected Bearer ${KEY}` }]);
    const { selector, records } = selectorFor([candidate('echo', echo.url)]);
    const error = await modelFailure(selector.complete({ role: 'planning', messages }));
    expect(error.message).toContain('[redacted]');
    for (const text of [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10 }),
      JSON.stringify(records),
      JSON.stringify(selector.breakerState()),
      inspect(selector, { depth: 10 }),
      JSON.stringify(selector.candidates('planning')),
    ]) {
      expect(text).not.toContain(KEY);
    }
    expect(echo.requests[0]?.hasAuthorization).toBe(true);
  });
});
