/** Scripted OpenAI-compatible model server for tests. */
export { createScriptedModelServer } from './model-server/server.js';
/** A running scripted model server. */
export type { ScriptedModelServer } from './model-server/server.js';
/** The script and recorded-request types of the scripted model server. */
export type {
  ChatRequestRecord,
  ModelScript,
  RecordedRequest,
  ScriptedContentReply,
  ScriptedDelayReply,
  ScriptedErrorReply,
  ScriptedReply,
  ScriptedToolCall,
  ScriptedToolCallsReply,
  ScriptedUsage,
  ScriptMatcher,
} from './model-server/script.js';
/** Zod schemas of the chat-completions request the scripted server accepts. */
export { ChatCompletionRequest, ChatMessage, ChatTool } from './model-server/request-schema.js';
/** Postgres and NATS discovery for tests: env, local ports, testcontainers. */
export {
  discoverNats,
  discoverPostgres,
  findNats,
  findPostgres,
  START_NATS_COMMAND,
  START_POSTGRES_COMMAND,
} from './infra.js';
/** Types of infrastructure discovery. */
export type { DiscoveryOptions, InfraSource, NatsLocation, PostgresLocation } from './infra.js';
/** Per-test databases named `test_<random>`. */
export { createTestDatabase, dropTestDatabase, isTestDatabaseName } from './database.js';
/** Types of per-test databases. */
export type { CreateTestDatabaseOptions, TestDatabase } from './database.js';
/** Per-test NATS subject prefixes and the shared stream-name rule. */
export { cleanupNatsPrefix, createTestPrefix, streamNameFor, streamPrefixFor } from './nats.js';
/** API tokens stored in a test database through the ApiToken module of @tandem/db (role, agents, groups; optionally revoked). */
export { createTestToken } from './tokens.js';
/** Types of test tokens. */
export type { TestTokenOptions } from './tokens.js';
/** Polling and free ports. */
export { getFreePort, waitFor } from './wait.js';
/** Options of `waitFor`. */
export type { WaitForOptions } from './wait.js';
/** nats-servers with JetStream on loopback started by a test: a cluster of n, or one server (n = 1). */
export { startNatsCluster } from './nats-cluster.js';
/** Types of a test's own NATS cluster. */
export type { NatsCluster, NatsClusterNode, StartNatsClusterOptions } from './nats-cluster.js';
/** An allow-tools approval policy and the task text of a planning request (harness, bench, fault suite). */
export { allowToolsPolicy, firstUserText } from './workload.js';
