/** @tandem/contracts: the single source of truth for everything that crosses a wire. */
export { ErrorCodes, ErrorShape, TandemError, toErrorShape } from './errors.js';
export type { ErrorCode } from './errors.js';
export { JsonValue, jsonDepth } from './json.js';
export { Entities, defineEvent, createEnvelope } from './envelope.js';
export type { Entity, Envelope, EventDefinition, EventData } from './envelope.js';
export {
  DEFAULT_SUBJECT_PREFIX,
  assertSubjectPrefix,
  subjectFor,
  prefixToken,
  streamNameFor,
  consumerNameFor,
  querySubjectFor,
} from './subjects.js';
export {
  CloudEventTypes,
  HTTP_TASK_SOURCE,
  PublicSubjects,
  TaskRequestedData,
  TaskRequestedCloudEvent,
  TaskRequestRef,
  TaskCompletedData,
  TaskFailedData,
  TaskCompletedCloudEvent,
  TaskFailedCloudEvent,
  TaskOutcomeCloudEvent,
} from './cloud-events.js';
export {
  TaskAccepted,
  PlannedStep,
  PlanProposed,
  PlanFailed,
  ApprovalRequested,
  ApprovalDecided,
  SandboxLimits,
  SandboxLanguage,
  SandboxRunRequested,
  SandboxOutcome,
  SandboxRunCompleted,
  StepFinished,
} from './events.js';
export {
  RiskClass,
  defineTool,
  runCode,
  respond,
  toolRegistry,
  toStrictJsonSchema,
  toModelTools,
  RUN_CODE_MAX_CODE_CHARS,
} from './tools.js';
export type { ToolDefinition, ModelToolSchema, SemanticIssue } from './tools.js';
export {
  DEFAULT_TOOL_CALL_LIMITS,
  validateToolCall,
  validatePlan,
  dropNullProperties,
  referencedStepKeys,
  resolveStepReferences,
} from './validation.js';
export type {
  ToolCallLimits,
  RawToolCall,
  ValidToolCall,
  ToolCallValidation,
  PlanStepDraft,
  PlanLimits,
} from './validation.js';
export {
  CreateTaskBody,
  CreateTaskResponse,
  TaskStepView,
  TaskView,
  ListApprovalsQuery,
  ApprovalView,
  ApprovalDecisionBody,
  HttpErrorBody,
} from './http.js';
export { LearningPatternsQuery, LearningPatternsReply } from './queries.js';
