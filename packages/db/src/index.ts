// @tandem/db: the only package that imports Prisma. Services get a client, the store functions of the
// messaging tables, the migrator and the row types from here.
import type { Prisma as PrismaTypes } from './generated/prisma/client.js';

/** Connects Prisma (through @prisma/adapter-pg) on a pool: `{ prisma, pool, close() }`. */
export { createDb } from './client.js';
/** Options of createDb: url, poolMax, log. */
export type { CreateDbOptions } from './client.js';
/** A connected database: the Prisma client, its pg pool and close(). */
export type { Db } from './client.js';
/** The logger shape createDb writes to (a pino logger fits). */
export type { DbLog } from './client.js';
/** The interactive-transaction client given to `prisma.$transaction(async (tx) => ...)` (being replaced by Tx). */
export type { PrismaTx } from './client.js';
/** Runs a function in one transaction (Kysely), hooks after COMMIT, DB.CONNECTION_LOST on a dead connection. */
export { transaction } from './transaction.js';
/** A transaction, what the database can run queries on, and transaction options. */
export type { Queryable, TransactionOptions, Tx } from './transaction.js';
/** The generated table types of the schema (Kysely). */
export type { DB } from './generated/kysely.js';
/** A Json column's value (`json(value)`) and the column types the generated schema uses. */
export { json } from './column-types.js';
/** Types of Json and timestamp columns. */
export type { JsonColumn, JsonInput, UtcTimestamp } from './column-types.js';
/** Runs a hook after the COMMIT of a transaction (at once outside one). */
export { afterCommit } from './commit-hooks.js';
/** Whether an error says the connection failed rather than a statement; the retryable error for it. */
export { connectionLost, isConnectionError } from './connection-errors.js';
/** The client or a transaction client: what store functions that may run either way accept. */
export type { DbClient } from './client.js';
/** True for a unique-constraint violation from Prisma (P2002), a raw Prisma query or pg. */
export { isUniqueViolation } from './client.js';

/** The Prisma client type (construct it only through createDb). */
export type { PrismaClient } from './generated/prisma/client.js';
/** Prisma's namespace: JsonValue, InputJsonValue, DbNull, JsonNull, sql, model input types, error classes. */
export { Prisma } from './generated/prisma/client.js';

/** A JSON value as read from a Json column. */
export type JsonValue = PrismaTypes.JsonValue;
/** A JSON value accepted when writing a Json column. */
export type InputJsonValue = PrismaTypes.InputJsonValue;

/** Row of Task (writer: planner). */
export type { Task } from './generated/prisma/client.js';
/** Row of Plan (writer: planner). */
export type { Plan } from './generated/prisma/client.js';
/** Row of PlanStep (writer: planner). */
export type { PlanStep } from './generated/prisma/client.js';
/** Row of TaskRun (writer: executor). */
export type { TaskRun } from './generated/prisma/client.js';
/** Row of StepRun (writer: executor). */
export type { StepRun } from './generated/prisma/client.js';
/** Row of ApprovalRequest (writer: approval). */
export type { ApprovalRequest } from './generated/prisma/client.js';
/** Row of Feedback (writer: learning). */
export type { Feedback } from './generated/prisma/client.js';
/** Row of Agent (writer: approval). */
export type { Agent } from './generated/prisma/client.js';
/** Row of AgentTrust (writer: approval). */
export type { AgentTrust } from './generated/prisma/client.js';
/** Row of ModelCall (writer: the service that made the call). */
export type { ModelCall } from './generated/prisma/client.js';
/** Row of SandboxRun (writer: sandbox-runner). */
export type { SandboxRun } from './generated/prisma/client.js';
/** Row of LearningPattern (writer: learning). */
export type { LearningPattern } from './generated/prisma/client.js';
/** Row of PromptVariant (writer: learning). */
export type { PromptVariant } from './generated/prisma/client.js';
/** Row of PlanMetrics (writer: planner). */
export type { PlanMetrics } from './generated/prisma/client.js';
/** Row of Outbox (writer: every publisher, its own rows). */
export type { Outbox } from './generated/prisma/client.js';
/** Row of ProcessedMessage (writer: every consumer, its own rows). */
export type { ProcessedMessage } from './generated/prisma/client.js';
/** Row of DeadLetter (writer: every consumer, its own rows). */
export type { DeadLetter } from './generated/prisma/client.js';
/** Row of WebhookDelivery (writer: approval). */
export type { WebhookDelivery } from './generated/prisma/client.js';
/** Row of ReceivedWebhook (writer: approval). */
export type { ReceivedWebhook } from './generated/prisma/client.js';
/** Row of ApiToken (writer: approval). */
export type { ApiToken } from './generated/prisma/client.js';
/** Row of AuditLog (writer: the deciding service). */
export type { AuditLog } from './generated/prisma/client.js';

