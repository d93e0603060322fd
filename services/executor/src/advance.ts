import { randomUUID } from 'node:crypto';
import {
  CloudEventTypes,
  ErrorCodes,
  ErrorShape,
  JsonValue,
  PublicSubjects,
  SandboxRunRequested,
  StepFinished,
  TaskBudget,
  TaskCancelledData,
  TaskCompletedData,
  TaskFailedData,
  TaskModelPreference,
  TaskReplanRequested,
  TandemError,
  boundOutcomeError,
  boundStepValue,
  boundTaskResult,
  modelPreferenceFor,
  normalizeWorkspaceDirectory,
  normalizeWorkspacePath,
  resolveStepReferencesDeep,
  taskRequestRef,
  toErrorShape,
  type SandboxLimits,
  type TaskRequestRef,
} from '@tandem/contracts';
import {
  enqueueOutboxPrisma,
  enqueueOutboxSql,
  modelUseOfTask,
  poolSql,
  sqlTransaction,
  type Db,
  type OutboxMessage,
  type Sql,
  type TaskModelUse,
  type PrismaTx,
} from '@tandem/db';
import { outboxCloudEvent, outboxEvent, toJsonInput, type Log } from '@tandem/service-kit';
import { z } from 'zod';
import {
  codePrompt,
  extractCode,
  fixPrompt,
  heldBehind,
  nextAction,
  overtakable,
  replanCanHelp,
  type CodePattern,
  type CodeRequest,
  type StepState,
} from './domain/progress.js';
import { approvalHolds, unboundApprovedSteps } from './domain/decision.js';
import {
  claimStep,
  completeRun,
  finishApprovedSteps,
  type StepOutcome,
  listWorkspaceFilesSql,
  loadRunState,
  lockActivePlanSql,
  readWorkspaceFileSql,
  writeWorkspaceFileSql,
} from './store.js';
import { deleteWorkspaceFileSql, type WorkspaceLimits } from './workspace.js';

/** What the executor needs of the code model. */
export interface CodeModel {
  complete(request: {
    taskId: string;
    messages: Array<{ role: 'system' | 'user'; content: string }>;
    idempotencyKey: string;
    preference: { tier?: string; model?: string } | undefined;
    budget: TaskBudget | undefined;
    spent: TaskModelUse;
  }): Promise<{ content: string | null }>;
}

/** Runs an `http_request` step's (resolved) arguments; throws TandemError for a refused or failed request. */
export interface HttpRunner {
  run(input: { stepId: string; arguments: Record<string, JsonValue> }): Promise<JsonValue>;
}

/** Dependencies of the executor's progress logic. */
export interface AdvanceDeps {
  db: Db;
  log: Log;
  prefix: string;
  codeModel: CodeModel;
  http: HttpRunner;
  /** Learned code and error-recovery patterns for a language (empty when learning has none or is slow). */
  codePatterns: (language: string) => Promise<CodePattern[]>;
  sandboxLimits: SandboxLimits;
  workspace: WorkspaceLimits;
  /**
   * The step lease: a `generating` claim not renewed for this long (its replica stopped) is taken over;
   * a live replica renews it every third of it.
   */
  claimStaleMs: number;
  /** The consumers' max_deliver: the last delivery fails a step instead of retrying a model call. */
  maxDeliver: number;
  /** Sandbox runs of one `run_code` step: the first plus this many fixes by the code model. */
  maxFixAttempts: number;
  /** New plans the executor may ask for after a step failed for good. */
  maxReplans: number;
  /** Largest program the code model may write (the same cap as `run_code` code in a plan). */
  maxCodeChars: number;
  kick: () => void;
  onTaskFinished?: (status: 'completed' | 'failed' | 'cancelled', kind: string) => void;
}

const StepResult = z.object({
  value: JsonValue.nullable().default(null),
  stdout: z.string().default(''),
  stderr: z.string().default(''),
});
const RunCodeArguments = z.object({
  language: z.enum(['javascript', 'python']),
  code: z.string().optional(),
  spec: z.string().optional(),
});
const RespondArguments = z.object({ answer: z.string() });
const PathArguments = z.object({ path: z.string() });
const WriteArguments = z.object({ path: z.string(), content: z.string() });
const ListArguments = z.object({ prefix: z.string().optional() });
const ArgumentsRecord = z.record(z.string(), JsonValue);

