import { randomUUID } from 'node:crypto';
import type { ModelRole } from './config.js';
import { ModelCallRecord } from './completion.js';
import type { ModelCompletion, ModelRequest } from './completion.js';
import { callCostUsd, checkBudget, NOTHING_SPENT } from './budget.js';
import type { BudgetSpent, TaskBudget } from './budget.js';
import { createBreakers } from './breaker.js';
import type { BreakerState } from './breaker.js';
import { createModelEndpoint } from './endpoint.js';
import type { ModelEndpoint } from './endpoint.js';
import { ModelError } from './errors.js';
import type { ModelErrorCode } from './errors.js';
import { SelectorConfig } from './selector-config.js';
import type { ModelCandidate } from './selector-config.js';
import { ModelsConfigError } from './config.js';

/** What a task asks of the selector: a tier (`fast`, `strong`, ...) or one model, by candidate id or model id. */
export interface ModelPreference {
  tier?: string;
  model?: string;
}

/** One selector request: a model request for a role, with the task's preference and budget. */
export interface SelectorRequest extends ModelRequest {
  role: ModelRole;
  preference?: ModelPreference;
  budget?: TaskBudget;
  /** Spent so far by this task before this request (the caller sums its stored calls). */
  spent?: BudgetSpent;
}

/** A completion and which candidate gave it. */
export interface SelectedCompletion extends ModelCompletion {
  candidateId: string;
  tier: string;
  /** Host (and port) of the endpoint. */
  endpoint: string;
  costUsd: number;
  /** True when an earlier candidate failed or had its breaker open. */
  fallback: boolean;
  /** Calls made for this request, this one included. */
  attempts: number;
}

/** The state of one candidate's circuit breaker; `openUntil` is when an open breaker lets a trial through. */
export interface CandidateBreakerState {
  candidateId: string;
  state: BreakerState;
  openUntil: string | null;
}

/** Picks a candidate model per role and request, falls back on endpoint failures, enforces task budgets. */
export interface ModelSelector {
  /**
   * Calls candidates in order until one answers. Throws `ModelError` (the last failure, or
   * `MODEL.UNAVAILABLE` / `MODEL.UNKNOWN_CANDIDATE` / `MODEL.CONTEXT_TOO_LARGE` / `MODEL.ABORTED`)
   * or `BudgetExceededError`.
   */
  complete(request: SelectorRequest): Promise<SelectedCompletion>;
  /** The role's candidates in configured order. */
  candidates(role: ModelRole): readonly ModelCandidate[];
  /** The order `complete` would try for this request, before breakers (throws `MODEL.UNKNOWN_CANDIDATE`). */
  order(
    request: Pick<SelectorRequest, 'role' | 'preference' | 'messages' | 'tools'>,
  ): readonly ModelCandidate[];
  /** Every candidate's breaker, in configured order. */
  breakerState(): CandidateBreakerState[];
}

/** Dependencies of `createModelSelector`. */
export interface ModelSelectorDeps {
  /** Called after every call (each attempt); an exception here propagates to the caller. */
  onCall?: (record: ModelCallRecord) => void;
  /** Epoch ms for breakers and `startedAt`; default `Date.now`. */
  now?: () => number;
  /** Learned outcomes of a role's candidate (e.g. from stored calls); undefined when unknown. */
  successRate?: (role: ModelRole, candidateId: string) => { ok: number; failed: number } | undefined;
  /** Uniform [0, 1) for exploration (a demoted candidate keeps its place now and then); default `Math.random`. */
  random?: () => number;
}

// A candidate needs this many recorded calls before its success rate may demote it.
const MIN_CALLS_FOR_LEARNING = 10;
const DEMOTE_BELOW_SUCCESS_RATE = 0.5;
// A demoted candidate is only called when the others fail, so its record could never recover: one
// request in ten leaves it in place.
const EXPLORE_PROBABILITY = 0.1;

/**
 * Failures that say "this endpoint or model is unwell right now" rather than "this request is wrong":
 * they fall back to the next candidate and count towards its breaker.
 */
const FALLBACK_CODES: ReadonlySet<ModelErrorCode> = new Set<ModelErrorCode>([
  'MODEL.RATE_LIMITED',
  'MODEL.SERVER_ERROR',
  'MODEL.TIMEOUT',
  'MODEL.CONNECTION',
  // A rejected key belongs to one endpoint; another endpoint has its own.
  'MODEL.UNAUTHORIZED',
  // An answer that is not a chat completion is the server's fault, not the request's.
  'MODEL.INVALID_RESPONSE',
]);

