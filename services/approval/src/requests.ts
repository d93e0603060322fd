import {
  ApprovalView,
  JsonValue,
  RiskClass,
  RiskLevel,
  RiskReason,
  toolRegistry,
  type PlannedStep,
} from '@tandem/contracts';
import type { Sql } from '@tandem/db';
import { z } from 'zod';
import { requestKindOf } from './domain/human-decision.js';

const ArgumentsRecord = z.record(z.string(), JsonValue);

/** An `ApprovalRequest` row as this service reads it (plain SQL). */
export const RequestRow = z.object({
  id: z.string(),
  taskId: z.string(),
  planId: z.string(),
  stepId: z.string().nullable(),
  agentId: z.string().nullable(),
  tool: z.string().nullable(),
  riskClass: z.string().nullable(),
  riskLevel: z.string().nullable(),
  riskReasons: z.unknown(),
  trustAtDecision: z.number().nullable(),
  kind: z.string(),
  question: z.string().nullable(),
  mode: z.string(),
  status: z.string(),
  deadline: z.date().nullable(),
  decidedBy: z.string().nullable(),
  decidedAt: z.date().nullable(),
  reason: z.string().nullable(),
  editedArguments: z.unknown(),
  resolvedArguments: z.unknown().optional(),
  argumentsHash: z.string().nullable().optional(),
  answer: z.string().nullable(),
  actionClass: z.string().nullable(),
  basis: z.string().nullable(),
  approverGroup: z.string().nullable(),
  escalationLevel: z.number().int(),
  onExpiry: z.string().nullable(),
  remindedAt: z.date().nullable(),
  revertedAt: z.date().nullable(),
  createdAt: z.date(),
});
/** An `ApprovalRequest` row. */
export type RequestRow = z.infer<typeof RequestRow>;

/** The columns of {@link RequestRow}; timestamps are read as UTC instants. */
export const REQUEST_SELECT = `r."id"::text AS "id", r."taskId"::text AS "taskId", r."planId"::text AS "planId",
  r."stepId"::text AS "stepId", r."agentId", r."tool", r."riskClass", r."riskLevel", r."riskReasons",
  r."trustAtDecision", r."kind", r."question", r."mode", r."status",
  (r."deadline" AT TIME ZONE 'UTC') AS "deadline", r."decidedBy", (r."decidedAt" AT TIME ZONE 'UTC') AS "decidedAt",
  r."reason", r."editedArguments", r."resolvedArguments", r."argumentsHash", r."answer", r."actionClass", r."basis", r."approverGroup", r."escalationLevel",
  r."onExpiry", (r."remindedAt" AT TIME ZONE 'UTC') AS "remindedAt",
  (r."revertedAt" AT TIME ZONE 'UTC') AS "revertedAt", (r."createdAt" AT TIME ZONE 'UTC') AS "createdAt"`;

/** Parses rows read with {@link REQUEST_SELECT}. */
export function requestRows(rows: readonly Record<string, unknown>[]): RequestRow[] {
  return rows.map((row) => RequestRow.parse(row));
}

/** Stored risk reasons (an unreadable value reads as none). */
export function riskReasonsOf(value: unknown): RiskReason[] {
  const parsed = z.array(RiskReason).safeParse(value);
  return parsed.success ? parsed.data : [];
}

/** A stored risk level (unknown values read as null). */
export function riskLevelOf(value: string | null): RiskLevel | null {
  const parsed = RiskLevel.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** Stored arguments as a record (null when missing or malformed). */
export function argumentsOf(value: unknown): Record<string, JsonValue> | null {
  const parsed = ArgumentsRecord.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/**
 * Lists requests by status (`escalated` = pending after an escalation), task and limit, oldest first.
 * `groups` limits them to what an approver token sees (`maySeeApproverGroup`): those groups' requests,
 * or with no groups the requests without a group; absent, every request (admins).
 */
export async function listRequests(
  sql: Sql,
  filter: { status?: string; taskId?: string; limit: number; groups?: readonly string[] },
): Promise<RequestRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.groups !== undefined && filter.groups.length === 0) {
    where.push(`r."approverGroup" IS NULL`);
  } else if (filter.groups !== undefined) {
    params.push([...filter.groups]);
    where.push(`r."approverGroup" = ANY($${params.length}::text[])`);
  }
  if (filter.status === 'escalated') {
    where.push(`r."status" = 'pending' AND r."escalationLevel" > 0`);
  } else if (filter.status) {
    params.push(filter.status);
    where.push(`r."status" = $${params.length}`);
  }
  if (filter.taskId) {
    params.push(filter.taskId);
    where.push(`r."taskId" = $${params.length}::uuid`);
  }
  params.push(filter.limit);
  const result = await sql.query(
    `SELECT ${REQUEST_SELECT} FROM "ApprovalRequest" r
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY r."createdAt" ASC, r."id" ASC LIMIT $${params.length}`,
    params,
  );
  return requestRows(result.rows);
}

/** One request by id (optionally locked for update in the caller's transaction). */
export async function findRequest(
  sql: Sql,
  by: { id: string } | { stepId: string },
  lock = false,
): Promise<RequestRow | null> {
  const [column, value] = 'id' in by ? ['id', by.id] : ['stepId', by.stepId];
  const result = await sql.query(
    `SELECT ${REQUEST_SELECT} FROM "ApprovalRequest" r WHERE r."${column}" = $1::uuid ${lock ? 'FOR UPDATE' : ''}`,
    [value],
  );
  return requestRows(result.rows)[0] ?? null;
}