function publisherOptions(deps: Pick<AdvanceDeps, 'prefix'>) {
  return { prefix: deps.prefix, publisher: 'executor' };
}

async function loadState(db: Db, taskId: string) {
  const state = await loadRunState(poolSql(db), taskId);
  if (!state) return null;
  const budget = TaskBudget.safeParse(state.task.budget ?? undefined);
  const preferences = TaskModelPreference.safeParse(state.task.preferences ?? undefined);
  return {
    ...state,
    budget: budget.success ? budget.data : undefined,
    preferences: preferences.success ? preferences.data : undefined,
  };
}

type State = NonNullable<Awaited<ReturnType<typeof loadState>>>;
type TaskRef = { id: string; kind: string; agentId: string | null };
type Outcome =
  | { status: 'completed'; result: TaskCompletedData['result'] }
  | { status: 'failed'; error: TaskFailedData['error'] }
  | { status: 'cancelled'; reason: string | null; requestedBy: string | null };

/** The outcome CloudEvent and its outbox row. */
export function taskOutcomeMessage(
  deps: Pick<AdvanceDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  outcome: Outcome,
  extra: { planVersion?: number; tools?: string[] },
): OutboxMessage {
  const common = {
    specversion: '1.0' as const,
    id: randomUUID(),
    source: '/tandem/executor',
    time: new Date().toISOString(),
    datacontenttype: 'application/json' as const,
    subject: task.id,
    correlationid: task.id,
  };
  const base = { taskId: task.id, request, kind: task.kind, agentId: task.agentId, ...extra };
  const options = publisherOptions(deps);
  if (outcome.status === 'completed') {
    // Bounded: a result too large for the event becomes a typed marker pointing at GET /v1/tasks/:id.
    const data = TaskCompletedData.parse({
      ...base,
      status: 'completed',
      result: boundTaskResult(outcome.result, task.id),
    });
    return outboxCloudEvent(options, PublicSubjects.taskCompleted, {
      ...common,
      type: CloudEventTypes.taskCompleted,
      data,
    });
  }
  if (outcome.status === 'cancelled') {
    const data = TaskCancelledData.parse({
      ...base,
      status: 'cancelled',
      reason: outcome.reason,
      requestedBy: outcome.requestedBy,
    });
    return outboxCloudEvent(options, PublicSubjects.taskCancelled, {
      ...common,
      type: CloudEventTypes.taskCancelled,
      data,
    });
  }
  const data = TaskFailedData.parse({
    ...base,
    status: 'failed',
    error: boundOutcomeError(outcome.error, task.id),
  });
  return outboxCloudEvent(options, PublicSubjects.taskFailed, {
    ...common,
    type: CloudEventTypes.taskFailed,
    data,
  });
}

/** Run states in which a task has not ended. */
export const UNFINISHED_RUN = ['running', 'replanning'];
/** Step states in which a step has not ended. */
const UNFINISHED_STEP = ['waiting', 'approved', 'generating', 'running', 'fixing'];

/**
 * Ends a task once, failed or cancelled (a conditional update guards against a second outcome); its
 * unfinished steps are cancelled. Runs in the caller's transaction.
 */
export async function endTaskInTx(
  tx: PrismaTx,
  deps: Pick<AdvanceDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  outcome: Extract<Outcome, { status: 'failed' | 'cancelled' }>,
  extra: { planId?: string | null; planVersion?: number; tools?: string[] },
): Promise<boolean> {
  const existing = await tx.taskRun.findUnique({ where: { taskId: task.id }, select: { status: true } });
  if (existing && !UNFINISHED_RUN.includes(existing.status)) return false;
  const stored =
    outcome.status === 'failed'
      ? { status: 'failed', error: toJsonInput({ ...outcome.error, retryable: false }) }
      : {
          status: 'cancelled',
          error: toJsonInput({
            code: ErrorCodes.TASK_CANCELLED,
            message: outcome.reason ?? 'cancelled',
            retryable: false,
          }),
        };
  if (existing) {
    const updated = await tx.taskRun.updateMany({
      where: { taskId: task.id, status: { in: UNFINISHED_RUN } },
      data: { ...stored, finishedAt: new Date() },
    });
    if (updated.count === 0) return false;
  } else {
    await tx.taskRun.create({
      data: { taskId: task.id, planId: extra.planId ?? null, ...stored, finishedAt: new Date() },
    });
  }
  await tx.stepRun.updateMany({
    where: { taskId: task.id, status: { in: UNFINISHED_STEP } },
    data: { status: 'cancelled', finishedAt: new Date() },
  });
  const final =
    outcome.status === 'failed' ? { ...outcome, error: { ...outcome.error, retryable: false } } : outcome;
  await enqueueOutboxPrisma(
    tx,
    taskOutcomeMessage(deps, task, request, final, { planVersion: extra.planVersion, tools: extra.tools }),
  );
  return true;
}

