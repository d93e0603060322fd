import { StepFinished, type Envelope, type EventData } from '@tandem/contracts';
import {
  enqueueOutbox,
  hasRequestAwaitingValues,
  judgeApprovalWithValues,
  lockApprovalTask,
  requestsAwaitingValues,
  type OutboxMessage,
  type Tx,
} from '@tandem/db';
import { writeAudit } from '../audit.js';
import { define, type ApprovalConsumerDeps } from '../consumers.js';
import { NEW_TRUST } from '../domain/trust.js';
import {
  agentVerified,
  judgeWithValues,
  resolveStep,
  type StepResults,
  type TaskContext,
  type ValuesJudgement,
} from '../domain/step-judgement.js';
import { decidedMessage, requestedMessage } from '../messages.js';
import { queueApproverWebhooks } from '../notify.js';
import {
  completedResults,
  findRequest,
  readTaskContext,
  requestRowOf,
  storedPlan,
  type RequestRow,
} from '../requests.js';
import { loadTrust } from '../trust-store.js';

/** Consumer name (wire name: renaming it creates a new durable consumer). */
export const STEP_FINISHED_CONSUMER = 'approval-step-finished';

/** What the step's transaction did. */
interface ValuesResult {
  outcomes: Array<ValuesJudgement['outcome']>;
  /** Webhook deliveries queued. */
  queued: number;
}

const NOTHING: ValuesResult = { outcomes: [], queued: 0 };

/**
 * `step.finished`: a completed step frees every request of its task that waits for values (a step whose
 * arguments reference earlier results) and whose references have all completed: each is judged with the
 * resolved arguments exactly like a model's step (domain/step-judgement.ts `judgeWithValues`): approved
 * by policy, rejected, or a request for a human who sees the values. The decision is bound to the
 * resolved arguments, which the executor resolves the same way from the same rows. Under the task's
 * lock; each request moves out of `awaiting-values` once.
 */
export const stepFinished = define({
  durable: STEP_FINISHED_CONSUMER,
  event: StepFinished,
  // Most steps free nothing: one indexed read, and no transaction or inbox row for them.
  async ignore(envelope, context) {
    const event = envelope.data;
    return event.status !== 'completed' || !(await hasRequestAwaitingValues(context.deps.db, event.taskId));
  },
  async handle(tx, envelope, context) {
    const event = envelope.data;
    if (event.status !== 'completed') return NOTHING;
    if (!(await hasRequestAwaitingValues(tx, event.taskId))) return NOTHING;
    return judgeWaitingRequests(tx, context.deps, envelope);
  },
  async after(committed, envelope, context) {
    if (committed.duplicate) return;
    const { outcomes, queued } = committed.value;
    if (queued > 0) context.deps.kickDeliveries();
    for (const outcome of outcomes) context.deps.onOutcome?.(outcome);
    if (outcomes.length > 0)
      context.log.info(
        { taskId: envelope.data.taskId, judged: outcomes },
        'steps judged again with their values',
      );
  },
});

/** A stored plan with the results of its completed steps. */
interface PlanFacts {
  plan: Awaited<ReturnType<typeof storedPlan>>;
  results: StepResults;
}

/** Loads what the task's waiting requests are judged against, decides each (domain/), writes the effects. */
async function judgeWaitingRequests(
  tx: Tx,
  deps: ApprovalConsumerDeps,
  envelope: Envelope<EventData<typeof StepFinished>>,
): Promise<ValuesResult> {
  const taskId = envelope.data.taskId;
  await lockApprovalTask(tx, taskId);
  const requests = (await requestsAwaitingValues(tx, taskId)).map(requestRowOf);
  if (requests.length === 0) return NOTHING;
  const task = await readTaskContext(tx, taskId);
  // Read once per plan version.
  const plans = new Map<string, PlanFacts>();
  const result: ValuesResult = { outcomes: [], queued: 0 };
  const messages: OutboxMessage[] = [];
  for (const request of requests) {
    let facts = plans.get(request.planId);
    if (facts === undefined) {
      facts = {
        plan: await storedPlan(tx, request.planId),
        results: await completedResults(tx, request.planId),
      };
      plans.set(request.planId, facts);
    }
    const resolved = resolveStep(request, facts.plan.steps, facts.results);
    if (resolved === null || request.stepId === null) continue;
    const judged = await judge(tx, deps, { ...request, stepId: request.stepId }, resolved, facts, task);
    result.outcomes.push(judged.outcome);
    result.queued += judged.queued;
    messages.push(...judged.messages);
  }
  await enqueueOutbox(tx, messages);
  return result;
}

async function judge(
  tx: Tx,
  deps: ApprovalConsumerDeps,
  request: RequestRow & { stepId: string },
  resolved: NonNullable<ReturnType<typeof resolveStep>>,
  facts: PlanFacts,
  task: TaskContext,
): Promise<{ outcome: ValuesJudgement['outcome']; messages: OutboxMessage[]; queued: number }> {
  const policy = deps.policy();
  const verified = agentVerified(request.agentId, task, policy.policy);
  const trust =
    verified && request.agentId !== null
      ? ((await loadTrust(tx, request.agentId, [resolved.actionClass])).get(resolved.actionClass) ??
        NEW_TRUST)
      : null;
  const judgement = judgeWithValues({
    request,
    resolved,
    kind: facts.plan.kind,
    task,
    trust,
    verified,
    policy,
    autoApprove: deps.autoApprove,
    checkContext: deps.checkContext,
  });
  await judgeApprovalWithValues(tx, {
    id: request.id,
    status: judgement.status,
    resolvedArguments: judgement.resolvedArguments,
    argumentsHash: judgement.argumentsHash,
    riskLevel: judgement.decision.risk.level,
    riskReasons: judgement.decision.risk.reasons,
    basis: judgement.decision.basis,
    reason: judgement.decision.reason,
    trustAtDecision: judgement.trustAtDecision,
    actionClass: judgement.actionClass,
    decidedBy: judgement.decidedBy,
    human: judgement.human,
  });
  await writeAudit(tx, [judgement.audit]);
  const row = (await findRequest(tx, { id: request.id })) ?? request;
  if (judgement.outcome === 'pending') {
    const queued = await queueApproverWebhooks(
      tx,
      deps.endpoints(),
      'approval.requested',
      row,
      { arguments: judgement.resolvedArguments },
      'requested:values',
    );
    return { outcome: 'pending', messages: [requestedMessage(deps.prefix, row)], queued };
  }
  return {
    outcome: judgement.outcome,
    messages: [
      decidedMessage(
        deps.prefix,
        { ...row, stepId: request.stepId },
        {
          decision: judgement.status === 'approved' ? 'approved' : 'rejected',
          mode: 'auto',
          decidedBy: judgement.decidedBy,
          reason: judgement.decision.reason,
        },
      ),
    ],
    queued: 0,
  };
}
