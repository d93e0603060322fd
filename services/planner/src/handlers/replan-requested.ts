import {
  ErrorCodes,
  JsonValue,
  TandemError,
  taskRequestRef,
  type Envelope,
  type ErrorShape,
  type EventData,
  type TaskReplanRequested,
} from '@tandem/contracts';
import { enqueueOutboxSql, markProcessedSql, poolSql, sqlTransaction, type Sql } from '@tandem/db';
import type { Log } from '@tandem/service-kit';
import { initialMessages, type ChatMessage } from '../domain/planning.js';
import { fetchPatterns } from '../patterns.js';
import { planWithModel } from '../planning-loop.js';
import {
  alreadyProcessed,
  holdPlanningLease,
  loadPlanningTask,
  markProcessedAlone,
  planFailedMessage,
  storeModelPlan,
  type PlanningDeps,
} from './task-accepted.js';

/** Consumer name of the re-planning handler (wire name: renaming it creates a new durable consumer). */
export const REPLAN_CONSUMER = 'planner-replan';

const MAX_CONTEXT_CHARS = 4000;

/** The message that tells the planning model what went wrong with the previous plan. */
export function replanMessage(data: EventData<typeof TaskReplanRequested>): ChatMessage {
  const completed = JSON.stringify(data.completedSteps);
  return {
    role: 'user',
    content: [
      `Plan version ${data.version} failed at step ${data.failedStep.key} (${data.failedStep.tool}): ${data.failedStep.error.code}: ${data.failedStep.error.message.slice(0, 1500)}`,
      `Steps that completed before it, with their values: ${completed.length > MAX_CONTEXT_CHARS ? `${completed.slice(0, MAX_CONTEXT_CHARS)}...` : completed}`,
      'Make a new, complete plan that reaches the goal without repeating the failure. Steps are numbered s1, s2, ... again.',
    ].join('\n'),
  };
}

async function planStatus(sql: Sql, planId: string): Promise<{ status: string; version: number } | null> {
  const result = await sql.query(`SELECT "status", "version" FROM "Plan" WHERE "id" = $1::uuid`, [planId]);
  const row = result.rows[0];
  if (!row || typeof row['status'] !== 'string' || typeof row['version'] !== 'number') return null;
  return { status: row['status'], version: row['version'] };
}

/**
 * Makes the one new plan the executor asks for after a step failed for good: the model sees the failure
 * and what already completed; the new version supersedes the failed one, or `plan.failed` ends the task.
 */
export async function handleReplanRequested(
  deps: PlanningDeps,
  envelope: Envelope<EventData<typeof TaskReplanRequested>>,
  context: { messageId: string; deliveryCount: number; log: Log },
): Promise<void> {
  const { db } = deps;
  const data = envelope.data;
  if (await alreadyProcessed(db, REPLAN_CONSUMER, context.messageId)) return;
  const task = await loadPlanningTask(db, data.taskId);
  if (!task)
    throw new TandemError(ErrorCodes.TASK_NOT_FOUND, `task ${data.taskId} does not exist`, {
      retryable: true,
    });
  const current = await planStatus(poolSql(db), data.planId);
  if (task.status === 'cancelled' || !current || current.status !== 'active') {
    await markProcessedAlone(db, REPLAN_CONSUMER, context.messageId);
    return;
  }
  const taskRef = { id: task.id, kind: task.kind, agentId: task.agentId, request: taskRequestRef(task) };
  const version = current.version + 1;
  const releaseLease = holdPlanningLease(deps, task.id);
  try {
    const started = Date.now();
    const { patterns } = await fetchPatterns(
      {
        request: deps.request,
        prefix: deps.prefix,
        timeoutMs: deps.limits.learningTimeoutMs,
        log: context.log,
      },
      { kind: task.kind, agentId: task.agentId, limit: 5 },
    );
    const input = JsonValue.safeParse(task.input);
    const messages: ChatMessage[] = [
      ...initialMessages({
        goal: task.goal,
        input: input.success && input.data !== null ? input.data : undefined,
        kind: task.kind,
        patterns,
      }),
      replanMessage(data),
    ];
    const result = await planWithModel(
      { ...deps, log: context.log },
      {
        taskId: task.id,
        messages,
        keyPrefix: `plan:${task.id}:v${version}`,
        budget: task.budget,
        preference: task.preferences,
        deadline: task.deadline,
        mayRetry: context.deliveryCount < deps.limits.maxDeliver,
      },
    );
    if (result.kind === 'retry')
      // The code is the wire shape's string: fromShape keeps it when declared (INTERNAL.ERROR otherwise).
      throw TandemError.fromShape({ ...result.error, retryable: true }, { cause: result.cause });
    if (result.kind === 'cancelled') {
      await markProcessedAlone(db, REPLAN_CONSUMER, context.messageId);
      return;
    }
    const planningMs = Date.now() - started;
    if (result.kind === 'planned') {
      const stored = await sqlTransaction(db, async (sql) => {
        if (!(await markProcessedSql(sql, REPLAN_CONSUMER, context.messageId))) return null;
        const still = await planStatus(sql, data.planId);
        if (still?.status !== 'active') return null;
        return storeModelPlan(deps, sql, {
          task: taskRef,
          budget: task.budget,
          version,
          origin: 'replan',
          supersedes: data.planId,
          steps: result.steps,
          attempts: result.attempts,
          invalidCalls: result.invalidCalls,
          models: result.models,
          patterns,
          planningMs,
          causationId: envelope.id,
        });
      });
      deps.kick();
      if (stored) {
        deps.onPlanned?.('proposed', {
          repairs: result.attempts - 1,
          ms: planningMs,
          quality: stored.quality,
        });
        context.log.info({ taskId: task.id, planId: stored.planId, version }, 're-plan proposed');
      }
      return;
    }
    const error: ErrorShape = {
      ...result.error,
      message: `re-planning after step ${data.failedStep.key} failed (${data.failedStep.error.code}) did not succeed: ${result.error.message}`,
      retryable: false,
    };
    await sqlTransaction(db, async (sql) => {
      if (!(await markProcessedSql(sql, REPLAN_CONSUMER, context.messageId))) return;
      await enqueueOutboxSql(sql, planFailedMessage(deps, taskRef, error, envelope.id));
    });
    deps.kick();
    deps.onPlanned?.('failed', { repairs: Math.max(0, result.attempts - 1), ms: planningMs, quality: null });
    context.log.warn({ taskId: task.id, code: error.code }, 're-planning failed');
  } finally {
    releaseLease();
  }
}