/** Fails a task once. Runs in the caller's transaction. */
export function failTaskInTx(
  tx: PrismaTx,
  deps: Pick<AdvanceDeps, 'prefix'>,
  task: TaskRef,
  request: TaskRequestRef,
  error: ErrorShape & { stepId?: string },
  extra: { planId?: string | null; planVersion?: number; tools?: string[] },
): Promise<boolean> {
  return endTaskInTx(tx, deps, task, request, { status: 'failed', error }, extra);
}

function resultsOf(state: State): Map<string, { value: JsonValue; stdout: string }> {
  return new Map(
    state.steps
      .filter((other) => other.status === 'completed' && other.result)
      .map((other) => [
        other.key,
        { value: other.result?.value ?? null, stdout: other.result?.stdout ?? '' },
      ]),
  );
}

function resolvedArguments(state: State, step: StepState): Record<string, JsonValue> {
  const resolved = resolveStepReferencesDeep(step.arguments, resultsOf(state));
  const parsed = ArgumentsRecord.safeParse(resolved);
  return parsed.success ? parsed.data : {};
}

function workspacePath(raw: string, directory = false): string {
  const result = directory ? normalizeWorkspaceDirectory(raw) : normalizeWorkspacePath(raw);
  if (!result.ok)
    throw new TandemError(ErrorCodes.TOOL_PATH_REJECTED, `path ${JSON.stringify(raw)}: ${result.reason}`);
  return result.path;
}

/**
 * Moves a task forward as far as it can go now: runs inline tools (respond, workspace files, answered
 * questions), calls out for `http_request`, sends code to the sandbox, asks for one re-plan after a
 * failure, finishes or fails the task. Every change is a conditional update in a short transaction, so two
 * replicas advancing the same task never do a step twice; model and HTTP calls happen outside transactions.
 */
export async function advanceTask(
  deps: AdvanceDeps,
  taskId: string,
  log: Log,
  delivery: { lastDelivery: boolean } = { lastDelivery: false },
): Promise<void> {
  for (let guard = 0; guard < 1000; guard += 1) {
    const state = await loadState(deps.db, taskId);
    if (!state || state.run.status !== 'running') return;
    const tools = state.steps.map((step) => step.tool);
    const extra = { planId: state.plan.id, planVersion: state.plan.version, tools };
    const task = { id: state.task.id, kind: state.task.kind, agentId: state.task.agentId };
    const request = taskRequestRef(state.task);

    if (state.task.deadline !== null && state.task.deadline.getTime() <= Date.now()) {
      await endTask(deps, task, request, deadlineError(state.task.deadline), extra, log);
      return;
    }
    // A step starts only on a decision stored by the approval service for exactly what would run (inline
    // steps are checked in their pass, where a value may come from an earlier step of the same pass).
    const unbound = unboundApprovedSteps(
      state.steps,
      (step) => resolvedArguments(state, step),
      (step) => INLINE_TOOLS.has(step.tool),
    );
    if (unbound.length > 0) {
      for (const step of unbound) {
        log.warn({ taskId, step: step.key }, 'approved step has no stored decision for what would run');
        await finishStep(deps, step, taskId, ['approved'], {
          status: 'failed',
          error: unverified(step).toShape(),
        });
      }
      deps.kick();
      continue;
    }
    const action = nextAction(state.steps, state.dependsOn);
    if (action.kind === 'wait') {
      log.debug({ taskId, reason: action.reason }, 'task waits');
      return;
    }
    if (action.kind === 'fail') {
      const failed = state.steps.find((step) => step.key === action.error.stepId);
      if (
        failed &&
        failed.status === 'failed' &&
        state.run.replans < deps.maxReplans &&
        replanCanHelp(action.error)
      ) {
        await requestReplan(deps, state, failed, action.error, log);
        return;
      }
      await endTask(deps, task, request, action.error, extra, log);
      return;
    }
    if (action.kind === 'complete') {
      await completeTask(deps, state, task, request, extra, log);
      return;
    }

    const step = action.step;
    if (INLINE_TOOLS.has(step.tool)) {
      const ran = await runInlineSteps(deps, state, task, request, extra);
      if (ran.count === 0) return;
      deps.kick();
      if (ran.completed) {
        deps.onTaskFinished?.('completed', task.kind);
        log.info({ taskId }, 'task completed');
        return;
      }
      continue;
    }
    try {
      const progressed = await startStep(deps, state, step, taskId, log, delivery);
      if (!progressed) return;
    } catch (error) {
      if (error instanceof TandemError && !error.retryable) {
        // An expected tool failure (missing file, refused URL, workspace full): the step fails, not the process.
        await finishStep(deps, step, taskId, ['approved', 'running'], {
          status: 'failed',
          error: error.toShape(),
        });
        deps.kick();
        continue;
      }
      throw error;
    }
    deps.kick();
  }
}

