/** @tandem/launcher: runs Tandem's five services as processes (pnpm start, end-to-end tests). */
export { startServices, formatLogLine } from './services.js';
export type { RunningServices, ServiceProcess, StartServicesOptions, SupervisionEvent } from './services.js';
export { DEFAULT_RESTART_POLICY, nextRestartDelay } from './restart-policy.js';
export type { RestartPolicy } from './restart-policy.js';
export { SERVICES, PORT_SETTINGS, repositoryRoot } from './paths.js';
export type { ServiceName } from './paths.js';
export { startEmbeddedPostgres } from './embedded-postgres.js';
export type { EmbeddedPostgres } from './embedded-postgres.js';
export { ensureNats, isListening } from './nats.js';
export type { NatsServer } from './nats.js';
export { startDemoModel, demoReply, DEMO_TASK } from './demo-model.js';
export { submitAndFollow } from './demo-run.js';
export { ensureAdminToken, createDemoToken, DEMO_TOKEN_NAME } from './tokens.js';
export type { AdminTokenState } from './tokens.js';
