import type { JsonValue, PlannedStep } from '@tandem/contracts';
import { actionClassOf } from './action-class.js';
import { compilePattern, type OnExpiry, type Policy, type PolicyRule } from './policy.js';
import { ASK_HUMAN_TOOL } from './question.js';
import { assessRisk, isDestructive, type RiskAssessment } from './risk.js';
import { NEW_TRUST, effectiveScore, type TrustState } from './trust.js';

/*
 * The decision for one planned step, in this order (the first that applies):
 *   1. a deny rule matches                         -> rejected          basis rule:<id>
 *   2. the step asks a human (ask_human)           -> needs-human       basis question
 *   3. the first allow or ask rule, in file order:
 *        allow                                     -> auto-approved     basis rule:<id>
 *        ask                                       -> needs-human       basis rule:<id> (its deadline, onExpiry, group)
 *   4. floor: destructive class, critical level, external side effect
 *                                                  -> needs-human       basis floor:destructive|critical|external
 *   5. high level                                  -> needs-human       basis risk:high
 *   6. trust for the level (policy.trust.low/medium):
 *        level not listed                          -> needs-human       basis trust:unlisted <level>
 *        no agent / unverified submitter: compared as an agent without history
 *                                                  -> either            basis agent:none | agent:unverified
 *        effective score and successes meet it     -> auto-approved     basis trust:<level> 0.62>=0.5,7>=5
 *        otherwise                                 -> needs-human       basis trust:below <level> 0.1<0.5
 *
 * Rule matching fails closed: an argument pattern that cannot be tested (the value is not a string,
 * or is built at run time from {{steps...}}) counts as matching for deny and ask rules and as not
 * matching for allow rules. Rules naming agents apply to the named agent for deny, but for allow and
 * ask only when the submitter is verified to act as that agent.
 */

/** Everything one step's decision depends on. */
export interface StepDecisionInput {
  step: PlannedStep;
  plan: readonly PlannedStep[];
  task: { kind: string; goal?: string; input?: JsonValue | null; agentId: string | null };
  /** whether the submitter may act as task.agentId (false: the agent's trust is not used) */
  agentVerified: boolean;
  /** The agent's trust in actionClassOf(step); null: none yet. */
  trust: TrustState | null;
  policy: Policy;
  /** Precomputed (e.g. raised by a model opinion); else assessRisk. */
  risk?: RiskAssessment;
}

/** How one step is decided, and why. */
export interface StepDecision {
  outcome: 'auto-approved' | 'needs-human' | 'rejected';
  risk: RiskAssessment;
  actionClass: string;
  /** Machine-readable: 'rule:<id>', 'floor:destructive', 'trust:medium 0.62>=0.5,7>=5', 'question', ... */
  basis: string;
  /** One sentence for a person. */
  reason: string;
  /** The effective trust score compared; null when trust was not used. */
  trustUsed: number | null;
  deadlineMs: number;
  onExpiry: OnExpiry;
  group: string | null;
  /** 0: no reminder. Always shorter than the deadline. */
  reminderBeforeMs: number;
}

type Purpose = 'deny' | 'ask' | 'allow';

const REFERENCE_MARK = '{{';