function unverified(step: { key: string }): TandemError {
  return new TandemError(
    ErrorCodes.APPROVAL_UNVERIFIED,
    `no stored approval holds for the arguments step ${step.key} would run with`,
  );
}

function deadlineError(deadline: Date): ErrorShape {
  return {
    code: ErrorCodes.TASK_DEADLINE_EXCEEDED,
    message: `the task's deadline ${deadline.toISOString()} passed`,
    retryable: false,
  };
}

async function endTask(
  deps: AdvanceDeps,
  task: TaskRef,
  request: TaskRequestRef,
  error: ErrorShape & { stepId?: string },
  extra: { planId: string; planVersion: number; tools: string[] },
  log: Log,
): Promise<void> {
  const failed = await deps.db.prisma.$transaction((tx) =>
    failTaskInTx(tx, deps, task, request, error, extra),
  );
  if (failed) {
    deps.kick();
    deps.onTaskFinished?.('failed', task.kind);
    log.warn({ taskId: task.id, code: error.code }, 'task failed');
  }
}

/** Completes a task whose steps all completed, once; runs in the caller's plain-SQL transaction. */
async function completeTaskInTx(
  sql: Sql,
  deps: AdvanceDeps,
  state: State,
  task: TaskRef,
  request: TaskRequestRef,
  extra: { planId: string; planVersion: number; tools: string[] },
  /** Outbox rows of the same transaction, written together with the outcome (one INSERT). */
  alongside: readonly OutboxMessage[] = [],
): Promise<boolean> {
  const respondStep = [...state.steps].reverse().find((step) => step.tool === 'respond');
  const answer = respondStep?.result?.value;
  const result = {
    answer: typeof answer === 'string' ? answer : JSON.stringify(answer ?? null),
    steps: state.steps.map((step) => ({ id: step.key, tool: step.tool, value: step.result?.value ?? null })),
  };
  if (!(await completeRun(sql, task.id, result))) {
    if (alongside.length > 0) await enqueueOutboxSql(sql, alongside);
    return false;
  }
  await enqueueOutboxSql(sql, [
    ...alongside,
    taskOutcomeMessage(deps, task, request, { status: 'completed', result }, extra),
  ]);
  return true;
}

async function completeTask(
  deps: AdvanceDeps,
  state: State,
  task: TaskRef,
  request: TaskRequestRef,
  extra: { planId: string; planVersion: number; tools: string[] },
  log: Log,
): Promise<void> {
  const completed = await sqlTransaction(deps.db, (sql) =>
    completeTaskInTx(sql, deps, state, task, request, extra),
  );
  if (completed) {
    deps.kick();
    deps.onTaskFinished?.('completed', task.kind);
    log.info({ taskId: task.id }, 'task completed');
  }
}

