import {
  CancelTaskBody,
  CancelTaskResponse,
  CloudEventTypes,
  EditPlanBody,
  ErrorCodes,
  HttpErrorBody,
  PublicSubjects,
  TaskBudget,
  TandemError,
  TaskView,
  taskRequestRef,
  type ToolCheckContext,
  type ToolDefinition,
} from '@tandem/contracts';
import { enqueueOutboxSql, modelUseOfTask, sqlTransaction, type Db } from '@tandem/db';
import {
  outboxCloudEvent,
  principalRef,
  requirePrincipal,
  requireTaskAccess,
  type HttpServer,
} from '@tandem/service-kit';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { checkEditedPlan } from '../domain/planning.js';
import { planQuality, riskMixOf } from '../domain/quality.js';
import { storePlanVersion, type ValidatedStep } from '../plan-store.js';
import { readTaskView } from './tasks.js';

const IdParams = z.strictObject({ id: z.uuid() });
const AUTH_ERRORS = { 401: HttpErrorBody, 403: HttpErrorBody };
/**
 * Roles that may edit or cancel a task (admin always may); each route then checks that the token may
 * act on that task (`requireTaskAccess`: 404 as for a missing task when it may not).
 */
const TASK_CONTROL = { roles: ['submitter', 'approver'] } as const;

/** Step states in which a step has not started: a plan whose steps are all here may still be edited. */
const NOT_STARTED = new Set(['waiting', 'approved']);

/** Dependencies of the plan routes. */
export interface PlanRoutesDeps {
  db: Db;
  prefix: string;
  kick: () => void;
  registry: ReadonlyMap<string, ToolDefinition>;
  checkContext: ToolCheckContext;
  limits: { maxSteps: number; maxArgumentBytes: number; maxDepth: number };
  estimateStepCostUsd: (step: ValidatedStep) => number;
}

/**
 * `PUT /v1/tasks/:id/plan` (fixed contract) and `POST /v1/tasks/:id/cancel`.
 *
 * An edit is validated exactly like a model's plan, then stored as the next version in one transaction
 * that holds the current plan's row lock: the executor takes the same lock (shared) before it starts a
 * step, so an edit and a step start never both win.
 */
