import type { Selectable } from 'kysely';
import type { DB } from './generated/kysely.js';

// A stored row of each table as the typed builder reads it (what `selectAll()` returns).
export type Task = Selectable<DB['Task']>;
export type Plan = Selectable<DB['Plan']>;
export type PlanStep = Selectable<DB['PlanStep']>;
export type TaskRun = Selectable<DB['TaskRun']>;
export type StepRun = Selectable<DB['StepRun']>;
export type ApprovalRequest = Selectable<DB['ApprovalRequest']>;
export type Feedback = Selectable<DB['Feedback']>;
export type Agent = Selectable<DB['Agent']>;
export type AgentTrust = Selectable<DB['AgentTrust']>;
export type ModelCall = Selectable<DB['ModelCall']>;
export type SandboxRun = Selectable<DB['SandboxRun']>;
export type LearningPattern = Selectable<DB['LearningPattern']>;
export type PromptVariant = Selectable<DB['PromptVariant']>;
export type PlanMetrics = Selectable<DB['PlanMetrics']>;
export type Outbox = Selectable<DB['Outbox']>;
export type ProcessedMessage = Selectable<DB['ProcessedMessage']>;
export type DeadLetter = Selectable<DB['DeadLetter']>;
export type WebhookDelivery = Selectable<DB['WebhookDelivery']>;
export type ReceivedWebhook = Selectable<DB['ReceivedWebhook']>;
export type ApiToken = Selectable<DB['ApiToken']>;
export type AuditLog = Selectable<DB['AuditLog']>;
export type EarlyCancel = Selectable<DB['EarlyCancel']>;
export type DeadLetterOutcome = Selectable<DB['DeadLetterOutcome']>;
