import {
  argumentsHash,
  needsResolvedApproval,
  referencedStepKeysDeep,
  resolveStepReferencesDeep,
  toolRegistry,
  validateToolArguments,
  JsonValue,
  type ApprovalsDecided,
  type EventData,
  type PlannedStep,
  type PlanProposed,
  type RiskClass,
  type ToolCheckContext,
} from '@tandem/contracts';
import { z } from 'zod';
import { actionClassOf } from './action-class.js';
import type { AuditEntry } from './audit.js';
import { evaluateStep, type StepDecision } from './evaluate.js';
import type { OnExpiry, Policy } from './policy.js';
import { ASK_HUMAN_TOOL, parseQuestion } from './question.js';
import type { RequestRow } from './request.js';
import { rejudge, type Rejudged } from './rejudge.js';
import { assessRisk, type RiskAssessment } from './risk.js';
import { NEW_TRUST, effectiveScore, type TrustState } from './trust.js';
import { raiseByValues } from './value-risk.js';

/*
 * How approval judges a step, wherever the step comes from: a plan that just arrived (planRequests), a
 * step whose references now have values (judgeWithValues), or an approver's edit (judgeChanged). Pure:
 * the handlers load what is named here, call these, and write what comes back.
 */

/** The policy with what every decision records about it. */
export interface PolicyInUse {
  policy: Policy;
  version: string;
  hash: string;
}

/** The task as submitted: context for risk, and who submitted it (whether it may act as its agent). */
export interface TaskContext {
  goal: string;
  input: JsonValue | null;
  submittedBy: string | null;
  source: string | null;
}

type PlanData = EventData<typeof PlanProposed>;

/** What became of the requests of one step (for metrics). */
export type StepOutcome = 'auto-approved' | 'auto-rejected' | 'pending' | 'superseded' | 'awaiting-values';

/**
 * Whether the task may use its agent's trust: submitted over HTTP with a token (the planner refuses a
 * token that may not act as the agent), or as a CloudEvent whose source the planner PROVED (its
 * `tandemsig` verified: `submittedBy` is `source:<source>`) and that the policy lists for the agent. A
 * source written into an unsigned event is a claim, never proof.
 */
export function agentVerified(
  agentId: string | null,
  task: { submittedBy: string | null; source: string | null },
  policy: Policy,
): boolean {
  if (agentId === null) return false;
  if (task.submittedBy !== null && task.submittedBy.startsWith('token:')) return true;
  if (task.source === null || task.submittedBy !== `source:${task.source}`) return false;
  const sources = policy.agents?.[agentId]?.sources ?? [];
  return sources.includes(task.source);
}

/** The decision for one step, with questions and the TANDEM_AUTO_APPROVE bound applied. */
export type Decided = StepDecision & {
  kind: 'approval' | 'question';
  question: string | null;
  choices: string[] | null;
};

/**
 * Applies what `evaluateStep` leaves to the service: an `ask_human` step is a question for a human (or
 * rejected when it holds none), and an automatic approval by trust of a risk class outside
 * TANDEM_AUTO_APPROVE goes to a human (an allow rule still approves).
 */
export function decideStep(
  decision: StepDecision,
  step: Pick<PlannedStep, 'tool' | 'arguments' | 'riskClass'>,
  autoApprove: ReadonlySet<RiskClass>,
): Decided {
  if (step.tool === ASK_HUMAN_TOOL && decision.outcome !== 'rejected') {
    const asked = parseQuestion(step.arguments);
    if (asked === null) {
      return {
        ...decision,
        outcome: 'rejected',
        basis: 'question:invalid',
        reason: `${ASK_HUMAN_TOOL} arguments hold no question (a non-empty string) or choices are not strings`,
        kind: 'question',
        question: null,
        choices: null,
      };
    }
    return {
      ...decision,
      outcome: 'needs-human',
      basis: 'question',
      kind: 'question',
      question: asked.question,
      choices: asked.choices,
    };
  }
  if (
    decision.outcome === 'auto-approved' &&
    !decision.basis.startsWith('rule:') &&
    !autoApprove.has(step.riskClass)
  ) {
    return {
      ...decision,
      outcome: 'needs-human',
      basis: 'config:auto-approve',
      reason: `risk class ${step.riskClass} is not in TANDEM_AUTO_APPROVE: a human decides`,
      kind: 'approval',
      question: null,
      choices: null,
    };
  }
  return {
    ...decision,
    kind: step.tool === ASK_HUMAN_TOOL ? 'question' : 'approval',
    question: null,
    choices: null,
  };
}

