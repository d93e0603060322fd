/** @tandem/contracts: the single source of truth for everything that crosses a wire. */
export { ErrorCodes, ErrorShape, TandemError, isErrorCode, toErrorShape } from './errors.js';
export type { ErrorCode, TandemErrorOptions } from './errors.js';
export {
  JsonValue,
  jsonDepth,
  rawJsonDepth,
  scanJsonText,
  DEFAULT_HTTP_BODY_LIMITS,
  DEFAULT_BUS_PAYLOAD_LIMITS,
  TOOL_RESULT_MAX_DEPTH,
  utf8ByteLength,
  isWellFormedText,
} from './json.js';
export type { JsonTextLimits, JsonTextScan } from './json.js';
export {
  SANDBOX_EVENT_MAX_BYTES,
  SANDBOX_EVENT_PART_BYTES,
  STEP_VALUE_EVENT_MAX_BYTES,
  TASK_OUTCOME_EVENT_MAX_BYTES,
  TruncatedValue,
  boundOutcomeError,
  boundSandboxEventParts,
  boundStepValue,
  boundTaskResult,
  jsonByteLength,
  taskHref,
  truncateJsonString,
  truncateJsonStringTail,
} from './bounds.js';
export type {
  BoundedSandboxEventParts,
  BoundedTaskResult,
  SandboxEventParts,
  TaskResultParts,
} from './bounds.js';
export { hasUnsafeText, toSafeJson, toSafeJsonText, toSafeText } from './safe-text.js';
export { argumentsHash, canonicalJson, needsResolvedApproval } from './decision-binding.js';
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
  ApprovalsDecided,
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
  readFile,
  writeFile,
  deleteFile,
  listFiles,
  httpRequest,
  askHuman,
  toolRegistry,
  toStrictJsonSchema,
  toModelTools,
  DEFAULT_TOOL_CHECK_CONTEXT,
  RUN_CODE_MAX_CODE_CHARS,
  WRITE_FILE_MAX_BYTES,
  HTTP_REQUEST_MAX_BODY_CHARS,
  HTTP_REQUEST_MAX_HEADERS,
} from './tools.js';
export type { ToolDefinition, ToolCheckContext, ModelToolSchema, SemanticIssue } from './tools.js';
export {
  DEFAULT_TOOL_CALL_LIMITS,
  FORBIDDEN_ARGUMENT_KEYS,
  STEP_KEY,
  validateToolCall,
  validateToolArguments,
  suggestToolName,
  findForbiddenKey,
  checkPlanSize,
  validatePlan,
  dropNullProperties,
  referencedStepKeys,
  referencedStepKeysDeep,
  resolveStepReferences,
  resolveStepReferencesDeep,
} from './validation.js';
export type {
  ToolCallLimits,
  RawToolCall,
  ValidToolCall,
  ToolCallValidation,
  PlanStepDraft,
  PlanStepInput,
  PlanLimits,
  PlanError,
  PlanValidation,
} from './validation.js';
export {
  WORKSPACE_PATH_MAX_CHARS,
  WORKSPACE_PATH_MAX_SEGMENTS,
  normalizeWorkspacePath,
  normalizeWorkspaceDirectory,
  isInWorkspaceDirectory,
} from './workspace-paths.js';
export type { WorkspacePathResult } from './workspace-paths.js';
export {
  URL_MAX_CHARS,
  checkUrl,
  classifyAddress,
  isForbiddenAddress,
  isAddressAllowed,
  isAddressInCidrs,
  isHostAllowed,
  normalizeAllowHost,
  parseAllowHosts,
  parseCidr,
  parseIp,
} from './url-policy.js';
export type { AddressClass, Cidr, ParsedIp, UrlCheck, UrlPolicy, UrlRejectionCode } from './url-policy.js';
export {
  HTTP_HEADER_NAME,
  HTTP_HEADER_VALUE_MAX_CHARS,
  SECRET_NAME,
  FORBIDDEN_REQUEST_HEADERS,
  CREDENTIAL_HEADERS,
  headerNameProblem,
  headerValueProblem,
} from './http-headers.js';
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
export { LearningPatternsQuery, LearningPatternsReply, PatternType } from './queries.js';
export {
  TaskBudget,
  TaskModelPreference,
  TaskCancelledData,
  TaskCancelledCloudEvent,
  TaskCancelRequestedData,
  TaskCancelRequestedCloudEvent,
  taskRequestRef,
  httpTaskExternalId,
  httpTaskKey,
  modelPreferenceFor,
} from './cloud-events.js';
export { PlanOrigin, TaskReplanRequested } from './events.js';
export { EditPlanStep, EditPlanBody, CancelTaskBody, CancelTaskResponse } from './http.js';
export {
  RiskLevel,
  RISK_LEVELS,
  RiskReason,
  TokenRole,
  CreateTokenBody,
  TokenView,
  CreatedToken,
  TrustView,
  ResetTrustBody,
  CapTrustBody,
  RevertStepBody,
  WebhookDecisionBody,
  ApproverWebhookType,
  ApproverWebhookPayload,
  Verdict,
  ApprovalVerdictRecorded,
} from './approval.js';