/** The `task.replan-requested` event for a run whose step `failed` failed for good with `error`. */
export function replanRequestMessage(
  deps: Pick<AdvanceDeps, 'prefix'>,
  state: { task: { id: string }; plan: { id: string; version: number }; steps: readonly StepState[] },
  failed: Pick<StepState, 'key' | 'tool'>,
  error: ErrorShape,
): OutboxMessage {
  return outboxEvent(
    publisherOptions(deps),
    TaskReplanRequested,
    {
      taskId: state.task.id,
      planId: state.plan.id,
      version: state.plan.version,
      failedStep: {
        key: failed.key,
        tool: failed.tool,
        error: boundOutcomeError({ ...error, retryable: false }, state.task.id),
      },
      completedSteps: state.steps
        .filter((step) => step.status === 'completed')
        .map((step) => ({
          key: step.key,
          tool: step.tool,
          value: boundStepValue(step.result?.value ?? null, state.task.id),
        })),
    },
    { correlationId: state.task.id, causationId: null },
  ).message;
}

async function requestReplan(
  deps: AdvanceDeps,
  state: State,
  failed: StepState,
  error: ErrorShape,
  log: Log,
): Promise<void> {
  const asked = await deps.db.prisma.$transaction(async (tx) => {
    const updated = await tx.taskRun.updateMany({
      where: { taskId: state.task.id, status: 'running', planId: state.plan.id, replans: state.run.replans },
      data: { status: 'replanning', replans: { increment: 1 } },
    });
    if (updated.count === 0) return false;
    await enqueueOutboxPrisma(tx, replanRequestMessage(deps, state, failed, error));
    return true;
  });
  if (asked) {
    deps.kick();
    log.info(
      { taskId: state.task.id, step: failed.key, code: error.code },
      'step failed; asked for a new plan',
    );
  }
}

/** Tools whose work is a read or write of Tandem's own database: they run inline, several in one pass. */
const INLINE_TOOLS = new Set([
  'respond',
  'ask_human',
  'read_file',
  'write_file',
  'delete_file',
  'list_files',
]);

/** The value of an inline step, computed in the caller's transaction; throws TandemError for a tool failure. */
async function inlineValue(sql: Sql, deps: AdvanceDeps, state: State, step: StepState): Promise<JsonValue> {
  const taskId = state.task.id;
  switch (step.tool) {
    case 'respond':
      return RespondArguments.parse(resolvedArguments(state, step)).answer;
    case 'ask_human':
      // The approval service's answer was stored on the step when it was approved: `{ answer }`.
      return step.result?.value ?? null;
    case 'read_file': {
      const file = await readWorkspaceFileSql(
        sql,
        taskId,
        workspacePath(PathArguments.parse(resolvedArguments(state, step)).path),
      );
      return { path: file.path, content: file.content, encoding: file.encoding, size: file.size };
    }
    case 'write_file': {
      const args = WriteArguments.parse(resolvedArguments(state, step));
      const entry = await writeWorkspaceFileSql(
        sql,
        {
          taskId,
          stepId: step.stepId,
          path: workspacePath(args.path),
          content: Buffer.from(args.content, 'utf8'),
        },
        deps.workspace,
      );
      return { path: entry.path, size: entry.size, sha256: entry.sha256 };
    }
    case 'delete_file': {
      const path = workspacePath(PathArguments.parse(resolvedArguments(state, step)).path);
      return { path, deleted: await deleteWorkspaceFileSql(sql, taskId, path) };
    }
    case 'list_files': {
      const prefix = workspacePath(ListArguments.parse(resolvedArguments(state, step)).prefix ?? '', true);
      const files = await listWorkspaceFilesSql(sql, taskId, prefix);
      return { files: files.map((file) => ({ path: file.path, size: file.size })) };
    }
    default:
      throw new TandemError(ErrorCodes.TOOL_UNKNOWN_FUNCTION, `${step.tool} does not run inline`);
  }
}

/** Another replica claimed a step first: this pass's writes are rolled back. */
class ClaimLost extends Error {}

/**
 * Runs every approved inline step that can run now, in plan order, in ONE transaction holding the plan
 * lock, and completes the task in it when nothing is left: a plan of workspace tools and a `respond` costs
 * one write transaction, not one per step. A tool failure (missing file, full workspace, refused path)
 * fails its step and ends the pass; the steps before it stay completed.
 */
