/** @tandem/service-kit: what every Tandem service shares at its edges. */
export {
  BaseConfig,
  ConfigError,
  ToolPolicyConfig,
  parseConfig,
  loadConfigOrExit,
  loadSelectorConfigOrExit,
  toolCheckContextFrom,
  natsConnectionSettings,
  natsServers,
} from './config.js';
export type { NatsConnectionSettings } from './config.js';
export { createLogger } from './logger.js';
export type { Log } from './logger.js';
export { createMetrics } from './metrics.js';
export type { ServiceMetrics } from './metrics.js';
export { createHttpServer, checkJsonBody } from './http.js';
export type { HttpServer, ReadinessCheck } from './http.js';
/** Bearer-token auth: token generation and hashing, the database lookup, role, agent and task checks. */
export {
  databaseAuth,
  generateApiToken,
  hashApiToken,
  hasRole,
  mayActAsAgent,
  mayActOnTask,
  maySeeApproverGroup,
  principalRef,
  reachesTask,
  requirePrincipal,
  requireTaskAccess,
} from './auth.js';
/** Writes of API tokens shared by the approval service and `pnpm start`: the first admin token, inserts. */
export {
  ADMIN_TOKENS_LOCK,
  BOOTSTRAP_ADMIN_NAME,
  ensureBootstrapAdmin,
  insertApiToken,
  lockAdminTokens,
} from './api-tokens.js';
export type { AdminTokenState } from './api-tokens.js';
/** Types of bearer-token auth. */
export type { AuthOptions, FindPrincipal, Principal, TaskAccess } from './auth.js';
export { onShutdown } from './lifecycle.js';
export { outboxEvent, outboxCloudEvent } from './outbox.js';
/** Prometheus metric classes, for a service's own metrics on its registry. */
export { Counter, Gauge, Histogram } from 'prom-client';
export { createServiceRuntime } from './runtime.js';
/** The outbox relay's readiness check (not draining past a limit), and its default limit (30 s). */
export { DEFAULT_OUTBOX_STALE_AFTER_MS, outboxReadiness } from './runtime.js';
export type { ServiceRuntime } from './runtime.js';
export { createModelCallRecorder, createRecordedModelSelector } from './model-calls.js';
export { findCancelTarget } from './tasks.js';