/** Applies pending migrations under Prisma's advisory lock, Prisma-compatible bookkeeping. */
export { migrate } from './migrate.js';
/** Options of migrate: url, migrationsDir, lockTimeoutMs. */
export type { MigrateOptions } from './migrate.js';
/** What migrate did: applied, alreadyApplied, unknown. */
export type { MigrateResult } from './migrate.js';
/** Thrown when migrate refuses (checksum mismatch, failed migration recorded, lock timeout, ...). */
export { MigrationError, type MigrationErrorCode } from './migrate.js';
/** One migration folder read from disk: name, sql, checksum. */
export type { MigrationFile } from './migrate.js';
/** Reads the migration folders, sorted by name. */
export { readMigrations } from './migrate.js';
/** sha256 hex of a migration script, as Prisma records it. */
export { migrationChecksum } from './migrate.js';
/** Absolute path of the repository's prisma/migrations folder. */
export { defaultMigrationsDir } from './migrate.js';

/** Writes outbox rows in the caller's transaction. */
export {
  enqueueOutbox,
  enqueueOutboxPrisma,
  enqueueOutboxSql,
  onOutboxCommitted,
  prismaOutboxWrites,
} from './outbox.js';
/** A message to enqueue: id, publisher, subject, payload, headers. */
export type { OutboxMessage } from './outbox.js';
/** A relay's claim on outbox rows (holder, lease), and the hand-over of a pool's plain-SQL transactions. */
export type { OutboxClaim, OutboxHandOver } from './outbox.js';
/** An unpublished outbox row as the relay reads it. */
export type { PendingOutboxMessage } from './outbox.js';
/** Reads a publisher's unpublished rows in seq order without claiming them (tests, inspection). */
export { fetchUnpublished } from './outbox.js';
/** Claims a publisher's oldest unclaimed unpublished rows for a lease (FOR UPDATE SKIP LOCKED). */
export { claimUnpublished } from './outbox.js';
/** Releases a relay's claims on rows it did not publish. */
export { releaseClaims } from './outbox.js';
/** Marks outbox rows as published (a durable commit). */
export { markPublished } from './outbox.js';
/** Counts a failed publish and keeps its error message. */
export { recordPublishFailure } from './outbox.js';
/** Dead-letters an unpublishable outbox row (DeadLetter row, deadLetteredAt, replacements) in one transaction. */
export { deadLetterOutboxRow } from './outbox.js';
/** An outbox row to dead-letter: id, consumer, code, reason. */
export type { OutboxDeadLetter } from './outbox.js';
/** Reads one outbox row's subject and payload text (a claim check's reference). */
export { readOutboxPayload } from './outbox.js';
/** A stored outbox payload: subject and JSON text. */
export type { StoredOutboxPayload } from './outbox.js';
/** Age in ms of a publisher's oldest row not yet published nor dead-lettered (null: none). */
export { oldestUnpublishedAgeMs } from './outbox.js';

/** Records a handled message in the handler's transaction; false if it was already handled. */
export { markProcessed, markProcessedPrisma, markProcessedSql } from './inbox.js';

/** Text and JSON text Postgres can store: NUL and lone surrogates replaced by U+FFFD. */
export { toJsonText, toText } from './text.js';
/** Records that a sandbox job starts (once per key, attempts counted), or finds its stored result. */
export { startSandboxRun } from './sandbox-runs.js';
/** Stores a run's result once on its row, for the attempt that holds it; its text made safe. */
export { finishSandboxRun } from './sandbox-runs.js';
/** Types of the sandbox-run store. */
export type {
  SandboxRunResult,
  SandboxRunStart,
  SandboxRunStarted,
  StoredSandboxRun,
} from './sandbox-runs.js';
/** Records a dead letter, idempotent on (consumer, streamSeq) and on id. */
export { recordDeadLetter } from './dead-letters.js';
/** A dead letter to record. */
export type { DeadLetterInput } from './dead-letters.js';
/** The task a message payload names (data.taskId, CloudEvent subject, correlationId), unverified. */
export { taskIdOfPayload } from './dead-letters.js';
/** Dead letters of task messages not yet dealt with, each with the outbox row its message id names. */
export { pendingTaskDeadLetters } from './dead-letters.js';
/** A task's dead letter as the executor's sweep reads it. */
export type { TaskDeadLetter } from './dead-letters.js';
/** Records what became of a task's dead letter (executor), once. */
export { recordDeadLetterOutcome } from './dead-letters.js';
/** Row of EarlyCancel (writer: executor). */
export type { EarlyCancel } from './generated/prisma/client.js';
/** Row of DeadLetterOutcome (writer: executor). */
export type { DeadLetterOutcome } from './generated/prisma/client.js';
/** Plain SQL on the pool beneath Prisma, for hot paths: one statement, or a transaction. */
export {
  UTC_NOW,
  disablePreparedStatements,
  insertRows,
  poolSql,
  sqlTransaction,
  utcWallClock,
} from './sql.js';
/** Types of the plain-SQL layer. */
export type { Sql, SqlColumn, SqlResult } from './sql.js';
/** A task's model use so far (tokens, cost, calls), for budgets. */
export { modelUseOfTask } from './model-calls.js';
/** Types of model use. */
export type { TaskModelUse } from './model-calls.js';
/** Parses a stored value with its schema; DB.ROW_INVALID when it does not match. */
export { parseStored } from './rows.js';
/** The schema shape parseStored accepts (a zod schema fits). */
export type { RowSchema } from './rows.js';