/** The value at a dot path (`headers.0.name`) of the arguments; undefined when absent. Own keys only. */
export function argumentAt(args: Record<string, JsonValue>, path: string): JsonValue | undefined {
  let current: JsonValue | undefined = args;
  for (const segment of path.split('.')) {
    if (Array.isArray(current)) {
      current = /^\d+$/.test(segment) ? current[Number(segment)] : undefined;
    } else if (current !== null && typeof current === 'object') {
      current = Object.hasOwn(current, segment) ? current[segment] : undefined;
    } else {
      return undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}

interface Facts {
  step: PlannedStep;
  actionClass: string;
  risk: RiskAssessment;
  agentId: string | null;
  agentVerified: boolean;
}

/** Whether a rule applies to a step (see the fail-closed notes at the top). */
export function ruleMatches(rule: PolicyRule, facts: Facts): boolean {
  const purpose: Purpose = rule.effect;
  if (rule.agents !== undefined) {
    if (facts.agentId === null || !rule.agents.includes(facts.agentId)) return false;
    if (purpose !== 'deny' && !facts.agentVerified) return false;
  }
  if (rule.tools !== undefined && !rule.tools.includes(facts.step.tool)) return false;
  if (rule.actionClasses !== undefined && !rule.actionClasses.includes(facts.actionClass)) return false;
  if (rule.riskLevels !== undefined && !rule.riskLevels.includes(facts.risk.level)) return false;
  for (const [path, source] of Object.entries(rule.arguments ?? {})) {
    const value = argumentAt(facts.step.arguments, path);
    if (value === undefined) return false;
    if (typeof value === 'string' && !value.includes(REFERENCE_MARK)) {
      if (!compilePattern(source).test(value)) return false;
    } else if (purpose === 'allow') {
      return false;
    }
  }
  return true;
}

function formatNumber(value: number): string {
  return String(Math.floor(value * 100 + 1e-9) / 100);
}

/** Decides one step (pure): see the order at the top of this file. */
export function evaluateStep(input: StepDecisionInput): StepDecision {
  const { step, policy, task } = input;
  const risk = input.risk ?? assessRisk(step, { plan: input.plan, task });
  const actionClass = actionClassOf(step);
  const defaults = policy.defaults;
  const facts: Facts = { step, actionClass, risk, agentId: task.agentId, agentVerified: input.agentVerified };

  const decide = (
    outcome: StepDecision['outcome'],
    basis: string,
    reason: string,
    extra: { trustUsed?: number | null; rule?: PolicyRule } = {},
  ): StepDecision => {
    const deadlineMs = extra.rule?.deadline ?? defaults.deadline;
    return {
      outcome,
      risk,
      actionClass,
      basis,
      reason,
      trustUsed: extra.trustUsed ?? null,
      deadlineMs,
      onExpiry: extra.rule?.onExpiry ?? defaults.onExpiry,
      group: extra.rule?.group ?? defaults.group ?? null,
      reminderBeforeMs: defaults.reminderBefore < deadlineMs ? defaults.reminderBefore : 0,
    };
  };

  // 1. Deny wins wherever it is written.
  const deny = policy.rules.find((rule) => rule.effect === 'deny' && ruleMatches(rule, facts));
  if (deny !== undefined) {
    return decide('rejected', `rule:${deny.id}`, deny.reason ?? `policy rule ${deny.id} denies this step`, {
      rule: deny,
    });
  }

  // 2. A question is for a human whatever else holds.
  if (step.tool === ASK_HUMAN_TOOL) {
    return decide('needs-human', 'question', `${ASK_HUMAN_TOOL} waits for a human's answer`);
  }

  // 3. The first allow or ask rule, in the order written.
  const written = policy.rules.find((rule) => rule.effect !== 'deny' && ruleMatches(rule, facts));
  if (written !== undefined) {
    if (written.effect === 'allow') {
      return decide(
        'auto-approved',
        `rule:${written.id}`,
        written.reason ?? `policy rule ${written.id} allows this step`,
        { rule: written },
      );
    }
    return decide(
      'needs-human',
      `rule:${written.id}`,
      written.reason ?? `policy rule ${written.id} asks a human`,
      { rule: written },
    );
  }

  // 4. The floor: never approved without a human.
  if (isDestructive(step)) {
    return decide('needs-human', 'floor:destructive', `${step.tool} is destructive: a human decides`);
  }
  if (risk.level === 'critical') {
    return decide('needs-human', 'floor:critical', `critical risk (${topRules(risk)}): a human decides`);
  }
  if (risk.externalSideEffect) {
    return decide(
      'needs-human',
      'floor:external',
      `${step.tool} changes something outside Tandem: a human decides`,
    );
  }

  // 5. High risk is never approved by trust.
  const level = risk.level;
  if (level === 'high') {
    return decide('needs-human', 'risk:high', `high risk (${topRules(risk)}): a human decides`);
  }

  // 6. Earned trust for low and medium.
  const threshold = policy.trust[level];
  if (threshold === undefined) {
    return decide(
      'needs-human',
      `trust:unlisted ${level}`,
      `the policy approves no ${level}-risk step by trust: a human decides`,
    );
  }
  const usesAgent = task.agentId !== null && input.agentVerified;
  const state = usesAgent ? (input.trust ?? NEW_TRUST) : NEW_TRUST;
  const score = effectiveScore(state);
  const scoreOk = score >= threshold.minScore;
  const successesOk = state.successes >= threshold.minSuccesses;
  const comparisons = [
    `${formatNumber(score)}${scoreOk ? '>=' : '<'}${threshold.minScore}`,
    `${state.successes}${successesOk ? '>=' : '<'}${threshold.minSuccesses}`,
  ];
  const passed = scoreOk && successesOk;
  const outcome = passed ? 'auto-approved' : 'needs-human';
  const verdict = passed ? 'approved' : 'a human decides';
  const detail = `${level}-risk ${actionClass} needs trust >= ${threshold.minScore} and ${threshold.minSuccesses} verified successes`;
  if (!usesAgent) {
    const who =
      task.agentId === null
        ? 'the task names no agent'
        : `the submitter is not verified to act as ${task.agentId}`;
    return decide(
      outcome,
      task.agentId === null ? 'agent:none' : 'agent:unverified',
      `${who}, so it counts as an agent without history (${comparisons.join(', ')}); ${detail}: ${verdict}`,
      { trustUsed: score },
    );
  }
  const basis = passed
    ? `trust:${level} ${comparisons.join(',')}`
    : `trust:below ${level} ${[scoreOk ? null : comparisons[0], successesOk ? null : comparisons[1]]
        .filter((part) => part !== null)
        .join(',')}`;
  return decide(
    outcome,
    basis,
    `${task.agentId}'s trust in ${actionClass} is ${formatNumber(score)} with ${state.successes} verified successes; ${detail}: ${verdict}`,
    { trustUsed: score },
  );
}

function topRules(risk: RiskAssessment): string {
  const rules = risk.reasons.filter((reason) => reason.level === risk.level).map((reason) => reason.rule);
  return rules.length > 0 ? rules.join(', ') : risk.level;
}
