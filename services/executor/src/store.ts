/**
 * The executor's hot-path reads and writes in plain SQL (one round trip each, no ORM work per query):
 * loading a task's run state, the workspace tools, step and run transitions. See
 * docs/decisions/2026-11-26-sql-on-hot-paths.md. Timestamps are written and read as UTC wall-clock time,
 * like Prisma's own writes; `updatedAt` columns are set on every update, as Prisma's `@updatedAt` does.
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, ErrorShape, JsonValue, TandemError } from '@tandem/contracts';
import { UTC_NOW as NOW, toJsonText, type Sql } from '@tandem/db';
import { z } from 'zod';
import type { StepState } from './domain/progress.js';
import type { WorkspaceEntry, WorkspaceFileView, WorkspaceLimits } from './workspace.js';

const RunRow = z.object({
  runStatus: z.string(),
  planId: z.string().nullable(),
  replans: z.number(),
  taskId: z.string(),
  goal: z.string(),
  input: z.unknown(),
  kind: z.string(),
  agentId: z.string().nullable(),
  source: z.string(),
  externalId: z.string(),
  budget: z.unknown(),
  preferences: z.unknown(),
  deadline: z.date().nullable(),
  planVersion: z.number().nullable(),
  planStatus: z.string().nullable(),
});

const StepRow = z.object({
  stepId: z.string(),
  stepKey: z.string(),
  index: z.number(),
  tool: z.string(),
  arguments: z.unknown(),
  dependsOn: z.array(z.string()),
  status: z.string().nullable(),
  result: z.unknown(),
  error: z.unknown(),
  approvalStatus: z.string().nullable().optional(),
  argumentsHash: z.string().nullable().optional(),
});

const StepResult = z.object({
  value: JsonValue.nullable().default(null),
  stdout: z.string().default(''),
  stderr: z.string().default(''),
});
const ArgumentsRecord = z.record(z.string(), JsonValue);

/** A task's run, the task as submitted and the steps of the plan version it runs. */
export interface RunState {
  run: { status: string; planId: string; replans: number };
  task: {
    id: string;
    goal: string;
    input: unknown;
    kind: string;
    agentId: string | null;
    source: string;
    externalId: string;
    budget: unknown;
    preferences: unknown;
    deadline: Date | null;
  };
  plan: { id: string; version: number; status: string };
  steps: StepState[];
  dependsOn: Map<string, string[]>;
}

/** Loads what `advanceTask` needs in one statement; null when the task has no run or plan yet. */
export async function loadRunState(sql: Sql, taskId: string): Promise<RunState | null> {
  const head = await sql.query(
    `SELECT r."status" AS "runStatus", r."planId"::text AS "planId", r."replans",
            t."id"::text AS "taskId", t."goal", t."input", t."kind", t."agentId", t."source", t."externalId",
            t."budget", t."preferences", (t."deadline" AT TIME ZONE 'UTC') AS "deadline",
            p."version" AS "planVersion", p."status" AS "planStatus",
            (SELECT coalesce(json_agg(json_build_object(
                      'stepId', s."id", 'stepKey', s."stepKey", 'index', s."index", 'tool', s."tool",
                      'arguments', coalesce(sr."arguments", s."arguments"), 'dependsOn', s."dependsOn", 'status', sr."status",
                      'result', sr."result", 'error', sr."error",
                      'approvalStatus', a."status", 'argumentsHash', a."argumentsHash") ORDER BY s."index"), '[]'::json)
               FROM "PlanStep" s LEFT JOIN "StepRun" sr ON sr."stepId" = s."id"
                    LEFT JOIN "ApprovalRequest" a ON a."stepId" = s."id" AND a."planId" = s."planId"
              WHERE s."planId" = r."planId") AS "steps"
       FROM "TaskRun" r JOIN "Task" t ON t."id" = r."taskId" LEFT JOIN "Plan" p ON p."id" = r."planId"
      WHERE r."taskId" = $1::uuid`,
    [taskId],
  );
  const raw = head.rows[0];
  if (!raw) return null;
  const row = RunRow.parse(raw);
  if (row.planId === null || row.planVersion === null || row.planStatus === null) return null;
  const steps: StepState[] = [];
  const dependsOn = new Map<string, string[]>();
  for (const rawStep of Array.isArray(raw['steps']) ? raw['steps'] : []) {
    const step = StepRow.parse(rawStep);
    const args = ArgumentsRecord.safeParse(step.arguments);
    const result = StepResult.safeParse(step.result ?? null);
    const error = ErrorShape.safeParse(step.error ?? null);
    steps.push({
      stepId: step.stepId,
      key: step.stepKey,
      index: step.index,
      tool: step.tool,
      arguments: args.success ? args.data : {},
      status: step.status ?? 'waiting',
      result: result.success ? result.data : null,
      error: error.success ? error.data : null,
      approval:
        step.approvalStatus === null || step.approvalStatus === undefined
          ? null
          : { status: step.approvalStatus, argumentsHash: step.argumentsHash ?? null },
    });
    dependsOn.set(step.stepKey, step.dependsOn);
  }
  return {
    run: { status: row.runStatus, planId: row.planId, replans: row.replans },
    task: {
      id: row.taskId,
      goal: row.goal,
      input: row.input,
      kind: row.kind,
      agentId: row.agentId,
      source: row.source,
      externalId: row.externalId,
      budget: row.budget,
      preferences: row.preferences,
      deadline: row.deadline,
    },
    plan: { id: row.planId, version: row.planVersion, status: row.planStatus },
    steps,
    dependsOn,
  };
}