/** A request to create for a step of an arriving plan. */
export interface PlannedRequest {
  id: string;
  taskId: string;
  planId: string;
  stepId: string;
  agentId: string | null;
  tool: string;
  riskClass: RiskClass;
  riskLevel: RiskAssessment['level'];
  riskReasons: RiskAssessment['reasons'];
  trustAtDecision: number | null;
  actionClass: string;
  basis: string;
  kind: 'approval' | 'question';
  question: string | null;
  mode: 'auto' | 'human';
  status: 'approved' | 'rejected' | 'pending' | 'awaiting-values';
  reason: string;
  deadline: Date | null;
  approverGroup: string | null;
  onExpiry: OnExpiry | null;
  decidedAt: Date | null;
  decidedBy: string | null;
  argumentsHash: string;
  createdAt: Date;
}

/** What an arriving plan's steps come to. */
export interface PlanRequests {
  /** The requests to insert (steps that already have one are skipped). */
  requests: PlannedRequest[];
  /** One audit row per request. */
  audits: AuditEntry[];
  /** Per request, what became of it. */
  outcomes: StepOutcome[];
  /** The decisions made at once, for one `approval.batch-decided`. */
  automatic: EventData<typeof ApprovalsDecided>['decisions'];
  /** The requests that wait for a human, as rows, with the arguments their approvers are shown. */
  pending: Array<{ row: RequestRow; arguments: PlannedStep['arguments'] }>;
}

/** The classes an arriving plan's steps are trusted in (what to load before {@link planRequests}). */
export function planActionClasses(plan: Pick<PlanData, 'steps'>): string[] {
  return plan.steps.map((step) => actionClassOf(step));
}

/**
 * Decides every step of an arriving plan that has no request yet: risk from the rules (or `risks`, a
 * model's raised opinion), the agent's trust (when the submitter may act as it), the policy and
 * TANDEM_AUTO_APPROVE. A step built from earlier results waits for its values (a deny still rejects it
 * now): nothing is approved, or shown to a human, on the template alone.
 */
export function planRequests(input: {
  plan: PlanData;
  task: TaskContext;
  existingSteps: ReadonlySet<string>;
  /** The agent's trust per action class (classes without a row absent). */
  trust: ReadonlyMap<string, TrustState>;
  policy: PolicyInUse;
  autoApprove: ReadonlySet<RiskClass>;
  risks: ReadonlyMap<string, RiskAssessment>;
  now: Date;
  newId: () => string;
}): PlanRequests {
  const { plan, task, policy } = input;
  const verified = agentVerified(plan.agentId, task, policy.policy);
  const result: PlanRequests = { requests: [], audits: [], outcomes: [], automatic: [], pending: [] };
  const nowMs = input.now.getTime();
  for (const step of plan.steps) {
    if (input.existingSteps.has(step.stepId)) continue;
    const actionClass = actionClassOf(step);
    const agentTrust = verified ? (input.trust.get(actionClass) ?? NEW_TRUST) : null;
    const risk = input.risks.get(step.stepId);
    const decision = decideStep(
      evaluateStep({
        step,
        plan: plan.steps,
        task: { kind: plan.kind, goal: task.goal, input: task.input, agentId: plan.agentId },
        agentVerified: verified,
        trust: agentTrust,
        policy: policy.policy,
        ...(risk === undefined ? {} : { risk }),
      }),
      step,
      input.autoApprove,
    );
    const approvalId = input.newId();
    const deferred = decision.outcome !== 'rejected' && needsResolvedApproval(step.tool, step.arguments);
    const human = !deferred && decision.outcome === 'needs-human';
    const status = deferred
      ? 'awaiting-values'
      : decision.outcome === 'auto-approved'
        ? 'approved'
        : decision.outcome === 'rejected'
          ? 'rejected'
          : 'pending';
    const decidedBy = human || deferred ? null : `policy:${decision.basis}`;
    const deadline = human ? new Date(nowMs + decision.deadlineMs) : null;
    const trustScore = agentTrust === null ? null : effectiveScore(agentTrust);
    const request: PlannedRequest = {
      id: approvalId,
      taskId: plan.taskId,
      planId: plan.planId,
      stepId: step.stepId,
      agentId: plan.agentId,
      tool: step.tool,
      riskClass: step.riskClass,
      riskLevel: decision.risk.level,
      riskReasons: decision.risk.reasons,
      trustAtDecision: trustScore,
      actionClass,
      basis: decision.basis,
      kind: decision.kind,
      question: decision.question,
      mode: human ? 'human' : 'auto',
      status,
      reason: decision.reason,
      deadline,
      approverGroup: human ? decision.group : null,
      onExpiry: human ? decision.onExpiry : null,
      decidedAt: human || deferred ? null : input.now,
      decidedBy,
      argumentsHash: argumentsHash(step.arguments),
      createdAt: input.now,
    };
    result.requests.push(request);
    result.audits.push({
      action: human
        ? 'approval.requested'
        : deferred
          ? 'approval.awaiting-values'
          : `approval.auto-${status}`,
      subject: { type: 'step', id: step.stepId },
      actor: decidedBy,
      reason: decision.reason,
      data: {
        approvalId,
        taskId: plan.taskId,
        planId: plan.planId,
        tool: step.tool,
        riskClass: step.riskClass,
        riskLevel: decision.risk.level,
        riskReasons: decision.risk.reasons,
        actionClass,
        basis: decision.basis,
        trust: trustScore,
        agentVerified: verified,
        policyVersion: policy.version,
        policyHash: policy.hash,
        kind: decision.kind,
        ...(decision.question === null ? {} : { question: decision.question, choices: decision.choices }),
        ...(deadline === null
          ? {}
          : { deadline: deadline.toISOString(), group: decision.group, onExpiry: decision.onExpiry }),
      },
    });
    if (deferred) {
      result.outcomes.push('awaiting-values');
      continue;
    }
    if (!human) {
      result.automatic.push({
        approvalId,
        stepId: step.stepId,
        decision: status === 'approved' ? 'approved' : 'rejected',
        decidedBy,
        reason: decision.reason,
      });
      result.outcomes.push(status === 'approved' ? 'auto-approved' : 'auto-rejected');
      continue;
    }
    result.pending.push({
      row: {
        ...request,
        decidedAt: null,
        decidedBy: null,
        editedArguments: null,
        resolvedArguments: null,
        answer: null,
        escalationLevel: 0,
        remindedAt: null,
        revertedAt: null,
      },
      arguments: step.arguments,
    });
    result.outcomes.push('pending');
  }
  return result;
}

