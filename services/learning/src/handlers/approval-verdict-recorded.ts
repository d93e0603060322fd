import { randomUUID } from 'node:crypto';
import { ApprovalVerdictRecorded } from '@tandem/contracts';
import { insertVerdictFeedback } from '@tandem/db';
import { define } from '../consumers.js';
import { verdictFeedback } from '../domain/feedback.js';

/**
 * Stores a human verdict (`approval.verdict-recorded.v1`: approval, rejection, edit, answer, expiry,
 * revert) as a `Feedback` row of kind `verdict`. Idempotent twice over: the inbox row and `Feedback`'s
 * unique (sourceEventId, kind).
 */
export const approvalVerdictRecorded = define({
  // Wire name: renaming it creates a new durable consumer.
  durable: 'learning-approval-verdict',
  event: ApprovalVerdictRecorded,
  handle: (tx, envelope) => insertVerdictFeedback(tx, { id: randomUUID(), ...verdictFeedback(envelope) }),
  async after(committed, envelope, context) {
    const stored = !committed.duplicate && committed.value;
    const verdict = envelope.data;
    if (stored) context.deps.onFeedback?.(verdict.verdict);
    context.log.info(
      { taskId: verdict.taskId, stepId: verdict.stepId, verdict: verdict.verdict, stored },
      stored ? 'verdict stored' : 'verdict already stored',
    );
  },
});