export function registerPlanRoutes(app: HttpServer, deps: PlanRoutesDeps): void {
  app.put(
    '/v1/tasks/:id/plan',
    {
      config: TASK_CONTROL,
      schema: {
        params: IdParams,
        body: EditPlanBody,
        response: {
          ...AUTH_ERRORS,
          200: TaskView,
          400: HttpErrorBody,
          404: HttpErrorBody,
          409: HttpErrorBody,
          422: HttpErrorBody,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const taskId = request.params.id;
      await requireTaskAccess(deps.db, principal, taskId);
      const task = await deps.db.prisma.task.findUnique({ where: { id: taskId } });
      if (!task) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
      const budget = TaskBudget.safeParse(task.budget ?? undefined);
      const checked = checkEditedPlan(deps.registry, request.body.steps, {
        ...deps.limits,
        context: deps.checkContext,
        // Like a model's plan: against what is left of the budget after the model calls already made.
        maxCostUsd:
          budget.success && budget.data?.maxCostUsd !== undefined
            ? Math.max(0, budget.data.maxCostUsd - (await modelUseOfTask(deps.db, taskId)).costUsd)
            : undefined,
        estimateStepCostUsd: deps.estimateStepCostUsd,
      });
      if (!checked.ok) {
        const { stepId, ...shape } = checked.error;
        return reply
          .code(422)
          .send({ error: { ...shape, retryable: false, ...(stepId === undefined ? {} : { stepId }) } });
      }
      // The edit is the token's; a name the body gives is kept only as a label beside it.
      const editedBy = principalRef(principal);
      const editedByLabel = request.body.editedBy ?? null;
      await sqlTransaction(deps.db, async (sql) => {
        const active = await sql.query(
          `SELECT "id"::text AS "id", "version" FROM "Plan" WHERE "taskId" = $1::uuid AND "status" = 'active'
            ORDER BY "version" DESC LIMIT 1 FOR UPDATE`,
          [taskId],
        );
        const row = active.rows[0];
        const current =
          row && typeof row['version'] === 'number'
            ? { id: String(row['id']), version: row['version'] }
            : null;
        if (!current || task.status !== 'planned') {
          throw new TandemError(
            ErrorCodes.TASK_NOT_EDITABLE,
            `task ${taskId} has no plan awaiting approval (it is ${task.status})`,
          );
        }
        const run = await sql.query(`SELECT "status" FROM "TaskRun" WHERE "taskId" = $1::uuid`, [taskId]);
        const runStatus = run.rows[0]?.['status'];
        if (runStatus !== undefined && runStatus !== 'running') {
          throw new TandemError(ErrorCodes.TASK_NOT_EDITABLE, `task ${taskId} is ${String(runStatus)}`);
        }
        const started = await sql.query(
          `SELECT s."stepKey", r."status" FROM "StepRun" r JOIN "PlanStep" s ON s."id" = r."stepId"
            WHERE s."planId" = $1::uuid AND r."status" <> ALL($2::text[]) LIMIT 1`,
          [current.id, [...NOT_STARTED]],
        );
        const first = started.rows[0];
        if (first) {
          throw new TandemError(
            ErrorCodes.TASK_NOT_EDITABLE,
            `step ${String(first['stepKey'])} of plan version ${current.version} is ${String(first['status'])}; a plan can only be edited before its steps start`,
          );
        }
        const estimatedCostUsd = checked.steps.reduce((sum, step) => sum + deps.estimateStepCostUsd(step), 0);
        const factors = {
          structural: 1,
          rejections: 0,
          invalidCalls: 0,
          stepCount: checked.steps.length,
          maxSteps: deps.limits.maxSteps,
          riskMix: riskMixOf(checked.steps.map((step) => step.tool.risk)),
          estimatedCostUsd,
          budgetUsd: budget.success ? (budget.data?.maxCostUsd ?? null) : null,
          strategySuccess: null,
        };
        await storePlanVersion(
          sql,
          { prefix: deps.prefix },
          {
            task: {
              id: task.id,
              kind: task.kind,
              agentId: task.agentId,
              request: taskRequestRef(task),
            },
            version: current.version + 1,
            origin: 'human',
            supersedes: current.id,
            editedBy,
            editedByLabel,
            steps: checked.steps,
            models: [],
            strategy: 'human-edit',
            attempts: 1,
            invalidCalls: 0,
            planningMs: 0,
            quality: { score: planQuality(factors), factors },
            estimatedCostUsd,
            causationId: null,
          },
        );
      });
      deps.kick();
      const view = await readTaskView(deps.db, taskId);
      if (!view) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
      return reply.code(200).send(view);
    },
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      config: TASK_CONTROL,
      schema: {
        params: IdParams,
        // Fastify gives an absent body as null: `curl -X POST .../cancel` with no body is fine.
        body: CancelTaskBody.nullish(),
        response: { ...AUTH_ERRORS, 202: CancelTaskResponse, 404: HttpErrorBody, 409: HttpErrorBody },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const taskId = request.params.id;
      await requireTaskAccess(deps.db, principal, taskId);
      const task = await deps.db.prisma.task.findUnique({
        where: { id: taskId },
        select: { id: true, status: true, run: { select: { status: true } } },
      });
      if (!task) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
      const finished = task.run && task.run.status !== 'running' && task.run.status !== 'replanning';
      if (finished || task.status === 'failed' || task.status === 'cancelled') {
        throw new TandemError(
          ErrorCodes.TASK_NOT_EDITABLE,
          `task ${taskId} already ended (${task.run?.status ?? task.status})`,
        );
      }
      const body = request.body ?? {};
      await sqlTransaction(deps.db, async (sql) => {
        await enqueueOutboxSql(
          sql,
          outboxCloudEvent(
            { prefix: deps.prefix, publisher: 'planner' },
            PublicSubjects.taskCancelRequested,
            {
              specversion: '1.0',
              id: randomUUID(),
              source: '/tandem/planner/http',
              type: CloudEventTypes.taskCancelRequested,
              time: new Date().toISOString(),
              datacontenttype: 'application/json',
              subject: taskId,
              data: {
                taskId,
                ...(body.reason === undefined ? {} : { reason: body.reason }),
                // The canceller is the token; a name the body gives travels only as a label.
                requestedBy: principalRef(principal),
                ...(body.requestedBy === undefined ? {} : { requestedByLabel: body.requestedBy }),
              },
            },
          ),
        );
      });
      deps.kick();
      return reply.code(202).send({ taskId, status: 'cancel-requested' });
    },
  );
}
