import { toErrorShape } from '@tandem/contracts';
import { claimStep, transaction } from '@tandem/db';
import { resolvedArguments } from '../domain/advance.js';
import { finishStepInTx, type StepOutcome } from '../outcomes.js';
import type { StepRunner } from './step-runner.js';

/**
 * `http_request`: the step is claimed (`approved` -> `running`, an attempt counted), the request is sent
 * outside any transaction, and the step ends with the response or the typed failure (never retried: the
 * request may have had its effect).
 */
export const httpRequestRunner: StepRunner = {
  tool: 'http_request',
  async start(deps, state, step, log) {
    const args = resolvedArguments(state.steps, step);
    const claimed = await transaction(deps.db, (tx) =>
      claimStep(tx, {
        planId: state.plan.id,
        stepId: step.stepId,
        from: 'approved',
        to: 'running',
        startRun: true,
      }),
    );
    if (!claimed) return false;
    let outcome: StepOutcome;
    try {
      outcome = { status: 'completed', value: await deps.http.run({ stepId: step.stepId, arguments: args }) };
    } catch (error) {
      outcome = { status: 'failed', error: { ...toErrorShape(error), retryable: false } };
    }
    await transaction(deps.db, (tx) => finishStepInTx(tx, deps, step, state.task.id, ['running'], outcome));
    log.info({ taskId: state.task.id, step: step.key, status: outcome.status }, 'http request step finished');
    return true;
  },
};
