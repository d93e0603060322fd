import { z } from 'zod';
import { defineEvent } from './envelope.js';
import { ErrorShape } from './errors.js';
import { JsonValue } from './json.js';
import { TaskRequestRef } from './cloud-events.js';
import { RiskClass } from './tools.js';
import { RiskLevel, RiskReason } from './approval.js';

/*
 * Internal events. Each subject is `<prefix>.<type>.v<version>`.
 * Wire names: renaming a type or bumping a version breaks messages in flight. A breaking change adds
 * v2 beside v1 and publishes both during the switch; an added optional field keeps the version.
 */

/** The planner accepted a task and will plan it (planner -> planner's planning consumer). */
export const TaskAccepted = defineEvent({
  type: 'task.accepted',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    request: TaskRequestRef,
    goal: z.string(),
    input: JsonValue.optional(),
    kind: z.string(),
    agentId: z.string().nullable(),
  }),
});

/** One validated step of a plan as published. */
export const PlannedStep = z.object({
  stepId: z.uuid(),
  key: z.string(),
  index: z.number().int().nonnegative(),
  tool: z.string(),
  arguments: z.record(z.string(), JsonValue),
  riskClass: RiskClass,
  sideEffects: z.boolean(),
  dependsOn: z.array(z.string()),
  rationale: z.string().nullable().optional(),
});
/** One validated step of a plan as published. */
export type PlannedStep = z.infer<typeof PlannedStep>;

/** Where a plan version came from. */
export const PlanOrigin = z.enum(['model', 'human', 'replan']);
/** Where a plan version came from. */
export type PlanOrigin = z.infer<typeof PlanOrigin>;

/**
 * A validated plan ready for approval and execution (planner -> approval, executor). A version above 1
 * names the plan it `supersedes`: a human edit (before any step started) or a re-plan after a failure.
 */
export const PlanProposed = defineEvent({
  type: 'plan.proposed',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    planId: z.uuid(),
    version: z.number().int().positive(),
    request: TaskRequestRef,
    kind: z.string(),
    agentId: z.string().nullable(),
    steps: z.array(PlannedStep).min(1),
    origin: PlanOrigin.optional(),
    supersedes: z.uuid().nullable().optional(),
    /** Who made a human edit: the authenticated token (`token:<ApiToken.id>`), never a client's claim. */
    editedBy: z.string().nullable().optional(),
    /** The name the editor's client gave (`editedBy` of the edit's body): a label beside `editedBy`. */
    editedByLabel: z.string().nullable().optional(),
  }),
});

/** A step failed for good; the planner makes one new plan with the failure as context (executor -> planner). */
export const TaskReplanRequested = defineEvent({
  type: 'task.replan-requested',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    planId: z.uuid(),
    version: z.number().int().positive(),
    failedStep: z.object({ key: z.string(), tool: z.string(), error: ErrorShape }),
    completedSteps: z.array(z.object({ key: z.string(), tool: z.string(), value: JsonValue.nullable() })),
  }),
});

/** Planning failed for good; the executor turns it into `task.failed` (planner -> executor). */
export const PlanFailed = defineEvent({
  type: 'plan.failed',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    request: TaskRequestRef,
    kind: z.string(),
    agentId: z.string().nullable(),
    error: ErrorShape,
  }),
});

/** A step waits for a human decision (approval -> notifications, dashboards). */
export const ApprovalRequested = defineEvent({
  type: 'approval.requested',
  version: 1,
  data: z.object({
    approvalId: z.uuid(),
    taskId: z.uuid(),
    planId: z.uuid(),
    stepId: z.uuid(),
    tool: z.string(),
    riskClass: RiskClass,
    /** `question`: an `ask_human` step waiting for an answer rather than a yes/no. */
    kind: z.enum(['approval', 'question']).optional(),
    question: z.string().nullable().optional(),
    riskLevel: RiskLevel.optional(),
    riskReasons: z.array(RiskReason).optional(),
    /** When the request expires (ISO 8601). */
    deadline: z.string().nullable().optional(),
    /** The approver group asked; after an escalation the second group. */
    group: z.string().nullable().optional(),
    escalationLevel: z.number().int().nonnegative().optional(),
  }),
});

/**
 * A human approved, rejected or answered a step (approval -> executor, learning). Decisions made by policy
 * when a plan arrives go out once per plan as `approval.batch-decided`; `mode: 'auto'` is kept for
 * messages written before that change.
 */
export const ApprovalDecided = defineEvent({
  type: 'approval.decided',
  version: 1,
  data: z.object({
    approvalId: z.uuid(),
    taskId: z.uuid(),
    planId: z.uuid(),
    stepId: z.uuid(),
    /** `answered`: an `ask_human` step got its answer (in `answer`). */
    decision: z.enum(['approved', 'rejected', 'answered']),
    mode: z.enum(['auto', 'human']),
    decidedBy: z.string().nullable(),
    reason: z.string().nullable(),
    answer: z.string().nullable().optional(),
    /**
     * The error code a rejection fails the step with: `APPROVAL.REJECTED` when absent, `APPROVAL.EXPIRED`
     * when the request's deadline passed.
     */
    code: z.string().optional(),
    /** An approver's edited arguments (validated like a model's): the step runs with these. */
    arguments: z.record(z.string(), JsonValue).optional(),
  }),
});

