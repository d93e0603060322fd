import { createHash, randomUUID } from 'node:crypto';
import { HTTP_TASK_SOURCE, argumentsHash, toolRegistry, type JsonValue } from '@tandem/contracts';
import { json, type Db, type StepRunStatus, type TaskRunStatus, type TaskStatus } from '@tandem/db';

/** One planned step as the planner and the approval service would have stored it. */
export interface SeedStep {
  tool: string;
  arguments: Record<string, JsonValue>;
  /** The StepRun status (`waiting`, `approved`, `running`, ...). */
  status: StepRunStatus;
  /** The arguments the stored decision is bound to, when not the planned ones (resolved values). */
  approvedArguments?: Record<string, JsonValue>;
  /** The keys of the steps this one depends on. */
  dependsOn?: string[];
  /** How long ago the StepRun row last changed (default: now). */
  updatedAgoMs?: number;
}

/** How a task is seeded. */
export interface SeedOptions {
  /** The TaskRun status (default `running`). */
  runStatus?: TaskRunStatus;
  /** false: no TaskRun and no StepRun rows, as before the executor saw `plan.proposed`. */
  withRun?: boolean;
  /** The submitter's CloudEvent `source` and `id` (default: an HTTP task). */
  source?: string;
  externalId?: string;
  /** The task's id (default: a new one). */
  taskId?: string;
  /** The planner's Task.status (default `planned`). */
  taskStatus?: TaskStatus;
  /** The task's deadline. */
  deadline?: Date;
  /** The task's input. */
  input?: JsonValue;
  /** Workspace files: path -> UTF-8 text. */
  files?: Record<string, string>;
}

/** A seeded task's ids. */
export interface SeededTask {
  taskId: string;
  planId: string;
  stepIds: string[];
  source: string;
  externalId: string;
}

/**
 * Stores a task, its active plan with the given steps, the approval service's decision for each (approved
 * unless the step is `waiting`, bound to its arguments) and, unless `withRun: false`, its TaskRun and
 * StepRun rows; returns the ids. Tests write other services' tables directly: only src/ goes through the
 * query modules.
 */
export async function seedTask(db: Db, steps: SeedStep[], options: SeedOptions = {}): Promise<SeededTask> {
  const taskId = options.taskId ?? randomUUID();
  const planId = randomUUID();
  const source = options.source ?? HTTP_TASK_SOURCE;
  const externalId = options.externalId ?? `auto:${taskId}`;
  const now = new Date();
  await db.kysely
    .insertInto('Task')
    .values({
      id: taskId,
      source,
      externalId,
      requestHash: 'test',
      goal: 'a test task',
      status: options.taskStatus ?? 'planned',
      correlationId: taskId,
      deadline: options.deadline ?? null,
      input: options.input === undefined ? null : json(options.input),
      updatedAt: now,
    })
    .execute();
  await db.kysely.insertInto('Plan').values({ id: planId, taskId, version: 1 }).execute();
  const stepIds: string[] = [];
  for (const [index, step] of steps.entries()) {
    const stepId = randomUUID();
    stepIds.push(stepId);
    await db.kysely
      .insertInto('PlanStep')
      .values({
        id: stepId,
        planId,
        stepKey: `s${index + 1}`,
        index,
        dependsOn: step.dependsOn ?? [],
        tool: step.tool,
        arguments: json(step.arguments),
        riskClass: toolRegistry.get(step.tool)?.risk ?? 'read',
        idempotencyKey: `${planId}:${index}`,
      })
      .execute();
    // What the approval service stores for a decided step: the executor runs nothing without it.
    await db.kysely
      .insertInto('ApprovalRequest')
      .values({
        id: randomUUID(),
        taskId,
        planId,
        stepId,
        tool: step.tool,
        mode: 'auto',
        status: step.status === 'waiting' ? 'pending' : 'approved',
        argumentsHash: argumentsHash(step.approvedArguments ?? step.arguments),
        updatedAt: now,
      })
      .execute();
    if (options.withRun === false) continue;
    const running = step.status === 'running' || step.status === 'generating';
    await db.kysely
      .insertInto('StepRun')
      .values({
        stepId,
        taskId,
        status: step.status,
        attempts: running ? 1 : 0,
        startedAt: running ? now : null,
        updatedAt: now,
      })
      .execute();
    if (step.updatedAgoMs !== undefined) await ageStep(db, stepId, step.updatedAgoMs);
  }
  if (options.withRun !== false)
    await db.kysely
      .insertInto('TaskRun')
      .values({ taskId, planId, status: options.runStatus ?? 'running', updatedAt: now })
      .execute();
  for (const [path, text] of Object.entries(options.files ?? {})) {
    const content = Buffer.from(text, 'utf8');
    await db.kysely
      .insertInto('WorkspaceFile')
      .values({
        taskId,
        path,
        content,
        size: content.byteLength,
        sha256: createHash('sha256').update(content).digest('hex'),
        updatedAt: now,
      })
      .execute();
  }
  return { taskId, planId, stepIds, source, externalId };
}