/** Whether a failure moves on to the next candidate (and counts towards the candidate's breaker). */
export function isFallbackError(code: ModelErrorCode): boolean {
  return FALLBACK_CODES.has(code);
}

/** About four characters a token, over the messages and tools as sent. */
export function estimatePromptTokens(request: Pick<ModelRequest, 'messages' | 'tools'>): number {
  const characters = JSON.stringify(request.messages).length + JSON.stringify(request.tools ?? []).length;
  return Math.ceil(characters / 4);
}

/** Creates a selector over parsed config; throws `ModelsConfigError` when the config is inconsistent. */
export function createModelSelector(config: SelectorConfig, deps: ModelSelectorDeps = {}): ModelSelector {
  const parsed = SelectorConfig.safeParse(config);
  if (!parsed.success) {
    throw new ModelsConfigError(
      parsed.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`),
    );
  }
  const { candidates, roles, breaker } = parsed.data;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const byId = new Map(candidates.map((candidate) => [candidate.id, candidate]));
  const roleCandidates = {
    planning: roles.planning.map((id) => required(byId.get(id))),
    code: roles.code.map((id) => required(byId.get(id))),
  };
  const endpoints = new Map<string, ModelEndpoint>(
    candidates.map((candidate) => [
      candidate.id,
      createModelEndpoint({
        model: candidate.model,
        baseURL: candidate.baseURL,
        apiKey: candidate.apiKey,
        timeoutMs: candidate.timeoutMs,
        maxRetries: candidate.maxRetries,
        maxTokensField: candidate.maxTokensField,
      }),
    ]),
  );
  const breakers = createBreakers(breaker, now);
  // One breaker per endpoint and model: two candidates naming the same pair share it.
  const breakerKey = (candidate: ModelCandidate): string =>
    `${candidate.baseURL.replace(/\/+$/, '')} ${candidate.model}`;

  function order(
    request: Pick<SelectorRequest, 'role' | 'preference' | 'messages' | 'tools'>,
  ): ModelCandidate[] {
    const { role, preference } = request;
    let list = demoteUnreliable(role, roleCandidates[role]);
    const tier = preference?.tier;
    if (tier !== undefined) {
      list = [...list.filter((candidate) => candidate.tier === tier), ...list.filter((c) => c.tier !== tier)];
    }
    const wanted = preference?.model;
    if (wanted !== undefined) {
      const byCandidateId = list.filter((candidate) => candidate.id === wanted);
      const chosen = byCandidateId.length > 0 ? byCandidateId : list.filter((c) => c.model === wanted);
      if (chosen.length === 0) {
        throw new ModelError(
          'MODEL.UNKNOWN_CANDIDATE',
          `the ${role} role has no candidate "${wanted}" (candidates: ${list
            .map((candidate) => `${candidate.id} = ${candidate.model}`)
            .join(', ')})`,
          { retryable: false },
        );
      }
      list = [...chosen, ...list.filter((candidate) => !chosen.includes(candidate))];
    }
    const promptTokens = estimatePromptTokens(request);
    return list.filter((candidate) => candidate.contextTokens >= promptTokens);
  }

  // Within each tier, candidates that mostly failed move behind the others of that tier; the
  // positions the tier holds in the role's list stay the same.
  function demoteUnreliable(role: ModelRole, list: readonly ModelCandidate[]): ModelCandidate[] {
    if (deps.successRate === undefined || random() < EXPLORE_PROBABILITY) return [...list];
    const unreliable = new Set(
      list.filter((candidate) => {
        const outcomes = deps.successRate?.(role, candidate.id);
        if (outcomes === undefined) return false;
        const total = outcomes.ok + outcomes.failed;
        return total >= MIN_CALLS_FOR_LEARNING && outcomes.ok / total < DEMOTE_BELOW_SUCCESS_RATE;
      }),
    );
    const reordered = new Map<string, ModelCandidate[]>();
    for (const candidate of list) {
      if (reordered.has(candidate.tier)) continue;
      const tier = list.filter((other) => other.tier === candidate.tier);
      reordered.set(candidate.tier, [
        ...tier.filter((other) => !unreliable.has(other)),
        ...tier.filter((other) => unreliable.has(other)),
      ]);
    }
    return list.map((candidate) => required(reordered.get(candidate.tier)?.shift()));
  }

  async function complete(request: SelectorRequest): Promise<SelectedCompletion> {
    const { role } = request;
    const all = roleCandidates[role];
    const ordered = order(request);
    if (ordered.length === 0) {
      const largest = Math.max(...all.map((candidate) => candidate.contextTokens));
      throw new ModelError(
        'MODEL.CONTEXT_TOO_LARGE',
        `the ${role} prompt is about ${estimatePromptTokens(request)} tokens, more than any ${role} candidate's context (largest ${largest})`,
        { retryable: false },
      );
    }
    const spentBefore = request.spent ?? NOTHING_SPENT;
    const used: BudgetSpent = { tokens: 0, costUsd: 0, calls: 0 };
    let lastError: ModelError | undefined;
    let passedOver = false;

    for (const candidate of ordered) {
      if (request.signal?.aborted === true) {
        throw new ModelError('MODEL.ABORTED', `${role} model call was aborted by the caller`, {
          retryable: false,
          cause: request.signal.reason,
        });
      }
      const key = breakerKey(candidate);
      if (!breakers.acquire(key)) {
        passedOver = true;
        continue;
      }
      const spent: BudgetSpent = {
        tokens: spentBefore.tokens + used.tokens,
        costUsd: spentBefore.costUsd + used.costUsd,
        calls: spentBefore.calls + used.calls,
      };
      try {
        checkBudget(request.budget, spent);
      } catch (error) {
        breakers.released(key);
        throw error;
      }
      const maxTokens = request.budget?.maxTokens;
      // The prompt is only estimated, so the whole remainder is offered to the answer; the budget
      // check before the task's next call stops it once the total is reached.
      const maxOutputTokens = maxTokens === undefined ? undefined : Math.max(1, maxTokens - spent.tokens);
      const endpoint = required(endpoints.get(candidate.id));
      const startedAt = new Date(now()).toISOString();
      const result = await endpoint.call(
        role,
        request,
        maxOutputTokens === undefined ? {} : { maxOutputTokens },
      );
      used.calls += 1;
      const attempt = used.calls;
      const base = {
        id: randomUUID(),
        taskId: request.taskId ?? null,
        role,
        model: candidate.model,
        endpoint: endpoint.endpoint,
        candidateId: candidate.id,
        tier: candidate.tier,
        startedAt,
        fallback: passedOver,
        attempt,
        ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }),
      };

      if (result.ok) {
        const { completion } = result;
        const costUsd = callCostUsd(candidate, completion.usage);
        used.tokens += completion.usage.totalTokens;
        used.costUsd += costUsd;
        breakers.succeeded(key);
        deps.onCall?.(
          ModelCallRecord.parse({
            ...base,
            ...completion.usage,
            costUsd,
            latencyMs: completion.latencyMs,
            outcome: 'ok',
          }),
        );
        return {
          ...completion,
          candidateId: candidate.id,
          tier: candidate.tier,
          endpoint: endpoint.endpoint,
          costUsd,
          fallback: passedOver,
          attempts: attempt,
        };
      }

      const { error } = result;
      const fallsBack = isFallbackError(error.code);
      if (fallsBack) breakers.failed(key);
      else if (error.code === 'MODEL.ABORTED') breakers.released(key);
      // Any other answer (400, 404, 422) proves the endpoint is up: the request was at fault.
      else breakers.succeeded(key);
      deps.onCall?.(
        ModelCallRecord.parse({
          ...base,
          promptTokens: 0,
          completionTokens: 0,
          totalTokens: 0,
          costUsd: 0,
          latencyMs: result.latencyMs,
          outcome: 'error',
          errorCode: error.code,
        }),
      );
      if (!fallsBack) throw error;
      lastError = error;
      passedOver = true;
    }

    if (lastError !== undefined) throw lastError;
    const reopenAt = Math.min(
      ...ordered.map((candidate) => breakers.state(breakerKey(candidate)).openUntil ?? now()),
    );
    const retryAfterMs = Math.max(0, reopenAt - now());
    throw new ModelError(
      'MODEL.UNAVAILABLE',
      `every ${role} candidate that fits the prompt has its circuit breaker open (${ordered
        .map((candidate) => candidate.id)
        .join(', ')}); the first may be tried again in ${retryAfterMs} ms`,
      { retryable: true, retryAfterMs },
    );
  }

  return {
    complete,
    candidates: (role) => roleCandidates[role],
    order,
    breakerState: () =>
      candidates.map((candidate) => {
        const { state, openUntil } = breakers.state(breakerKey(candidate));
        return {
          candidateId: candidate.id,
          state,
          openUntil: openUntil === null ? null : new Date(openUntil).toISOString(),
        };
      }),
  };
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('selector invariant broken: a configured candidate is missing');
  return value;
}