/** Whether the plan is still active, holding a shared lock on its row until the transaction ends. */
export async function lockActivePlanSql(sql: Sql, planId: string): Promise<boolean> {
  const result = await sql.query(`SELECT "status" FROM "Plan" WHERE "id" = $1::uuid FOR SHARE`, [planId]);
  return result.rows[0]?.['status'] === 'active';
}

/**
 * Claims a step for work that leaves the database (an HTTP call, the code model), holding the plan lock:
 * `from` -> `to`, or a `generating` claim older than `staleAfterMs` (a crashed replica's) when given.
 * `startRun` also stamps the start and counts an attempt. False when the plan was replaced or another
 * replica holds the step.
 */
export async function claimStep(
  sql: Sql,
  input: {
    planId: string;
    stepId: string;
    from: string;
    to: string;
    staleAfterMs?: number;
    startRun?: boolean;
  },
): Promise<boolean> {
  if (!(await lockActivePlanSql(sql, input.planId))) return false;
  const start = input.startRun === true ? `, "startedAt" = ${NOW}, "attempts" = "attempts" + 1` : '';
  const result = await sql.query(
    `UPDATE "StepRun" SET "status" = $3, "updatedAt" = ${NOW}${start}
      WHERE "stepId" = $1::uuid
        AND ("status" = $2 OR ($4::int IS NOT NULL AND "status" = 'generating'
                               AND "updatedAt" < ${NOW} - $4::int * interval '1 millisecond'))`,
    [input.stepId, input.from, input.to, input.staleAfterMs ?? null],
  );
  return result.rowCount === 1;
}

/** How an inline step ended. */
export type StepOutcome = { status: 'completed'; value: JsonValue } | { status: 'failed'; error: ErrorShape };

/**
 * Moves approved steps to their end states with their results or errors, in one statement; returns how
 * many were still approved (the caller compares it with how many it meant to finish).
 */
export async function finishApprovedSteps(
  sql: Sql,
  steps: ReadonlyArray<{ stepId: string; outcome: StepOutcome }>,
): Promise<number> {
  if (steps.length === 0) return 0;
  const result = await sql.query(
    `UPDATE "StepRun" AS r
        SET "status" = v."status", "result" = v."result"::jsonb, "error" = v."error"::jsonb,
            "startedAt" = ${NOW}, "finishedAt" = ${NOW}, "updatedAt" = ${NOW},
            "attempts" = r."attempts" + CASE WHEN v."status" = 'completed' THEN 1 ELSE 0 END
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS v("stepId", "status", "result", "error")
      WHERE r."stepId" = v."stepId" AND r."status" = 'approved'`,
    [
      steps.map((step) => step.stepId),
      steps.map((step) => step.outcome.status),
      steps.map((step) =>
        step.outcome.status === 'completed' ? toJsonText({ value: step.outcome.value, stdout: '' }) : null,
      ),
      steps.map((step) => (step.outcome.status === 'failed' ? toJsonText(step.outcome.error) : null)),
    ],
  );
  return result.rowCount;
}

