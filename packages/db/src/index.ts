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

/** Text and JSON text Postgres can store: NUL and lone surrogates replaced by U+FFFD. */
export { toJsonText, toText } from './text.js';
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
export { modelUseOfTask } from './tables/model-call.js';
/** Types of model use. */
export type { TaskModelUse } from './tables/model-call.js';
/** Parses a stored value with its schema; DB.ROW_INVALID when it does not match. */
export { parseStored } from './rows.js';
/** The schema shape parseStored accepts (a zod schema fits). */
export type { RowSchema } from './rows.js';

// One query module per table under src/tables/ (the only place its table is written). Each block below
// is owned by the service that writes those tables.
// --- tables: executor (TaskRun, StepRun, StepAttempt, WorkspaceFile, EarlyCancel, DeadLetterOutcome) ---
/** Types of the executor's reads: a run's state, a task's outcome identity, stored decisions, sandbox files. */
export type {
  RunStateRow,
  RunStepRow,
  SandboxFileChange,
  StepRunStatus,
  StoredApprovalDecision,
  StoredPolicyDecision,
  TaskOutcomeRef,
  TaskRunStatus,
  UnrunTask,
} from './reads/executor.js';
/** Loads a task's run, the task and every step of the plan version it runs, in one statement. */
export { loadRunState } from './reads/executor.js';
/** A task's kind, agent, submitter's request and deadline (for its outcome event); null when not stored. */
export { taskOutcomeRef } from './reads/executor.js';
/** The stored task a cancel request names (by task id, or by the submitter's request), or null. */
export { cancelTargetOf } from './reads/executor.js';
/** A task's submitted input (unparsed). */
export { taskInput } from './reads/executor.js';
/** A plan's version and the tools of its steps in plan order. */
export { planSummary } from './reads/executor.js';
/** A planned step's key and tool. */
export { planStepOf } from './reads/executor.js';
/** The approval request row an `approval.decided` event names. */
export { approvalDecisionOf } from './reads/executor.js';
/** The stored policy decisions of a plan's named steps. */
export { policyDecisionsOf } from './reads/executor.js';
/** A stored sandbox run's value (read only). */
export { sandboxRunValue } from './reads/executor.js';
/** The files a sandbox run wrote or deleted. */
export { sandboxRunFiles } from './reads/executor.js';
/** Tasks past their deadline that have not ended. */
export { tasksPastDeadline } from './reads/executor.js';
/** Running tasks quiet for a while with nothing out and nothing in an outbox (the stuck sweep). */
export { quietRunningTasks } from './reads/executor.js';
/** Planned, failed or cancelled tasks with no run, quiet for a while (the stuck sweep). */
export { quietUnrunTasks } from './reads/executor.js';
/** Re-planning runs whose planning lease ran out. */
export { staleReplanningTasks } from './reads/executor.js';
/** The plan row lock: FOR UPDATE for an edit (planner), FOR SHARE for a step start (executor). */
export { lockActivePlanForEdit, lockPlanForStepStart } from './locks.js';
/** TaskRun (writer: executor): run states, the plan a run runs, outcomes, re-plans. */
export {
  UNFINISHED_RUN_STATUSES,
  taskRunStatus,
  claimStaleReplanning,
  completeRun,
  endRun,
  insertEndedRun,
  insertRunningRun,
  lockTaskRun,
  startReplanning,
  switchRunPlan,
  taskRunOf,
  touchRunningRun,
} from './tables/task-run.js';
/** Types of TaskRun's module. */
export type { RunEnd, TaskRunHead } from './tables/task-run.js';
/** StepRun (writer: executor): decisions, claims, step ends, sandbox results, the stale-step read. */
export {
  UNFINISHED_STEP_STATUSES,
  applyHumanDecision,
  applyPolicyDecisions,
  cancelUnfinishedSteps,
  claimStep,
  codeStepOf,
  completeCodeStep,
  createWaitingSteps,
  failStoredStep,
  finishApprovedSteps,
  finishStep,
  handBackStep,
  renewStepClaim,
  settleFailedCodeStep,
  staleSteps,
  startCodeRun,
  supersedeSteps,
  touchRunningCodeStep,
} from './tables/step-run.js';
/** Types of StepRun's module. */
export type {
  ApprovedStepEnd,
  CodeStepRow,
  RunningAttempt,
  StaleStepRow,
  StepDecision,
  StepEnd,
} from './tables/step-run.js';
/** StepAttempt (writer: executor): attempts of `run_code` steps, their jobs and outcomes. */
export {
  attemptJobOf,
  countSandboxRequest,
  expireAttempt,
  finishAttempt,
  newestSandboxResultAt,
  recordAttempt,
} from './tables/step-attempt.js';
/** Types of StepAttempt's module. */
export type {
  AttemptJob,
  NewStepAttempt,
  StepAttemptOrigin,
  StepAttemptOutcome,
} from './tables/step-attempt.js';
/** WorkspaceFile (writer: executor): a task's files. */
export {
  deleteWorkspaceFiles,
  listWorkspaceFiles,
  putWorkspaceFiles,
  readWorkspaceFile,
  workspaceEntries,
  workspaceSizes,
  workspaceUsage,
} from './tables/workspace-file.js';
/** Types of WorkspaceFile's module. */
export type { WorkspaceFileEntry, WorkspaceFileWrite } from './tables/workspace-file.js';
/** EarlyCancel (writer: executor): cancel requests kept for tasks not stored yet. */
export {
  keepEarlyCancel,
  matchingEarlyCancels,
  pruneEarlyCancels,
  takeEarlyCancel,
} from './tables/early-cancel.js';
/** Types of EarlyCancel's module. */
export type { NewEarlyCancel } from './tables/early-cancel.js';
/** DeadLetterOutcome (writer: executor): what became of a task's dead letter; the dead letters still to deal with. */
export { pendingTaskDeadLetters, recordDeadLetterOutcome } from './tables/dead-letter-outcome.js';
/** Types of DeadLetterOutcome's module. */
export type { DeadLetterOutcomeKind, TaskDeadLetter } from './tables/dead-letter-outcome.js';
// --- end tables: executor ---
// --- tables: approval (ApprovalRequest, Agent, AgentTrust, TrustEvent, WebhookDelivery, ReceivedWebhook, ApiToken, AuditLog) ---
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
/** The first step of a plan whose run started, or null. */
export { firstStartedStep } from './reads/planner.js';
/** A task with its run, newest plan and steps, as GET /v1/tasks/:id reads it. */
export { readStoredTaskView } from './reads/planner.js';
/** The stored task view and its steps. */
export type { StoredStepView, StoredTaskView } from './reads/planner.js';
// --- end tables: planner and learning ---
// --- tables: shared and sandbox (Outbox, ProcessedMessage, DeadLetter, ModelCall, SandboxRun, SandboxRunFile) ---
/** What a query function that may run inside or outside a transaction takes: a Db or a Tx. */
export type { DbOrTx } from './queryable.js';
/** Writes outbox rows in the caller's transaction (the typed one on Tx; the Prisma and plain-SQL paths until they go). */
export { enqueueOutbox, enqueueOutboxPrisma, enqueueOutboxSql } from './tables/outbox.js';
/** Makes a relay the hand-over of a pool's committed rows; how many outbox writes went through Prisma. */
export { onOutboxCommitted, prismaOutboxWrites } from './tables/outbox.js';
/** A message to enqueue: id, publisher, subject, payload, headers. */
export type { OutboxMessage } from './tables/outbox.js';
/** A relay's claim on outbox rows (holder, lease), and the hand-over of a pool's committed rows. */
export type { OutboxClaim, OutboxHandOver } from './tables/outbox.js';
/** An unpublished outbox row as the relay reads it. */
export type { PendingOutboxMessage } from './tables/outbox.js';
/** Reads a publisher's unpublished rows in seq order without claiming them (tests, inspection). */
export { fetchUnpublished } from './tables/outbox.js';
/** Claims a publisher's oldest unclaimed unpublished rows for a lease (FOR UPDATE SKIP LOCKED). */
export { claimUnpublished } from './tables/outbox.js';
/** Releases a relay's claims on rows it did not publish. */
export { releaseClaims } from './tables/outbox.js';
/** Marks outbox rows as published (a durable commit). */
export { markPublished } from './tables/outbox.js';
/** Counts a failed publish and keeps its error message. */
export { recordPublishFailure } from './tables/outbox.js';
/** Dead-letters an unpublishable outbox row (DeadLetter row, deadLetteredAt, replacements) in one transaction. */
export { deadLetterOutboxRow } from './tables/outbox.js';
/** An outbox row to dead-letter: id, consumer, code, reason. */
export type { OutboxDeadLetter } from './tables/outbox.js';
/** Reads one outbox row's subject and payload text (a claim check's reference). */
export { readOutboxPayload } from './tables/outbox.js';
/** A stored outbox payload: subject and JSON text. */
export type { StoredOutboxPayload } from './tables/outbox.js';
/** Age in ms of a publisher's oldest row not yet published nor dead-lettered (null: none). */
export { oldestUnpublishedAgeMs } from './tables/outbox.js';
/** Records a handled message in the handler's transaction; false if it was already handled. */
export { markProcessed, markProcessedPrisma, markProcessedSql } from './tables/processed-message.js';
/** Whether a consumer already recorded a message (a read outside the handler's transaction). */
export { isProcessed } from './tables/processed-message.js';
/** Records a dead letter, idempotent on (consumer, streamSeq) and on id. */
export { recordDeadLetter } from './tables/dead-letter.js';
/** A dead letter to record. */
export type { DeadLetterInput } from './tables/dead-letter.js';
/** The task a message payload names (data.taskId, CloudEvent subject, correlationId), unverified. */
export { taskIdOfPayload } from './tables/dead-letter.js';
/** Records that a sandbox job starts (once per key, attempts counted), or finds its stored result. */
export { startSandboxRun } from './tables/sandbox-run.js';
/** Stores a run's result once on its row, for the attempt that holds it; its text made safe. */
export { finishSandboxRun } from './tables/sandbox-run.js';
/** Types of the sandbox-run store. */
export type {
  SandboxRunLanguage,
  SandboxRunOutcome,
  SandboxRunResult,
  SandboxRunStart,
  SandboxRunStarted,
  StoredSandboxRun,
} from './tables/sandbox-run.js';
/** A file of a sandbox run: written (with content) or deleted. */
export type { SandboxRunFileInput } from './tables/sandbox-run-file.js';
/** Stores one completed model call. */
export { recordModelCall } from './tables/model-call.js';
/** Counts of recent model calls by role, candidate and outcome (learned success). */
export { modelCallOutcomesSince } from './tables/model-call.js';
/** Types of the model-call store. */
export type {
  ModelCallInput,
  ModelCallOutcome,
  ModelCallOutcomeCount,
  ModelCallRole,
} from './tables/model-call.js';
/** Reads for service-kit: the database answers (readiness), a task by id or by its request. */
export { pingDatabase, taskIdById, taskIdByRequest } from './reads/service-kit.js';
/** Reads for the sandbox-runner: workspace files by path. */
export { workspaceFilesAt } from './reads/sandbox-runner.js';
/** A workspace file with its content, as the sandbox-runner reads it. */
export type { WorkspaceFileContent } from './reads/sandbox-runner.js';
// --- end tables: shared and sandbox ---