const ArgumentsRecord = z.record(z.string(), JsonValue);

/** The values references resolve to, by step key (the results of a plan's completed steps). */
export type StepResults = ReadonlyMap<string, { value: JsonValue; stdout: string }>;

/** A step whose every reference has a value now, with the values resolved into its arguments. */
export interface ResolvedStep {
  /** The step as planned. */
  step: PlannedStep;
  /** The step with the resolved arguments. */
  resolved: PlannedStep;
  /** The plan with the resolved step in place of the planned one. */
  plan: PlannedStep[];
  actionClass: string;
}

/**
 * The request's step with its references resolved from the results of completed steps, or null while
 * one of them has not completed (or the step is not in the plan).
 */
export function resolveStep(
  request: Pick<RequestRow, 'stepId'>,
  plan: readonly PlannedStep[],
  results: StepResults,
): ResolvedStep | null {
  if (request.stepId === null) return null;
  const step = plan.find((candidate) => candidate.stepId === request.stepId);
  if (!step) return null;
  if (!referencedStepKeysDeep(step.arguments).every((key) => results.has(key))) return null;
  const parsed = ArgumentsRecord.safeParse(resolveStepReferencesDeep(step.arguments, results));
  const resolved: PlannedStep = { ...step, arguments: parsed.success ? parsed.data : {} };
  return {
    step,
    resolved,
    plan: plan.map((candidate) => (candidate.stepId === step.stepId ? resolved : candidate)),
    actionClass: actionClassOf(resolved),
  };
}

/** The judgement of a request that waited for values: what to store, say and audit. */
export interface ValuesJudgement {
  outcome: 'auto-approved' | 'auto-rejected' | 'pending';
  status: 'approved' | 'rejected' | 'pending';
  resolvedArguments: PlannedStep['arguments'];
  argumentsHash: string;
  decision: StepDecision;
  trustAtDecision: number | null;
  actionClass: string;
  decidedBy: string | null;
  /** For a human: the group, expiry action and deadline. */
  human: { approverGroup: string | null; onExpiry: OnExpiry; deadlineMs: number } | null;
  audit: AuditEntry;
}

/**
 * Judges a step with its values exactly like a model's step (validation, risk rules plus the values'
 * own rules, the agent's trust when the submitter may act as it, the policy): approved by policy,
 * rejected, or a request for a human who sees the values. Values that make the call invalid (a path out
 * of the workspace, a refused URL) reject it. The decision is bound to the resolved arguments.
 */