async function runInlineSteps(
  deps: AdvanceDeps,
  state: State,
  task: TaskRef,
  request: TaskRequestRef,
  extra: { planId: string; planVersion: number; tools: string[] },
): Promise<{ count: number; completed: boolean }> {
  try {
    return await sqlTransaction(deps.db, async (sql) => {
      if (!(await lockActivePlanSql(sql, state.plan.id))) return { count: 0, completed: false };
      const messages: OutboxMessage[] = [];
      const finished: Array<{ stepId: string; outcome: StepOutcome }> = [];
      let failed = false;
      // As in nextAction: independent steps go past steps that wait for a human without effects.
      const held = new Set<string>();
      for (const step of state.steps) {
        if (step.status === 'completed') continue;
        if (heldBehind(step, held, state.dependsOn) || overtakable(step)) {
          held.add(step.key);
          continue;
        }
        if (step.status !== 'approved' || !INLINE_TOOLS.has(step.tool)) break;
        let outcome: { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape };
        try {
          // Bound again here: a step whose values come from a step of this same pass is known only now.
          if (!approvalHolds(step, resolvedArguments(state, step))) throw unverified(step);
          outcome = { status: 'completed', value: await inlineValue(sql, deps, state, step) };
        } catch (error) {
          if (error instanceof z.ZodError) {
            outcome = {
              status: 'failed',
              error: {
                code: ErrorCodes.TOOL_INVALID_ARGUMENTS,
                message: `stored arguments of ${step.tool} are malformed`,
                retryable: false,
              },
            };
          } else if (error instanceof TandemError && !error.retryable) {
            outcome = { status: 'failed', error: error.toShape() };
          } else {
            throw error;
          }
        }
        finished.push({ stepId: step.stepId, outcome });
        messages.push(stepFinishedMessage(deps, step, state.task.id, outcome));
        if (outcome.status === 'failed') {
          step.status = 'failed';
          step.error = outcome.error;
          failed = true;
          break;
        }
        step.status = 'completed';
        step.result = { value: outcome.value, stdout: '' };
      }
      if (finished.length === 0) return { count: 0, completed: false };
      // One statement for the whole pass; a step another replica finished first undoes this pass.
      if ((await finishApprovedSteps(sql, finished)) !== finished.length) throw new ClaimLost();
      if (failed || !state.steps.every((step) => step.status === 'completed')) {
        await enqueueOutboxSql(sql, messages);
        return { count: finished.length, completed: false };
      }
      const completed = await completeTaskInTx(sql, deps, state, task, request, extra, messages);
      return { count: finished.length, completed };
    });
  } catch (error) {
    if (error instanceof ClaimLost) return { count: 0, completed: false };
    throw error;
  }
}

/** Runs one step that leaves the database (HTTP, sandbox); false when the task must wait. */
async function startStep(
  deps: AdvanceDeps,
  state: State,
  step: StepState,
  taskId: string,
  log: Log,
  delivery: { lastDelivery: boolean },
): Promise<boolean> {
  switch (step.tool) {
    case 'http_request':
      return runHttpStep(deps, state, step, taskId, log);
    case 'run_code':
      return runCodeStep(deps, state, step, taskId, log, delivery);
    default:
      // A tool the executor cannot run (added to contracts but not here yet) fails the step, not the process.
      throw new TandemError(ErrorCodes.TOOL_UNKNOWN_FUNCTION, `the executor cannot run ${step.tool}`);
  }
}

async function runHttpStep(
  deps: AdvanceDeps,
  state: State,
  step: StepState,
  taskId: string,
  log: Log,
): Promise<boolean> {
  const args = resolvedArguments(state, step);
  const claimed = await sqlTransaction(deps.db, (sql) =>
    claimStep(sql, {
      planId: state.plan.id,
      stepId: step.stepId,
      from: 'approved',
      to: 'running',
      startRun: true,
    }),
  );
  if (!claimed) return false;
  let outcome: { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape };
  try {
    outcome = { status: 'completed', value: await deps.http.run({ stepId: step.stepId, arguments: args }) };
  } catch (error) {
    outcome = { status: 'failed', error: { ...toErrorShape(error), retryable: false } };
  }
  await finishStep(deps, step, taskId, ['running'], outcome);
  log.info({ taskId, step: step.key, status: outcome.status }, 'http request step finished');
  return true;
}

