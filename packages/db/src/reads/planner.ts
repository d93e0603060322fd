import {
  ErrorShape,
  JsonValue,
  type ErrorShape as ErrorShapeType,
  type JsonValue as JsonValueType,
} from '@tandem/contracts';
import { parseStored } from '../rows.js';
import { queryable, utcNow, type Reader } from '../tables/planner-common.js';
import type { PlanStatus } from '../tables/plan.js';
import type { TaskStatus } from '../tables/task.js';

// The planner's reads of tables other services write (EarlyCancel, TaskRun, StepRun: the executor's),
// joined with its own.

/**
 * Whether a cancel request that came before the task was stored names it (by id, or by its idempotency
 * key) and has not expired: the executor's EarlyCancel rows, read so that no model call is paid for a
 * cancelled task.
 */
export async function cancelledBeforeArrival(
  db: Reader,
  task: { id: string; source: string; externalId: string },
): Promise<boolean> {
  const row = await queryable(db)
    .selectFrom('EarlyCancel')
    .select('id')
    .where('expiresAt', '>', utcNow())
    .where((eb) =>
      eb.or([
        eb('taskId', '=', task.id),
        eb.and([eb('source', '=', task.source), eb('externalId', '=', task.externalId)]),
      ]),
    )
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** A task's own state and its run's (null before the executor started it), or null for no task. */
export async function taskAndRunStatus(
  db: Reader,
  taskId: string,
): Promise<{ status: TaskStatus; runStatus: string | null } | null> {
  const row = await queryable(db)
    .selectFrom('Task')
    .leftJoin('TaskRun', 'TaskRun.taskId', 'Task.id')
    .select(['Task.status as status', 'TaskRun.status as runStatus'])
    .where('Task.id', '=', taskId)
    .executeTakeFirst();
  return row ?? null;
}

/** A run's state (the executor's TaskRun), or null before the executor started the task. */
export async function taskRunStatus(db: Reader, taskId: string): Promise<string | null> {
  const row = await queryable(db)
    .selectFrom('TaskRun')
    .select('status')
    .where('taskId', '=', taskId)
    .executeTakeFirst();
  return row?.status ?? null;
}

/** The first step of a plan whose run is in none of the `notStarted` states (it started), or null. */
export async function firstStartedStep(
  db: Reader,
  planId: string,
  notStarted: readonly string[],
): Promise<{ stepKey: string; status: string } | null> {
  const row = await queryable(db)
    .selectFrom('StepRun')
    .innerJoin('PlanStep', 'PlanStep.id', 'StepRun.stepId')
    .select(['PlanStep.stepKey as stepKey', 'StepRun.status as status'])
    .where('PlanStep.planId', '=', planId)
    .where('StepRun.status', 'not in', [...notStarted])
    .limit(1)
    .executeTakeFirst();
  return row ?? null;
}

/** One step of a task's newest plan with its run's state (null before the executor made one). */
export interface StoredStepView {
  id: string;
  stepKey: string;
  index: number;
  tool: string;
  arguments: Record<string, JsonValueType>;
  riskClass: string;
  dependsOn: string[];
  rationale: string | null;
  run: { status: string; result: JsonValueType | null; error: ErrorShapeType | null } | null;
}

/** A task as `GET /v1/tasks/:id` shows it: its row, its run, its newest plan and that plan's steps. */
export interface StoredTaskView {
  id: string;
  status: TaskStatus;
  goal: string;
  kind: string;
  agentId: string | null;
  source: string;
  externalId: string;
  createdAt: Date;
  deadline: Date | null;
  error: ErrorShapeType | null;
  run: { status: string; result: JsonValueType | null; error: ErrorShapeType | null } | null;
  plan: {
    id: string;
    version: number;
    status: PlanStatus;
    origin: string;
    editedBy: string | null;
    editedByLabel: string | null;
    qualityScore: number | null;
    steps: StoredStepView[];
  } | null;
}

const StoredJson = JsonValue.nullable();
const StoredError = ErrorShape.nullable();
const StoredArguments = JsonValue.refine(
  (value): value is Record<string, JsonValueType> =>
    typeof value === 'object' && value !== null && !Array.isArray(value),
  'step arguments are a JSON object',
);

/** Reads a task with its run, its newest plan and that plan's steps with their runs, parsed. */
export async function readStoredTaskView(db: Reader, taskId: string): Promise<StoredTaskView | null> {
  const q = queryable(db);
  const task = await q
    .selectFrom('Task')
    .leftJoin('TaskRun', 'TaskRun.taskId', 'Task.id')
    .select([
      'Task.id as id',
      'Task.status as status',
      'Task.goal as goal',
      'Task.kind as kind',
      'Task.agentId as agentId',
      'Task.source as source',
      'Task.externalId as externalId',
      'Task.createdAt as createdAt',
      'Task.deadline as deadline',
      'Task.error as error',
      'TaskRun.status as runStatus',
      'TaskRun.result as runResult',
      'TaskRun.error as runError',
    ])
    .where('Task.id', '=', taskId)
    .executeTakeFirst();
  if (task === undefined) return null;
  const plan = await q
    .selectFrom('Plan')
    .select(['id', 'version', 'status', 'origin', 'editedBy', 'editedByLabel', 'qualityScore'])
    .where('taskId', '=', taskId)
    .orderBy('version', 'desc')
    .limit(1)
    .executeTakeFirst();
  const steps =
    plan === undefined
      ? []
      : await q
          .selectFrom('PlanStep')
          .leftJoin('StepRun', 'StepRun.stepId', 'PlanStep.id')
          .select([
            'PlanStep.id as id',
            'PlanStep.stepKey as stepKey',
            'PlanStep.index as index',
            'PlanStep.tool as tool',
            'PlanStep.arguments as arguments',
            'PlanStep.riskClass as riskClass',
            'PlanStep.dependsOn as dependsOn',
            'PlanStep.rationale as rationale',
            'StepRun.status as runStatus',
            'StepRun.result as runResult',
            'StepRun.error as runError',
          ])
          .where('PlanStep.planId', '=', plan.id)
          .orderBy('PlanStep.index', 'asc')
          .execute();
  return {
    id: task.id,
    status: task.status,
    goal: task.goal,
    kind: task.kind,
    agentId: task.agentId,
    source: task.source,
    externalId: task.externalId,
    createdAt: task.createdAt,
    deadline: task.deadline,
    error: parseStored(StoredError, task.error, 'Task.error'),
    run:
      task.runStatus === null
        ? null
        : {
            status: task.runStatus,
            result: parseStored(StoredJson, task.runResult, 'TaskRun.result'),
            error: parseStored(StoredError, task.runError, 'TaskRun.error'),
          },
    plan:
      plan === undefined
        ? null
        : {
            ...plan,
            steps: steps.map((step) => ({
              id: step.id,
              stepKey: step.stepKey,
              index: step.index,
              tool: step.tool,
              arguments: parseStored(StoredArguments, step.arguments, 'PlanStep.arguments'),
              riskClass: step.riskClass,
              dependsOn: step.dependsOn,
              rationale: step.rationale,
              run:
                step.runStatus === null
                  ? null
                  : {
                      status: step.runStatus,
                      result: parseStored(StoredJson, step.runResult, 'StepRun.result'),
                      error: parseStored(StoredError, step.runError, 'StepRun.error'),
                    },
            })),
          },
  };
}
