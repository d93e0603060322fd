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
/** One openai client per role, with validated results and a record of every call. */
export {
  createModelClients,
  ModelCallRecord,
  ModelCompletion,
  ModelToolCall,
  ModelUsage,
} from './clients.js';
/** Types of the role clients and their requests. */
export type {
  ModelClients,
  ModelClientsDeps,
  ModelMessage,
  ModelRequest,
  ModelTool,
  ModelToolChoice,
  RoleClient,
} from './clients.js';
/** Typed failures of model calls. */
export { ModelError, ModelErrorCode, toModelError } from './errors.js';
/** Options of a `ModelError`. */
export type { ModelErrorOptions } from './errors.js';
/** A credential that never renders its value, and redaction of known secrets in text. */
export { redactSecrets, Secret } from './secret.js';