export function judgeWithValues(input: {
  request: Pick<RequestRow, 'id' | 'taskId' | 'planId' | 'agentId'> & { stepId: string };
  resolved: ResolvedStep;
  kind: string;
  task: TaskContext;
  /** The agent's trust in the resolved step's class; null when the submitter may not act as it. */
  trust: TrustState | null;
  verified: boolean;
  policy: PolicyInUse;
  autoApprove: ReadonlySet<RiskClass>;
  checkContext: ToolCheckContext;
}): ValuesJudgement {
  const { request, resolved, task, trust, policy } = input;
  const taskFacts = { kind: input.kind, goal: task.goal, input: task.input, agentId: request.agentId };
  const risk = raiseByValues(
    assessRisk(resolved.resolved, { plan: resolved.plan, task: taskFacts }),
    resolved.resolved,
    resolved.step.arguments,
    resolved.resolved.arguments,
  );
  const checked = validateToolArguments(
    toolRegistry,
    resolved.step.tool,
    resolved.resolved.arguments,
    undefined,
    input.checkContext,
  );
  const evaluated = decideStep(
    evaluateStep({
      step: resolved.resolved,
      plan: resolved.plan,
      task: taskFacts,
      agentVerified: input.verified,
      trust,
      policy: policy.policy,
      risk,
    }),
    resolved.resolved,
    input.autoApprove,
  );
  const decision: StepDecision = checked.ok
    ? evaluated
    : {
        ...evaluated,
        outcome: 'rejected',
        basis: `values:${checked.error.code}`,
        reason: `the call with its values is invalid: ${checked.error.message}`,
      };
  const human = decision.outcome === 'needs-human';
  const status = human ? 'pending' : decision.outcome === 'auto-approved' ? 'approved' : 'rejected';
  const decidedBy = human ? null : `policy:${decision.basis}`;
  const trustScore = trust === null ? null : effectiveScore(trust);
  return {
    outcome: human ? 'pending' : status === 'approved' ? 'auto-approved' : 'auto-rejected',
    status,
    resolvedArguments: resolved.resolved.arguments,
    argumentsHash: argumentsHash(resolved.resolved.arguments),
    decision,
    trustAtDecision: trustScore,
    actionClass: resolved.actionClass,
    decidedBy,
    human: human
      ? { approverGroup: decision.group, onExpiry: decision.onExpiry, deadlineMs: decision.deadlineMs }
      : null,
    audit: {
      action: human ? 'approval.requested' : `approval.auto-${status}`,
      subject: { type: 'step', id: request.stepId },
      actor: decidedBy,
      reason: decision.reason,
      data: {
        approvalId: request.id,
        taskId: request.taskId,
        planId: request.planId,
        tool: resolved.step.tool,
        withValues: true,
        resolvedArguments: resolved.resolved.arguments,
        riskLevel: decision.risk.level,
        riskReasons: decision.risk.reasons,
        actionClass: resolved.actionClass,
        basis: decision.basis,
        trust: trustScore,
        agentVerified: input.verified,
        policyVersion: policy.version,
        policyHash: policy.hash,
      },
    },
  };
}

/**
 * Judges a request's step with changed arguments against the step as planned, both now and in the same
 * context (the stored plan, the task), as an agent without history: trust never makes a changed step
 * pass where the step as planned would not have.
 */
export function judgeChanged(input: {
  request: Pick<RequestRow, 'id' | 'stepId' | 'tool' | 'agentId'>;
  plan: { kind: string; steps: readonly PlannedStep[] };
  task: TaskContext;
  policy: Policy;
  changed: PlannedStep['arguments'];
}): Rejudged {
  const { request, plan, task } = input;
  const planned = plan.steps.find((candidate) => candidate.stepId === request.stepId);
  const tool = toolRegistry.get(request.tool ?? '');
  const original: PlannedStep = planned ?? {
    stepId: request.stepId ?? request.id,
    key: 'edited',
    index: 0,
    tool: request.tool ?? 'unknown',
    arguments: {},
    riskClass: tool?.risk ?? 'destructive',
    sideEffects: tool?.sideEffects ?? true,
    dependsOn: [],
  };
  const changedStep: PlannedStep = { ...original, arguments: input.changed };
  const changedPlan = plan.steps.map((candidate) =>
    candidate.stepId === original.stepId ? changedStep : candidate,
  );
  const context = {
    task: { kind: plan.kind, goal: task.goal, input: task.input, agentId: request.agentId },
    agentVerified: false,
    trust: null,
    policy: input.policy,
  };
  const first = evaluateStep({ ...context, step: original, plan: plan.steps });
  return rejudge(first, evaluateStep({ ...context, step: changedStep, plan: changedPlan }));
}
