import {
  CancelTaskBody,
  CancelTaskResponse,
  EditPlanBody,
  ErrorCodes,
  HttpErrorBody,
  PublicSubjects,
  TandemError,
  TaskView,
  taskRequestRef,
  type ToolCheckContext,
  type ToolDefinition,
} from '@tandem/contracts';
import {
  enqueueOutbox,
  firstStartedStep,
  loadPlanningTask,
  lockActivePlan,
  modelUseOfTask,
  taskAndRunStatus,
  taskRunStatus,
  transaction,
  type Db,
} from '@tandem/db';
import {
  outboxCloudEvent,
  principalRef,
  requirePrincipal,
  requireTaskAccess,
  type HttpServer,
} from '@tandem/service-kit';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { cancelRefusal, cancelRequest, NOT_STARTED, planEdit } from '../domain/plan-edit.js';
import { remainingBudgetUsd } from '../domain/planning-decisions.js';
import { editedPlanFigures } from '../domain/plan-record.js';
import { checkEditedPlan } from '../domain/planning.js';
import { storePlanVersion, type ValidatedStep } from '../plan-store.js';
import { readTaskView } from './tasks.js';

const IdParams = z.strictObject({ id: z.uuid() });
const AUTH_ERRORS = { 401: HttpErrorBody, 403: HttpErrorBody };
/**
 * Roles that may edit or cancel a task (admin always may); each route then checks that the token may
 * act on that task (`requireTaskAccess`: 404 as for a missing task when it may not).
 */
const TASK_CONTROL = { roles: ['submitter', 'approver'] } as const;

/** Dependencies of the plan routes. */
export interface PlanRoutesDeps {
  db: Db;
  prefix: string;
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
      const task = await loadPlanningTask(deps.db, taskId);
      if (!task) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
      const { budget } = task;
      const checked = checkEditedPlan(deps.registry, request.body.steps, {
        ...deps.limits,
        context: deps.checkContext,
        // Like a model's plan: against what is left of the budget after the model calls already made.
        maxCostUsd:
          budget?.maxCostUsd === undefined
            ? undefined
            : remainingBudgetUsd(budget, (await modelUseOfTask(deps.db, taskId)).costUsd),
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
      await transaction(deps.db, async (tx) => {
        const locked = await lockActivePlan(tx, taskId);
        const edit = planEdit({
          taskId,
          taskStatus: task.status,
          current: locked,
          runStatus: locked === null ? null : await taskRunStatus(tx, taskId),
          startedStep: locked === null ? null : await firstStartedStep(tx, locked.id, NOT_STARTED),
        });
        if (edit.kind === 'refused') throw edit.error;
        const { current } = edit;
        await storePlanVersion(
          tx,
          { prefix: deps.prefix },
          {
            task: { id: task.id, kind: task.kind, agentId: task.agentId, request: taskRequestRef(task) },
            version: current.version + 1,
            origin: 'human',
            supersedes: current.id,
            editedBy,
            editedByLabel,
            steps: checked.steps,
            models: [],
            figures: editedPlanFigures({
              steps: checked.steps,
              budget,
              maxSteps: deps.limits.maxSteps,
              estimateStepCostUsd: deps.estimateStepCostUsd,
            }),
            attempts: 1,
            invalidCalls: 0,
            planningMs: 0,
            causationId: null,
          },
        );
      });
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
      const task = await taskAndRunStatus(deps.db, taskId);
      if (!task) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${taskId} not found`);
      const refusal = cancelRefusal({ taskId, status: task.status, runStatus: task.runStatus });
      if (refusal !== null) throw refusal;
      const event = cancelRequest({
        id: randomUUID(),
        time: new Date(),
        taskId,
        body: request.body ?? {},
        requestedBy: principalRef(principal),
      });
      await transaction(deps.db, (tx) =>
        enqueueOutbox(
          tx,
          outboxCloudEvent(
            { prefix: deps.prefix, publisher: 'planner' },
            PublicSubjects.taskCancelRequested,
            event,
          ),
        ),
      );
      return reply.code(202).send({ taskId, status: 'cancel-requested' });
    },
  );
}
