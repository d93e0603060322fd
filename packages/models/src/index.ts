/** Model configuration: env parsing, the parsed shape, and the demo-model switch. */
export {
  isModelEndpointConfigured,
  ModelRole,
  ModelsConfig,
  ModelsConfigError,
  ModelsEnv,
  modelsConfigFromEnv,
  RoleModelConfig,
} from './config.js';
/** Requests, validated completions and the record of every call. */
export { ModelCallRecord, ModelCompletion, ModelToolCall, ModelUsage } from './completion.js';
/** Types of model requests. */
export type { ModelMessage, ModelRequest, ModelTool, ModelToolChoice } from './completion.js';
/** One openai client per role, without fallback (see `createModelSelector`). */
export { createModelClients } from './clients.js';
/** Types of the role clients. */
export type { ModelClients, ModelClientsDeps, RoleClient } from './clients.js';
/** Candidates, roles and breaker settings of the selector, from env variables or a JSON/YAML file. */
export {
  BreakerConfig,
  ModelCandidate,
  parseSelectorConfig,
  SelectorConfig,
  selectorConfigFromEnv,
} from './selector-config.js';
/** Which request field caps the answer's length. */
export { MaxTokensField } from './endpoint.js';
/** Per-task budgets of tokens, cost and model calls. */
export { BudgetExceededError, callCostUsd, checkBudget, NOTHING_SPENT, TaskBudget } from './budget.js';
/** Types of budgets. */
export type { BudgetLimit, BudgetSpent } from './budget.js';
/** The model selector: candidate order, fallback, circuit breakers, budgets. */
export { createModelSelector, estimatePromptTokens, isFallbackError } from './selector.js';
/** Types of the selector. */
export type {
  CandidateBreakerState,
  ModelPreference,
  ModelSelector,
  ModelSelectorDeps,
  SelectedCompletion,
  SelectorRequest,
} from './selector.js';
/** A circuit breaker's state. */
export type { BreakerState } from './breaker.js';
/** Typed failures of model calls. */
export { ModelError, ModelErrorCode, toModelError } from './errors.js';
/** Options of a `ModelError`. */
export type { ModelErrorOptions } from './errors.js';
/** A credential that never renders its value, and redaction of known secrets in text. */
export { redactSecrets, Secret } from './secret.js';
