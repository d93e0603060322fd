import { randomUUID } from 'node:crypto';
import type { ModelRole, ModelsConfig, RoleModelConfig } from './config.js';
import { ModelCallRecord } from './completion.js';
import type { ModelCompletion, ModelRequest } from './completion.js';
import { createModelEndpoint } from './endpoint.js';

/** The model of one role. */
export interface RoleClient {
  readonly role: ModelRole;
  readonly model: string;
  /** Host of the endpoint, safe to log. */
  readonly endpoint: string;
  /** One chat-completions call; throws `ModelError`. */
  complete(request: ModelRequest): Promise<ModelCompletion>;
}

/** One client per role. */
export interface ModelClients {
  planning: RoleClient;
  code: RoleClient;
}

/** Dependencies of `createModelClients`. */
export interface ModelClientsDeps {
  /** Called once per `complete()`, after it succeeded or failed; an exception here propagates to the caller. */
  onCall?: (record: ModelCallRecord) => void;
  /** Clock for `startedAt`; default `() => new Date()`. */
  now?: () => Date;
}

/**
 * Creates one openai client per role from parsed config; every call has an explicit timeout and retry
 * count. No fallback, breaker or budget: `createModelSelector` adds those.
 */
export function createModelClients(config: ModelsConfig, deps: ModelClientsDeps = {}): ModelClients {
  return {
    planning: createRoleClient('planning', config.planning, config, deps),
    code: createRoleClient('code', config.code, config, deps),
  };
}

function createRoleClient(
  role: ModelRole,
  roleConfig: RoleModelConfig,
  config: ModelsConfig,
  deps: ModelClientsDeps,
): RoleClient {
  const target = createModelEndpoint({
    model: roleConfig.model,
    baseURL: roleConfig.baseURL,
    apiKey: roleConfig.apiKey,
    timeoutMs: config.timeoutMs,
    maxRetries: config.maxRetries,
  });
  const now = deps.now ?? (() => new Date());

  return {
    role,
    model: roleConfig.model,
    endpoint: target.endpoint,
    async complete(request) {
      const startedAt = now();
      const result = await target.call(role, request);
      const base = {
        id: randomUUID(),
        taskId: request.taskId ?? null,
        role,
        model: roleConfig.model,
        endpoint: target.endpoint,
        // The same id the env-configured selector gives this model, so records of both line up.
        candidateId: `${role}:${roleConfig.model}`,
        tier: 'default',
        costUsd: 0,
        fallback: false,
        attempt: 1,
        startedAt: startedAt.toISOString(),
        ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }),
      };
      if (!result.ok) {
        deps.onCall?.(
          ModelCallRecord.parse({
            ...base,
            promptTokens: 0,
            completionTokens: 0,
            totalTokens: 0,
            latencyMs: result.latencyMs,
            outcome: 'error',
            errorCode: result.error.code,
          }),
        );
        throw result.error;
      }
      const { completion } = result;
      deps.onCall?.(
        ModelCallRecord.parse({
          ...base,
          ...completion.usage,
          latencyMs: completion.latencyMs,
          outcome: 'ok',
        }),
      );
      return completion;
    },
  };
}