/** The planned step of a request: its arguments and the learned patterns its plan used. */
export async function stepContext(
  sql: Sql,
  stepId: string,
): Promise<{ key: string; tool: string; arguments: Record<string, JsonValue>; patternIds: string[] } | null> {
  const result = await sql.query(
    `SELECT s."stepKey", s."tool", s."arguments", m."qualityFactors"->'patternIds' AS "patternIds"
       FROM "PlanStep" s LEFT JOIN "PlanMetrics" m ON m."planId" = s."planId"
      WHERE s."id" = $1::uuid`,
    [stepId],
  );
  const row = result.rows[0];
  if (!row) return null;
  const ids = z.array(z.string()).safeParse(row['patternIds']);
  return {
    key: String(row['stepKey']),
    tool: String(row['tool']),
    arguments: argumentsOf(row['arguments']) ?? {},
    patternIds: ids.success ? ids.data : [],
  };
}

/** The API view of requests: arguments as planned, the plan around each step, risk, trust and basis. */
export async function toViews(sql: Sql, rows: readonly RequestRow[]): Promise<ApprovalView[]> {
  const planIds = [...new Set(rows.map((row) => row.planId))];
  const plans = new Map<string, NonNullable<ApprovalView['plan']>>();
  const argumentsByStep = new Map<string, JsonValue>();
  if (planIds.length > 0) {
    const result = await sql.query(
      `SELECT s."planId"::text AS "planId", s."id"::text AS "stepId", s."stepKey", s."tool", s."arguments",
              s."riskClass", a."riskLevel"
         FROM "PlanStep" s LEFT JOIN "ApprovalRequest" a ON a."stepId" = s."id"
        WHERE s."planId" = ANY($1::uuid[])
        ORDER BY s."planId", s."index"`,
      [planIds],
    );
    for (const row of result.rows) {
      const planId = String(row['planId']);
      const stepId = String(row['stepId']);
      const args = JsonValue.safeParse(row['arguments']);
      const value = args.success ? args.data : null;
      argumentsByStep.set(stepId, value);
      const steps = plans.get(planId) ?? [];
      steps.push({
        stepId,
        key: String(row['stepKey']),
        tool: String(row['tool']),
        arguments: value,
        riskClass: String(row['riskClass']),
        riskLevel: typeof row['riskLevel'] === 'string' ? row['riskLevel'] : null,
      });
      plans.set(planId, steps);
    }
  }
  return rows.map((row) =>
    ApprovalView.parse({
      id: row.id,
      taskId: row.taskId,
      planId: row.planId,
      stepId: row.stepId,
      tool: row.tool,
      arguments: row.stepId ? (argumentsByStep.get(row.stepId) ?? null) : null,
      riskClass: row.riskClass,
      agentId: row.agentId,
      kind: requestKindOf(row.kind),
      question: row.question,
      answer: row.answer,
      mode: row.mode === 'auto' ? 'auto' : 'human',
      status: row.status,
      decidedBy: row.decidedBy,
      decidedAt: row.decidedAt?.toISOString() ?? null,
      reason: row.reason,
      createdAt: row.createdAt.toISOString(),
      riskLevel: riskLevelOf(row.riskLevel),
      riskReasons: riskReasonsOf(row.riskReasons),
      trust: row.trustAtDecision,
      actionClass: row.actionClass,
      basis: row.basis,
      deadline: row.deadline?.toISOString() ?? null,
      group: row.approverGroup,
      escalationLevel: row.escalationLevel,
      editedArguments: argumentsOf(row.editedArguments),
      resolvedArguments: argumentsOf(row.resolvedArguments),
      plan: plans.get(row.planId) ?? [],
    }),
  );
}

/**
 * The steps of a stored plan as the plan handler judged them (the planner's rows), with the task's kind:
 * what an edited or resolved step is judged again against.
 */
export async function storedPlan(sql: Sql, planId: string): Promise<{ kind: string; steps: PlannedStep[] }> {
  const result = await sql.query(
    `SELECT s."id"::text AS "stepId", s."stepKey", s."index", s."tool", s."arguments", s."riskClass",
            s."dependsOn", t."kind"
       FROM "PlanStep" s JOIN "Plan" p ON p."id" = s."planId" JOIN "Task" t ON t."id" = p."taskId"
      WHERE s."planId" = $1::uuid
      ORDER BY s."index"`,
    [planId],
  );
  const steps: PlannedStep[] = [];
  let kind = 'general';
  for (const row of result.rows) {
    kind = String(row['kind'] ?? 'general');
    const tool = String(row['tool']);
    const riskClass = RiskClass.safeParse(row['riskClass']);
    const dependsOn = z.array(z.string()).safeParse(row['dependsOn']);
    steps.push({
      stepId: String(row['stepId']),
      key: String(row['stepKey']),
      index: Number(row['index']),
      tool,
      arguments: argumentsOf(row['arguments']) ?? {},
      // An unreadable class is judged as the most dangerous one (unknown means high).
      riskClass: riskClass.success ? riskClass.data : 'destructive',
      sideEffects: toolRegistry.get(tool)?.sideEffects ?? true,
      dependsOn: dependsOn.success ? dependsOn.data : [],
    });
  }
  return { kind, steps };
}
