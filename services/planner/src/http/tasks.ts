import { randomUUID } from 'node:crypto';
import {
  CreateTaskBody,
  CreateTaskResponse,
  ErrorCodes,
  HttpErrorBody,
  TandemError,
  TaskView,
  httpTaskExternalId,
  httpTaskKey,
  type TaskStepView,
} from '@tandem/contracts';
import { readStoredTaskView, type Db } from '@tandem/db';
import {
  mayActAsAgent,
  principalRef,
  requirePrincipal,
  requireTaskAccess,
  type HttpServer,
} from '@tandem/service-kit';
import { z } from 'zod';
import { HTTP_SOURCE, acceptTask } from '../tasks.js';

const IdParams = z.strictObject({ id: z.uuid() });
const IdempotencyHeaders = z.looseObject({ 'idempotency-key': z.string().min(1).max(200).optional() });

/** Reads a task with its latest plan, step states and outcome (planner and executor rows). */
export async function readTaskView(db: Db, taskId: string): Promise<TaskView | null> {
  const task = await readStoredTaskView(db, taskId);
  if (!task) return null;
  const { plan } = task;
  const steps: TaskStepView[] = (plan?.steps ?? []).map((step) => ({
    id: step.id,
    key: step.stepKey,
    index: step.index,
    tool: step.tool,
    arguments: step.arguments,
    riskClass: step.riskClass,
    dependsOn: step.dependsOn,
    rationale: step.rationale,
    status: step.run?.status ?? 'waiting',
    result: step.run?.result ?? null,
    error: step.run?.error ?? null,
  }));
  // The run's state once the executor has one; a state the view does not know shows as failed.
  const status = TaskView.shape.status.safeParse(task.run ? task.run.status : task.status);
  return TaskView.parse({
    taskId: task.id,
    status: status.success ? status.data : 'failed',
    goal: task.goal,
    kind: task.kind,
    agentId: task.agentId,
    // An HTTP task shows the key its client sent, without the token scope it is stored under.
    request: {
      source: task.source,
      id: task.source === HTTP_SOURCE ? httpTaskKey(task.externalId).key : task.externalId,
    },
    createdAt: task.createdAt.toISOString(),
    deadline: task.deadline?.toISOString() ?? null,
    plan: plan
      ? {
          id: plan.id,
          version: plan.version,
          origin: plan.origin,
          editedBy: plan.editedBy,
          editedByLabel: plan.editedByLabel,
          qualityScore: plan.qualityScore,
          steps,
        }
      : null,
    result: task.run?.result ?? null,
    error: task.run?.error ?? task.error,
  });
}

/**
 * `POST /v1/tasks` (submitter tokens, for their own agents; admin for any) and `GET /v1/tasks/:id` (a
 * token that may act on the task, see `mayActOnTask`; any other gets the 404 of a missing task).
 */
export function registerTaskRoutes(
  app: HttpServer,
  deps: { db: Db; prefix: string; onAccepted?: (created: boolean) => void },
): void {
  app.post(
    '/v1/tasks',
    {
      config: { roles: ['submitter'] },
      schema: {
        body: CreateTaskBody,
        headers: IdempotencyHeaders,
        response: {
          202: CreateTaskResponse,
          400: HttpErrorBody,
          401: HttpErrorBody,
          403: HttpErrorBody,
          409: HttpErrorBody,
        },
      },
    },
    async (request, reply) => {
      const principal = requirePrincipal(request);
      const agentId = request.body.agentId;
      if (agentId !== undefined && !mayActAsAgent(principal, agentId)) {
        throw new TandemError(
          ErrorCodes.AUTH_AGENT_NOT_ALLOWED,
          `token "${principal.name}" may not submit tasks for agent "${agentId}"`,
        );
      }
      const key = request.headers['idempotency-key'];
      const result = await acceptTask(
        deps.db,
        {
          source: HTTP_SOURCE,
          // Keys are scoped per token: the same key from another token is another task.
          externalId: httpTaskExternalId(principal.tokenId, key ?? `auto:${randomUUID()}`),
          request: { idempotencyKey: key ?? null, tokenId: principal.tokenId },
          data: request.body,
          submittedBy: principalRef(principal),
        },
        { prefix: deps.prefix, causationId: null },
      );
      deps.onAccepted?.(result.created);
      return reply.code(202).send({ taskId: result.taskId });
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        params: IdParams,
        response: { 200: TaskView, 401: HttpErrorBody, 403: HttpErrorBody, 404: HttpErrorBody },
      },
    },
    async (request) => {
      await requireTaskAccess(deps.db, requirePrincipal(request), request.params.id);
      const view = await readTaskView(deps.db, request.params.id);
      if (!view) throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${request.params.id} not found`);
      return view;
    },
  );
}
