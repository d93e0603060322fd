import { ErrorShape, JsonValue, TaskBudget, TaskModelPreference } from '@tandem/contracts';
import { loadRunState, parseStored, type DbOrTx } from '@tandem/db';
import { z } from 'zod';
import type { StepState } from './domain/progress.js';
import type { RunState } from './domain/run-state.js';

/** A step's stored result: its value and the program's output (`run_code`). */
export const StoredStepResult = z.object({
  value: JsonValue.nullable().default(null),
  stdout: z.string().default(''),
  stderr: z.string().default(''),
});
/** A step's stored arguments (planned or edited by an approver). */
export const StoredArguments = z.record(z.string(), JsonValue);

/**
 * Loads a task's run state and parses what it stores: a step whose arguments, result or error do not
 * match their schema, or a task whose budget or model preference does not, is an error (DB.ROW_INVALID),
 * never an empty default. Null when the task has no run or the run no plan.
 */
export async function loadState(source: DbOrTx, taskId: string): Promise<RunState | null> {
  const row = await loadRunState(source, taskId);
  if (row === null) return null;
  const steps: StepState[] = [];
  const dependsOn = new Map<string, string[]>();
  for (const step of row.steps) {
    steps.push({
      stepId: step.stepId,
      key: step.key,
      index: step.index,
      tool: step.tool,
      arguments: parseStored(StoredArguments, step.arguments, `StepRun.arguments of step ${step.stepId}`),
      status: step.status ?? 'waiting',
      result: parseStored(StoredStepResult.nullable(), step.result, `StepRun.result of step ${step.stepId}`),
      error: parseStored(ErrorShape.nullable(), step.error, `StepRun.error of step ${step.stepId}`),
      approval:
        step.approvalStatus === null
          ? null
          : { status: step.approvalStatus, argumentsHash: step.argumentsHash },
    });
    dependsOn.set(step.key, step.dependsOn);
  }
  const budget = parseStored(TaskBudget.nullable(), row.task.budget, `Task.budget of task ${taskId}`);
  const preferences = parseStored(
    TaskModelPreference.nullable(),
    row.task.preferences,
    `Task.preferences of task ${taskId}`,
  );
  return {
    run: row.run,
    task: {
      id: row.task.id,
      goal: row.task.goal,
      input: parseStored(JsonValue.nullable(), row.task.input, `Task.input of task ${taskId}`),
      kind: row.task.kind,
      agentId: row.task.agentId,
      source: row.task.source,
      externalId: row.task.externalId,
      deadline: row.task.deadline,
    },
    plan: row.plan,
    steps,
    dependsOn,
    budget: budget ?? undefined,
    preferences: preferences ?? undefined,
  };
}