async function runCodeStep(
  deps: AdvanceDeps,
  state: State,
  step: StepState,
  taskId: string,
  log: Log,
  delivery: { lastDelivery: boolean },
): Promise<boolean> {
  const args = RunCodeArguments.parse(resolvedArguments(state, step));
  const before = await deps.db.prisma.stepRun.findUnique({
    where: { stepId: step.stepId },
    select: { status: true, code: true, attempts: true, error: true, result: true },
  });
  if (!before) return false;
  const fixing = before.status === 'fixing';
  // Claim the step before any model call, so two replicas advancing the same task never both pay
  // for code generation. A claim left behind by a crashed replica goes stale and is taken over.
  const claimed = await sqlTransaction(deps.db, (sql) =>
    claimStep(sql, {
      planId: state.plan.id,
      stepId: step.stepId,
      from: fixing ? 'fixing' : 'approved',
      to: 'generating',
      staleAfterMs: deps.claimStaleMs,
    }),
  );
  if (!claimed) return false;
  // While this replica works on the step (model call, sending the job), its claim stays fresh, so the
  // stale-step sweep (a short lease) takes over only a claim whose replica stopped.
  const stopHeartbeat = keepClaimFresh(deps, step.stepId);
  try {
    const attempt = before.attempts + 1;
    const files = await deps.db.prisma.workspaceFile.findMany({
      where: { taskId },
      select: { path: true, sha256: true, size: true },
      orderBy: { path: 'asc' },
    });
    let code: string | null = !fixing && args.code !== undefined ? args.code : null;
    const origin = fixing ? 'fix' : code !== null ? 'given' : 'generate';
    if (code === null) {
      try {
        const dependencies: Record<string, JsonValue> = {};
        for (const key of state.dependsOn.get(step.key) ?? []) {
          const other = state.steps.find((candidate) => candidate.key === key);
          if (other?.result) dependencies[key] = other.result.value;
        }
        const input = JsonValue.safeParse(state.task.input ?? null);
        const request: CodeRequest = {
          language: args.language,
          spec: args.spec ?? 'Make the program below work as intended.',
          goal: state.task.goal,
          hasInput: input.success && input.data !== null,
          dependencies,
          files: files.map((file) => file.path),
          patterns: await deps.codePatterns(args.language),
        };
        const previous = StepResult.safeParse(before.result ?? null);
        const previousError = ErrorShape.safeParse(before.error ?? null);
        const messages =
          fixing && before.code !== null
            ? fixPrompt(request, {
                code: before.code,
                error: previousError.success
                  ? previousError.data
                  : { code: ErrorCodes.STEP_FAILED, message: 'the program failed', retryable: false },
                stderr: previous.success ? previous.data.stderr : '',
              })
            : codePrompt(request);
        const answer = await deps.codeModel.complete({
          taskId,
          messages,
          idempotencyKey: `code:${step.stepId}:${attempt}`,
          preference: modelPreferenceFor(state.preferences, 'code'),
          budget: state.budget,
          spent:
            state.budget === undefined
              ? { tokens: 0, costUsd: 0, calls: 0 }
              : await modelUseOfTask(deps.db, taskId),
        });
        code = answer.content === null ? null : extractCode(answer.content);
        if (code === null)
          throw new TandemError(ErrorCodes.CODE_GENERATION_FAILED, 'the code model answered without code');
        if (code.length > deps.maxCodeChars)
          throw new TandemError(
            ErrorCodes.CODE_GENERATION_FAILED,
            `the code model wrote ${code.length} characters; the limit is ${deps.maxCodeChars}`,
          );
      } catch (error) {
        const shape = toErrorShape(error);
        // A retryable model failure comes back through redelivery, except on the last delivery,
        // where the step fails with that error rather than leaving the task running forever.
        if (shape.retryable && !delivery.lastDelivery) {
          // Hand the step back so the redelivered message can claim it again.
          await deps.db.prisma.stepRun.updateMany({
            where: { stepId: step.stepId, status: 'generating' },
            data: { status: fixing ? 'fixing' : 'approved' },
          });
          throw error;
        }
        await deps.db.prisma.stepAttempt.createMany({
          data: [
            {
              id: randomUUID(),
              stepId: step.stepId,
              taskId,
              attempt,
              origin,
              outcome: 'generation_failed',
              error: toJsonInput(shape),
              finishedAt: new Date(),
            },
          ],
          skipDuplicates: true,
        });
        await finishStep(deps, step, taskId, ['generating'], {
          status: 'failed',
          error: { ...shape, retryable: false },
        });
        return true;
      }
    }
    const input = JsonValue.safeParse(state.task.input ?? null);
    const sandboxKey = `${step.stepId}:${attempt}`;
    const sent = await deps.db.prisma.$transaction(async (tx) => {
      const updated = await tx.stepRun.updateMany({
        where: { stepId: step.stepId, status: 'generating' },
        data: { status: 'running', code, attempts: attempt, startedAt: new Date() },
      });
      if (updated.count === 0) return false;
      await tx.stepAttempt.createMany({
        data: [
          {
            id: randomUUID(),
            stepId: step.stepId,
            taskId,
            attempt,
            origin,
            code,
            sandboxKey,
            outcome: 'running',
          },
        ],
        skipDuplicates: true,
      });
      await enqueueOutboxPrisma(
        tx,
        outboxEvent(
          publisherOptions(deps),
          SandboxRunRequested,
          {
            idempotencyKey: sandboxKey,
            taskId,
            stepId: step.stepId,
            language: args.language,
            code: code ?? '',
            input: input.success ? input.data : null,
            limits: deps.sandboxLimits,
            files,
          },
          { correlationId: taskId, causationId: null },
        ).message,
      );
      return true;
    });
    if (sent) log.info({ taskId, step: step.key, attempt, origin }, 'code sent to the sandbox');
    // The task waits for the sandbox's answer either way.
    return false;
  } finally {
    stopHeartbeat();
  }
}