/**
 * The steps of a plan decided by policy when the plan arrived, in one event (approval -> executor): one
 * message per plan instead of one per step, so the executor can run every approved step in one pass.
 * Human decisions (and answers) come one by one as `approval.decided`.
 */
export const ApprovalsDecided = defineEvent({
  type: 'approval.batch-decided',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    planId: z.uuid(),
    decisions: z
      .array(
        z.object({
          approvalId: z.uuid(),
          stepId: z.uuid(),
          decision: z.enum(['approved', 'rejected']),
          decidedBy: z.string().nullable(),
          reason: z.string().nullable(),
        }),
      )
      .min(1),
  }),
});

/** Limits of one sandbox job. */
export const SandboxLimits = z.object({
  timeoutMs: z.number().int().positive().max(600_000),
  maxOutputBytes: z
    .number()
    .int()
    .positive()
    .max(16 * 1024 * 1024),
  memoryMb: z.number().int().positive().max(16_384).optional(),
});
/** Limits of one sandbox job. */
export type SandboxLimits = z.infer<typeof SandboxLimits>;

/** Languages the sandbox runs. */
export const SandboxLanguage = z.enum(['javascript', 'python']);
/** Languages the sandbox runs. */
export type SandboxLanguage = z.infer<typeof SandboxLanguage>;

/** Run this code in the sandbox (executor -> sandbox-runner). `idempotencyKey` runs it at most once. */
export const SandboxRunRequested = defineEvent({
  type: 'sandbox.run-requested',
  version: 1,
  data: z.object({
    idempotencyKey: z.string().min(1).max(300),
    taskId: z.uuid(),
    stepId: z.uuid(),
    language: SandboxLanguage,
    code: z.string().max(200_000),
    input: JsonValue.optional(),
    limits: SandboxLimits,
    /**
     * The task workspace at the time of the request; the runner reads the contents from the workspace
     * store by (taskId, path) (a hash that no longer matches is logged), so files never travel on the bus.
     */
    files: z
      .array(
        z.object({
          path: z.string().min(1).max(512),
          sha256: z.string().length(64),
          size: z.number().int().nonnegative(),
        }),
      )
      .max(1000)
      .optional(),
  }),
});

/** Typed outcomes of a sandbox run. */
export const SandboxOutcome = z.enum([
  'ok',
  'error',
  'timeout',
  'memory_limit',
  'output_limit',
  'killed',
  'sandbox_error',
]);
/** Typed outcomes of a sandbox run. */
export type SandboxOutcome = z.infer<typeof SandboxOutcome>;

/**
 * The result of a sandbox run (sandbox-runner -> executor). Built through `boundSandboxEventParts`, so the
 * event stays under `SANDBOX_EVENT_MAX_BYTES` whatever the program printed or returned: stdout and stderr
 * are cut (their `*Truncated` flags set), a large value is left out (`valueTruncated`; the executor reads
 * it from the stored run by `runId`), the files listing is cut (`filesTruncated`). The stored run keeps
 * everything within the runner's own caps.
 */
export const SandboxRunCompleted = defineEvent({
  type: 'sandbox.run-completed',
  version: 1,
  data: z.object({
    idempotencyKey: z.string(),
    runId: z.uuid(),
    taskId: z.uuid(),
    stepId: z.uuid(),
    outcome: SandboxOutcome,
    stdout: z.string(),
    stderr: z.string(),
    stdoutTruncated: z.boolean(),
    stderrTruncated: z.boolean(),
    value: JsonValue.nullable(),
    exitCode: z.number().int().nullable(),
    durationMs: z.number().int().nonnegative(),
    errorMessage: z.string().nullable().optional(),
    /** Files the program wrote or deleted; contents are stored with the run (SandboxRunFile). */
    files: z
      .array(z.object({ path: z.string(), size: z.number().int().nonnegative(), deleted: z.boolean() }))
      .optional(),
    filesTruncated: z.boolean().optional(),
    /** The value was too large for the event and is only in the stored run (`SandboxRun.value`). */
    valueTruncated: z.boolean().optional(),
    /** Size of the stored value's JSON when it was left out. */
    valueBytes: z.number().int().nonnegative().optional(),
    /** Lengths of the stored stdout and stderr, when the event carries less. */
    stdoutLength: z.number().int().nonnegative().optional(),
    stderrLength: z.number().int().nonnegative().optional(),
    /** A typed reason beside `outcome` (e.g. `SANDBOX.INTERRUPTED` for a job whose runs kept being cut off). */
    errorCode: z.string().optional(),
    /** Which run of the job this result came from (1 unless a runner died while running it). */
    runAttempt: z.number().int().positive().optional(),
  }),
});

/** A step finished, successfully or not (executor -> learning, dashboards). */
export const StepFinished = defineEvent({
  type: 'step.finished',
  version: 1,
  data: z.object({
    taskId: z.uuid(),
    stepId: z.uuid(),
    key: z.string(),
    tool: z.string(),
    status: z.enum(['completed', 'failed']),
    value: JsonValue.nullable().optional(),
    error: ErrorShape.nullable().optional(),
  }),
});