/** Completes a running task with its result; false when it was no longer running. */
export async function completeRun(sql: Sql, taskId: string, result: JsonValue): Promise<boolean> {
  const updated = await sql.query(
    `UPDATE "TaskRun" SET "status" = 'completed', "result" = $2::jsonb, "finishedAt" = ${NOW}, "updatedAt" = ${NOW}
      WHERE "taskId" = $1::uuid AND "status" = 'running'`,
    [taskId, toJsonText(result)],
  );
  return updated.rowCount === 1;
}

function asText(content: Uint8Array): { content: string; encoding: 'utf8' | 'base64' } {
  try {
    return { content: new TextDecoder('utf-8', { fatal: true }).decode(content), encoding: 'utf8' };
  } catch {
    return { content: Buffer.from(content).toString('base64'), encoding: 'base64' };
  }
}

/** Reads one workspace file; throws WORKSPACE.FILE_NOT_FOUND when there is none. */
export async function readWorkspaceFileSql(
  sql: Sql,
  taskId: string,
  path: string,
): Promise<WorkspaceFileView> {
  const result = await sql.query(
    `SELECT "content", "size" FROM "WorkspaceFile" WHERE "taskId" = $1::uuid AND "path" = $2`,
    [taskId, path],
  );
  const row = result.rows[0];
  const content = row?.['content'];
  const size = row?.['size'];
  if (!(content instanceof Uint8Array) || typeof size !== 'number') {
    throw new TandemError(ErrorCodes.WORKSPACE_FILE_NOT_FOUND, `the workspace has no file ${path}`);
  }
  return { path, size, ...asText(content) };
}

/** Lists the workspace's files under a directory prefix ('' = all), sorted by path. */
export async function listWorkspaceFilesSql(
  sql: Sql,
  taskId: string,
  prefix: string,
): Promise<Array<{ path: string; size: number }>> {
  const result = await sql.query(
    `SELECT "path", "size" FROM "WorkspaceFile"
      WHERE "taskId" = $1::uuid AND ($2 = '' OR left("path", length($2) + 1) = $2 || '/')
      ORDER BY "path"`,
    [taskId, prefix],
  );
  return result.rows.map((row) => {
    const path = row['path'];
    const size = row['size'];
    if (typeof path !== 'string' || typeof size !== 'number')
      throw new TypeError('malformed WorkspaceFile row');
    return { path, size };
  });
}

/** Writes (creates or replaces) one workspace file within the caps, in the caller's transaction. */
export async function writeWorkspaceFileSql(
  sql: Sql,
  input: { taskId: string; stepId: string; path: string; content: Uint8Array },
  limits: WorkspaceLimits,
): Promise<WorkspaceEntry> {
  const size = input.content.byteLength;
  if (size > limits.maxFileBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `${input.path} is ${size} bytes; a workspace file may have at most ${limits.maxFileBytes}`,
    );
  }
  const totals = await sql.query(
    `SELECT coalesce(sum("size"), 0)::bigint::text AS "bytes", count(*)::int AS "files"
       FROM "WorkspaceFile" WHERE "taskId" = $1::uuid AND "path" <> $2`,
    [input.taskId, input.path],
  );
  const bytes = Number(totals.rows[0]?.['bytes'] ?? 0);
  const files = Number(totals.rows[0]?.['files'] ?? 0);
  if (bytes + size > limits.maxTotalBytes) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `writing ${input.path} would take the workspace over ${limits.maxTotalBytes} bytes`,
    );
  }
  if (files + 1 > limits.maxFiles) {
    throw new TandemError(
      ErrorCodes.WORKSPACE_LIMIT,
      `the workspace may hold at most ${limits.maxFiles} files`,
    );
  }
  const sha256 = createHash('sha256').update(input.content).digest('hex');
  await sql.query(
    `INSERT INTO "WorkspaceFile" ("taskId", "path", "content", "size", "sha256", "stepId", "updatedAt")
     VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid, ${NOW})
     ON CONFLICT ("taskId", "path") DO UPDATE
       SET "content" = EXCLUDED."content", "size" = EXCLUDED."size", "sha256" = EXCLUDED."sha256",
           "stepId" = EXCLUDED."stepId", "updatedAt" = EXCLUDED."updatedAt"`,
    [input.taskId, input.path, Buffer.from(input.content), size, sha256, input.stepId],
  );
  return { path: input.path, size, sha256 };
}