/** Touches a `generating` step every third of the lease until stopped; returns the stop function. */
function keepClaimFresh(deps: Pick<AdvanceDeps, 'db' | 'claimStaleMs' | 'log'>, stepId: string): () => void {
  const timer = setInterval(
    () => {
      poolSql(deps.db)
        .query(
          `UPDATE "StepRun" SET "updatedAt" = (now() AT TIME ZONE 'UTC') WHERE "stepId" = $1::uuid AND "status" = 'generating'`,
          [stepId],
        )
        .catch((error: unknown) => deps.log.warn({ err: error, stepId }, 'could not renew a step claim'));
    },
    Math.max(50, Math.floor(deps.claimStaleMs / 3)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

/** The `step.finished` event of a step. */
export function stepFinishedMessage(
  deps: Pick<AdvanceDeps, 'prefix'>,
  step: { stepId: string; key: string; tool: string },
  taskId: string,
  outcome: { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape },
): OutboxMessage {
  const data =
    outcome.status === 'completed'
      ? {
          taskId,
          stepId: step.stepId,
          key: step.key,
          tool: step.tool,
          status: 'completed' as const,
          // A large value stays in the step's stored result; the event carries a marker (issue 12).
          value: boundStepValue(outcome.value, taskId),
        }
      : {
          taskId,
          stepId: step.stepId,
          key: step.key,
          tool: step.tool,
          status: 'failed' as const,
          error: boundOutcomeError(outcome.error, taskId),
        };
  return outboxEvent(publisherOptions(deps), StepFinished, data, { correlationId: taskId, causationId: null })
    .message;
}

/**
 * Moves a step from one of `from` to completed or failed and enqueues its `step.finished` event, in one
 * transaction; a conditional update, so a step another replica already moved is left alone.
 */
export async function finishStep(
  deps: AdvanceDeps,
  step: Pick<StepState, 'stepId' | 'key' | 'tool'>,
  taskId: string,
  from: string[],
  outcome: { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape },
): Promise<boolean> {
  const now = new Date();
  return deps.db.prisma.$transaction(async (tx) => {
    const updated = await tx.stepRun.updateMany({
      where: { stepId: step.stepId, status: { in: from } },
      data:
        outcome.status === 'completed'
          ? {
              status: 'completed',
              result: toJsonInput({ value: outcome.value, stdout: '' }),
              finishedAt: now,
            }
          : { status: 'failed', error: toJsonInput(outcome.error), finishedAt: now },
    });
    if (updated.count === 0) return false;
    await enqueueOutboxPrisma(tx, stepFinishedMessage(deps, step, taskId, outcome));
    return true;
  });
}