// One query module per table under src/tables/ (the only place its table is written). Each block below
// is owned by the service that writes those tables.
// --- tables: executor (TaskRun, StepRun, StepAttempt, WorkspaceFile, EarlyCancel, DeadLetterOutcome) ---
// --- end tables: executor ---
// --- tables: approval (ApprovalRequest, Agent, AgentTrust, TrustEvent, WebhookDelivery, ReceivedWebhook, ApiToken, AuditLog) ---
/** What an approval read runs on: a connected Db or a transaction. */
export type { ApprovalSource } from './reads/approval.js';
/** The task as submitted (goal, input unparsed, submittedBy, source, kind). */
export type { StoredTaskContext, TaskApprovalState, StoredPlanStep } from './reads/approval.js';
/** The task's context for judging its steps, or null. */
export { approvalTaskContext } from './reads/approval.js';
/** In one statement: whether the task's approvals were cancelled, its plans with requests, existing steps, its context. */
export { taskApprovalState } from './reads/approval.js';
/** The steps of a stored plan in order, with its task's kind. */
export { storedPlanSteps } from './reads/approval.js';
/** One planned step with its plan's quality factors (pattern ids), or null. */
export { planStepContext } from './reads/approval.js';
/** The steps of plans with their requests' risk levels, for the approval API's view. */
export { planStepsForViews } from './reads/approval.js';
/** The stored results of a plan's completed steps. */
export { completedStepResults } from './reads/approval.js';
/** The executor's state of a step, or null. */
export { stepRunStatus } from './reads/approval.js';
/** The task a cancel request names, as the approval service resolves it (its requests count too). */
export { approvalCancelTarget } from './reads/approval.js';
/** A task's agent and submitting token (who may act on it), or null. */
export { taskOwnership } from './reads/approval.js';
/** The database's clock. */
export { databaseNow } from './reads/approval.js';
/** Advisory locks: one task's approval writes; the set of admin tokens (and its key). */
export { ADMIN_TOKENS_LOCK, lockAdminTokens, lockApprovalTask } from './locks.js';
/** Types of ApprovalRequest rows and their columns. */
export type {
  ApprovalKind,
  ApprovalMode,
  ApprovalOnExpiry,
  ApprovalStatus,
  NewApprovalRequest,
  StoredApprovalRequest,
  StoredRiskLevel,
} from './tables/approval-request.js';
/** Approval requests by status, task, group and limit, oldest first. */
export { listApprovalRequests } from './tables/approval-request.js';
/** One approval request by id or step, or null. */
export { findApprovalRequest } from './tables/approval-request.js';
/** One approval request by id or step, locked FOR UPDATE, or null. */
export { lockApprovalRequest } from './tables/approval-request.js';
/** Whether a task has a request waiting for values. */
export { hasRequestAwaitingValues } from './tables/approval-request.js';
/** A task's requests waiting for values, oldest first. */
export { requestsAwaitingValues } from './tables/approval-request.js';
/** A task's open (pending or awaiting values) requests, oldest first. */
export { openApprovalRequests } from './tables/approval-request.js';
/** The requests of one plan version of a task with their step keys. */
export { approvalRequestsOfPlanVersion } from './tables/approval-request.js';
/** The distinct approver groups of a task's requests. */
export { approverGroupsOfTask } from './tables/approval-request.js';
/** Inserts approval requests (one statement). */
export { insertApprovalRequests } from './tables/approval-request.js';
/** Marks the open requests of replaced plans superseded; returns them. */
export { supersedeApprovalRequests } from './tables/approval-request.js';
/** Cancels one request if still in a given state. */
export { cancelApprovalRequest } from './tables/approval-request.js';
/** Turns a changed step's request into a new pending one for a human. */
export { reRequestApproval } from './tables/approval-request.js';
/** Records a human decision on a pending request. */
export { decideApprovalRequest } from './tables/approval-request.js';
/** Records the judgement of a request that waited for values. */
export { judgeApprovalWithValues } from './tables/approval-request.js';
/** Claims pending requests past their deadline (FOR UPDATE SKIP LOCKED). */
export { claimDueApprovalRequests } from './tables/approval-request.js';
/** Claims pending requests due for a reminder (FOR UPDATE SKIP LOCKED). */
export { claimApprovalRequestsToRemind } from './tables/approval-request.js';
/** Records that a reminder was queued. */
export { markApprovalReminded } from './tables/approval-request.js';
/** Escalates a pending request to a group with a new deadline. */
export { escalateApprovalRequest } from './tables/approval-request.js';
/** Expires a pending request. */
export { expireApprovalRequest } from './tables/approval-request.js';
/** Marks a request's step reverted, once. */
export { revertApprovalRequest } from './tables/approval-request.js';
/** An audit row to append, and what it can be about. */
export type { AuditSubjectType, NewAuditEntry } from './tables/audit-log.js';
/** Appends audit rows (one statement). */
export { insertAuditEntries } from './tables/audit-log.js';
/** Creates an agent's row unless it exists. */
export { ensureAgent } from './tables/agent.js';
/** Whether an agent has a row. */
export { agentExists } from './tables/agent.js';
/** Stored trust states. */
export type { StoredAgentTrust, StoredTrust } from './tables/agent-trust.js';
/** An agent's trust in some action classes. */
export { agentTrustIn } from './tables/agent-trust.js';
/** Every class row of an agent's trust. */
export { agentTrustRows } from './tables/agent-trust.js';
/** The most recently changed trust rows of every agent. */
export { recentAgentTrust } from './tables/agent-trust.js';
/** An agent's trust in one class, created when new and locked FOR UPDATE. */
export { lockAgentTrust } from './tables/agent-trust.js';
/** Stores a class row's new trust state. */
export { updateAgentTrust } from './tables/agent-trust.js';
/** A trust event and its kind. */
export type { NewTrustEvent, TrustEventKind } from './tables/trust-event.js';
/** Records a trust event once per source, agent and class. */
export { insertTrustEvent } from './tables/trust-event.js';
/** An agent's latest trust events. */
export { trustHistory } from './tables/trust-event.js';
/** Types of webhook delivery rows. */
export type {
  ClaimedWebhookDelivery,
  NewWebhookDeliveryRow,
  WebhookDeliveryEvent,
  WebhookDeliveryStatus,
} from './tables/webhook-delivery.js';
/** Queues webhook deliveries (a conflict on webhookId and url skips). */
export { insertWebhookDeliveries } from './tables/webhook-delivery.js';
/** Claims due webhook deliveries under a lease (FOR UPDATE SKIP LOCKED). */
export { claimDueWebhookDeliveries } from './tables/webhook-delivery.js';
/** Records one attempt of a claimed delivery, if nobody did first. */
export { recordWebhookAttempt } from './tables/webhook-delivery.js';
/** Records a received webhook id; false for a replay. */
export { claimWebhookId } from './tables/received-webhook.js';
/** Deletes received webhook ids older than a time. */
export { pruneReceivedWebhooks } from './tables/received-webhook.js';
/** Types of ApiToken rows. */
export type { ApiTokenRole, NewApiToken, StoredApiToken } from './tables/api-token.js';
/** Stores an API token (its hash). */
export { insertApiToken } from './tables/api-token.js';
/** An API token by id, or null. */
export { findApiToken } from './tables/api-token.js';
/** An API token by hash, revoked or not, or null. */
export { findApiTokenByHash } from './tables/api-token.js';
/** A non-revoked API token by hash, or null. */
export { findActiveApiTokenByHash } from './tables/api-token.js';
/** Every API token, newest first. */
export { listApiTokens } from './tables/api-token.js';
/** How many non-revoked admin tokens exist. */
export { countActiveAdminTokens } from './tables/api-token.js';
/** Revokes an API token if not revoked yet. */
export { revokeApiToken } from './tables/api-token.js';
/** Revokes the non-revoked tokens of one name and creator. */
export { revokeApiTokensNamed } from './tables/api-token.js';
// --- end tables: approval ---
// --- tables: planner and learning (Task, Plan, PlanStep, PlanMetrics, Feedback, LearningPattern, PromptVariant) ---
/** What a planner or learning read runs on: a connected Db or a transaction. */
export type { Reader } from './tables/planner-common.js';
/** A task's planning state: accepted | planning | planned | failed | cancelled. */
export type { TaskStatus } from './tables/task.js';
/** A task to store on acceptance. */
export type { NewTask } from './tables/task.js';
/** A stored task as planning reads it, JSON columns parsed. */
export type { PlanningTask } from './tables/task.js';
/** Inserts an accepted task unless its idempotency key is taken (true when inserted). */
export { insertTask } from './tables/task.js';
/** The id and request fingerprint of the task stored under an idempotency key. */
export { findTaskByKey } from './tables/task.js';
/** Moves a task from one of some states to another (conditional; true when it moved). */
export { moveTask } from './tables/task.js';
/** Renews a task's planning lease (its updatedAt) while it is being planned. */
export { renewPlanningLease } from './tables/task.js';
/** Claims tasks whose planning lease ran out (FOR UPDATE SKIP LOCKED), renewing their lease. */
export { claimStalePlanning } from './tables/task.js';
/** A task's planning state, or null. */
export { taskStatus } from './tables/task.js';
/** Reads the task fields planning needs (and, optionally, whether a message was already handled). */
export { loadPlanningTask } from './tables/task.js';
/** A plan version's state: active | superseded. */
export type { PlanStatus } from './tables/plan.js';
/** A plan version to store. */
export type { NewPlan } from './tables/plan.js';
/** Inserts a plan version as the active one. */
export { insertPlan } from './tables/plan.js';
/** Marks a plan version superseded if it is still active. */
export { supersedePlan } from './tables/plan.js';
/** A plan version's state and number. */
export { planState } from './tables/plan.js';
/** The task's newest active plan, its row locked FOR UPDATE (the edit lock the executor shares). */
export { lockActivePlan } from './tables/plan.js';
/** A step of a plan version to store. */
export type { NewPlanStep } from './tables/plan-step.js';
/** Inserts the steps of a plan version. */
export { insertPlanSteps } from './tables/plan-step.js';
/** How a task ended, beside its plan's figures: completed | failed | cancelled. */
export type { PlanOutcome } from './tables/plan-metrics.js';
/** The figures of a plan version to store. */
export type { NewPlanMetrics } from './tables/plan-metrics.js';
/** Inserts the figures of a plan version. */
export { insertPlanMetrics } from './tables/plan-metrics.js';
/** Stores a task's outcome beside the figures of the plan version that ran, once. */
export { recordPlanOutcome } from './tables/plan-metrics.js';
/** A human verdict to keep as feedback. */
export type { NewVerdictFeedback } from './tables/feedback.js';
/** Inserts a verdict feedback row unless its event has one (true when inserted). */
export { insertVerdictFeedback } from './tables/feedback.js';
/** A learned pattern's status and source. */
export type { PatternSource, PatternStatus } from './tables/learning-pattern.js';
/** A learned pattern's identity (type, scope, signature). */
export type { PatternKey } from './tables/learning-pattern.js';
/** A learned pattern as locked for an update. */
export type { LockedPattern } from './tables/learning-pattern.js';
/** An active pattern as answered to planners. */
export type { ActivePattern } from './tables/learning-pattern.js';
/** Inserts a candidate pattern unless its key exists. */
export { ensurePattern } from './tables/learning-pattern.js';
/** Reads and locks a pattern (FOR UPDATE), its provenance parsed with the caller's schema. */
export { lockPattern } from './tables/learning-pattern.js';
/** Stores a pattern's new counts, confidence, provenance, text and status. */
export { updatePattern } from './tables/learning-pattern.js';
/** The active patterns of a scope, most confident first. */
export { activePatterns } from './tables/learning-pattern.js';
/** Whether an unexpired early cancel (the executor's) names the task. */
export { cancelledBeforeArrival } from './reads/planner.js';
/** A task's state and its run's. */
export { taskAndRunStatus } from './reads/planner.js';
/** A task run's state (the executor's), or null. */
export { taskRunStatus } from './reads/planner.js';
/** The first step of a plan whose run started, or null. */
export { firstStartedStep } from './reads/planner.js';
/** A task with its run, newest plan and steps, as GET /v1/tasks/:id reads it. */
export { readStoredTaskView } from './reads/planner.js';
/** The stored task view and its steps. */
export type { StoredStepView, StoredTaskView } from './reads/planner.js';
// --- end tables: planner and learning ---
// --- tables: shared and sandbox (Outbox, ProcessedMessage, DeadLetter, ModelCall, SandboxRun, SandboxRunFile) ---
// --- end tables: shared and sandbox ---