/** `ms` before now (the tests' database runs on this host: its clock is this one). */
function ago(ms: number): Date {
  return new Date(Date.now() - ms);
}

/** Makes a step's row look unchanged for `ms`. */
export async function ageStep(db: Db, stepId: string, ms: number): Promise<void> {
  await db.kysely
    .updateTable('StepRun')
    .set({ updatedAt: ago(ms) })
    .where('stepId', '=', stepId)
    .execute();
}

/** Makes a task's run and steps look unchanged for `ms`. */
export async function ageRun(db: Db, taskId: string, ms: number): Promise<void> {
  const before = ago(ms);
  await db.kysely.updateTable('TaskRun').set({ updatedAt: before }).where('taskId', '=', taskId).execute();
  await db.kysely.updateTable('StepRun').set({ updatedAt: before }).where('taskId', '=', taskId).execute();
}

/** Makes a task's row (the planner's) look unchanged for `ms`. */
export async function ageTask(db: Db, taskId: string, ms: number): Promise<void> {
  await db.kysely
    .updateTable('Task')
    .set({ updatedAt: ago(ms) })
    .where('id', '=', taskId)
    .execute();
}

/** A task's run row. */
export async function runOf(db: Db, taskId: string) {
  return db.kysely.selectFrom('TaskRun').selectAll().where('taskId', '=', taskId).executeTakeFirstOrThrow();
}

/** A task's steps in plan order: tool, status, result, error, attempts, code. */
export async function stepsOf(db: Db, taskId: string) {
  return db.kysely
    .selectFrom('StepRun as r')
    .innerJoin('PlanStep as s', 's.id', 'r.stepId')
    .select(['s.tool', 'r.stepId', 'r.status', 'r.result', 'r.error', 'r.attempts', 'r.code'])
    .where('r.taskId', '=', taskId)
    .orderBy('s.index')
    .execute();
}

/** One step's row. */
export async function stepOf(db: Db, stepId: string) {
  return db.kysely.selectFrom('StepRun').selectAll().where('stepId', '=', stepId).executeTakeFirstOrThrow();
}

/** The executor's outbox rows whose payload names the task, oldest first: subject and payload. */
export async function outboxOf(
  db: Db,
  taskId: string,
): Promise<Array<{ subject: string; payload: unknown }>> {
  const rows = await db.kysely
    .selectFrom('Outbox')
    .select(['subject', 'payload'])
    .where('publisher', '=', 'executor')
    .orderBy('seq')
    .execute();
  return rows.filter((row) => JSON.stringify(row.payload).includes(taskId));
}

/** A task's workspace paths, sorted. */
export async function filesOf(db: Db, taskId: string): Promise<string[]> {
  const rows = await db.kysely
    .selectFrom('WorkspaceFile')
    .select('path')
    .where('taskId', '=', taskId)
    .orderBy('path')
    .execute();
  return rows.map((row) => row.path);
}
