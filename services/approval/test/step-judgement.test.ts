import { argumentsHash, type PlannedStep, type RiskClass, type ToolCheckContext } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import type { StepDecision } from '../src/domain/evaluate.js';
import { loadedPolicy } from '../src/domain/policy.js';
import {
  agentVerified,
  decideStep,
  judgeChanged,
  judgeWithValues,
  planActionClasses,
  planRequests,
  resolveStep,
} from '../src/domain/step-judgement.js';
import { foldTrustEvents, type TrustEventKind } from '../src/domain/trust.js';
import { loadPolicy } from '../src/policy-file.js';
import { planOf, steps as S } from './scenarios/fixtures.js';

// How approval judges a step (domain/step-judgement.ts), without NATS or Postgres.

const POLICY = loadPolicy(undefined);
const READ_ONLY = new Set<RiskClass>(['read']);
const EVERY_CLASS = new Set<RiskClass>(['read', 'compute', 'write', 'network', 'destructive']);
const CHECKS: ToolCheckContext = {
  http: { allowHosts: ['api.example.com'], allowHttp: false },
  runCode: { languages: ['python', 'javascript'], maxCodeChars: 10_000 },
};
const NOW = new Date('2026-12-07T12:00:00.000Z');
const FROM_TOKEN = { goal: 'routine work', input: null, submittedBy: 'token:t1', source: null };
const FROM_NATS = { goal: 'routine work', input: null, submittedBy: null, source: 'urn:billing' };
const VETERAN = foldTrustEvents(Array<TrustEventKind>(30).fill('success'));

function ids(): () => string {
  let next = 0;
  return () => `id-${++next}`;
}

function planData(plan: PlannedStep[], agentId: string | null = null) {
  return {
    taskId: 'task-1',
    planId: 'plan-1',
    version: 1,
    request: { source: 'urn:test', id: 'r1' },
    kind: 'general',
    agentId,
    steps: plan,
  };
}

function judgePlan(
  plan: PlannedStep[],
  options: {
    agentId?: string | null;
    autoApprove?: ReadonlySet<RiskClass>;
    existing?: string[];
    trust?: ReadonlyMap<string, typeof VETERAN>;
  } = {},
) {
  return planRequests({
    plan: planData(plan, options.agentId ?? null),
    task: FROM_TOKEN,
    existingSteps: new Set(options.existing ?? []),
    trust: options.trust ?? new Map(),
    policy: POLICY,
    autoApprove: options.autoApprove ?? READ_ONLY,
    risks: new Map(),
    now: NOW,
    newId: ids(),
  });
}

describe('agentVerified', () => {
  const policy = loadedPolicy(
    "version: t\ntrust:\n  low: { minScore: 0, minSuccesses: 0 }\n  medium: { minScore: 0.5, minSuccesses: 5 }\nagents:\n  billing: { sources: ['urn:billing'] }\n",
    't.yaml',
  ).policy;

  it('trusts a task submitted with a token, and a proven source the policy lists for the agent', () => {
    expect(agentVerified('billing', FROM_TOKEN, policy)).toBe(true);
    expect(agentVerified('billing', { ...FROM_NATS, submittedBy: 'source:urn:billing' }, policy)).toBe(true);
  });

  it('does not trust a source that is only claimed, one not listed for the agent, or no agent', () => {
    expect(agentVerified('billing', FROM_NATS, policy)).toBe(false);
    expect(agentVerified('other', { ...FROM_NATS, submittedBy: 'source:urn:billing' }, policy)).toBe(false);
    expect(agentVerified(null, FROM_TOKEN, policy)).toBe(false);
  });
});

describe('decideStep', () => {
  const approved: StepDecision = {
    outcome: 'auto-approved',
    basis: 'trust:low',
    reason: 'low risk',
    risk: { level: 'low', reasons: [], externalSideEffect: false, secretTouching: false },
    actionClass: 'write_file',
    trustUsed: null,
    group: null,
    onExpiry: 'reject',
    deadlineMs: 3_600_000,
    reminderBeforeMs: 0,
  };

  it('sends a trust approval of a class outside TANDEM_AUTO_APPROVE to a human; an allow rule still approves', () => {
    const write = S.write('a.md', 'x');
    const step = { ...write, riskClass: 'write' as const };
    expect(decideStep(approved, step, READ_ONLY)).toMatchObject({
      outcome: 'needs-human',
      basis: 'config:auto-approve',
      kind: 'approval',
    });
    expect(decideStep({ ...approved, basis: 'rule:ok' }, step, READ_ONLY).outcome).toBe('auto-approved');
    expect(decideStep(approved, step, EVERY_CLASS).outcome).toBe('auto-approved');
  });

  it('makes ask_human a question for a human, or rejects it when it holds no question', () => {
    const ask = { ...S.ask('Which account?'), riskClass: 'read' as const };
    expect(decideStep(approved, ask, READ_ONLY)).toMatchObject({
      outcome: 'needs-human',
      basis: 'question',
      kind: 'question',
      question: 'Which account?',
    });
    const empty = { tool: 'ask_human', arguments: { question: '' }, riskClass: 'read' as const };
    expect(decideStep(approved, empty, READ_ONLY)).toMatchObject({
      outcome: 'rejected',
      basis: 'question:invalid',
      kind: 'question',
    });
  });
});

describe('planRequests', () => {
  it('decides each new step: a human for compute, respond approved at once, a template waits for values', () => {
    const plan = planOf(
      S.python('result = 6 * 7'),
      S.respond('done'),
      S.write('out.txt', 'value {{steps.s1.value}}'),
    );
    const decided = judgePlan(plan);
    expect(decided.requests.map((request) => [request.tool, request.status, request.mode])).toEqual([
      ['run_code', 'pending', 'human'],
      ['respond', 'approved', 'auto'],
      ['write_file', 'awaiting-values', 'auto'],
    ]);
    expect(decided.outcomes).toEqual(['pending', 'auto-approved', 'awaiting-values']);
    const [run, respond, write] = decided.requests;
    expect(run?.deadline?.getTime()).toBe(NOW.getTime() + 3_600_000);
    expect(run).toMatchObject({ decidedBy: null, decidedAt: null, onExpiry: 'reject' });
    expect(respond).toMatchObject({ decidedAt: NOW, argumentsHash: argumentsHash({ answer: 'done' }) });
    expect(respond?.decidedBy).toMatch(/^policy:/);
    expect(write).toMatchObject({ deadline: null, decidedBy: null });
    expect(decided.automatic).toEqual([
      expect.objectContaining({ approvalId: respond?.id, stepId: respond?.stepId, decision: 'approved' }),
    ]);
    expect(decided.pending.map((pending) => pending.row.id)).toEqual([run?.id]);
    expect(decided.pending[0]?.arguments).toEqual({ language: 'python', code: 'result = 6 * 7' });
    expect(decided.audits.map((audit) => audit.action)).toEqual([
      'approval.requested',
      'approval.auto-approved',
      'approval.awaiting-values',
    ]);
    expect(decided.audits[0]?.data).toMatchObject({ policyVersion: POLICY.version, policyHash: POLICY.hash });
  });

  it('skips steps that already have a request (a redelivered plan creates nothing)', () => {
    const plan = planOf(S.python('x = 1'), S.respond('done'));
    const decided = judgePlan(plan, { existing: plan.map((step) => step.stepId) });
    expect(decided).toEqual({ requests: [], audits: [], outcomes: [], automatic: [], pending: [] });
  });

  it("uses the agent's trust only when the submitter may act as the agent", () => {
    const plan = planOf(S.write('notes.md', 'x'));
    const trust = new Map(planActionClasses(planData(plan)).map((actionClass) => [actionClass, VETERAN]));
    const verified = judgePlan(plan, { agentId: 'agent-1', trust, autoApprove: EVERY_CLASS });
    expect(verified.requests[0]).toMatchObject({ status: 'approved', mode: 'auto' });
    expect(verified.requests[0]?.trustAtDecision).toBeGreaterThan(0.5);
    const anonymous = judgePlan(plan, { agentId: null, trust, autoApprove: EVERY_CLASS });
    expect(anonymous.requests[0]).toMatchObject({ status: 'pending', trustAtDecision: null });
  });
});

describe('resolveStep and judgeWithValues', () => {
  const plan = planOf(
    S.read('notes/today.txt'),
    S.get('https://api.example.com/collect?d={{steps.s1.value}}'),
  );
  const send = plan[1];
  if (send === undefined) throw new Error('no step');
  const request = { id: 'req-2', taskId: 'task-1', planId: 'plan-1', agentId: null, stepId: send.stepId };

  it('resolves nothing until every referenced step has a result', () => {
    expect(resolveStep(request, plan, new Map())).toBeNull();
    expect(resolveStep({ stepId: null }, plan, new Map([['s1', { value: 'x', stdout: '' }]]))).toBeNull();
    const resolved = resolveStep(request, plan, new Map([['s1', { value: 'hello', stdout: '' }]]));
    expect(resolved?.resolved.arguments).toEqual({
      method: 'GET',
      url: 'https://api.example.com/collect?d=hello',
    });
    expect(resolved?.plan[1]).toBe(resolved?.resolved);
    expect(resolved?.step).toBe(send);
  });

  function judge(value: string, checkContext: ToolCheckContext = CHECKS) {
    const resolved = resolveStep(request, plan, new Map([['s1', { value, stdout: '' }]]));
    if (resolved === null) throw new Error('not resolved');
    return judgeWithValues({
      request,
      resolved,
      kind: 'general',
      task: FROM_TOKEN,
      trust: null,
      verified: false,
      policy: POLICY,
      autoApprove: EVERY_CLASS,
      checkContext,
    });
  }

  it('binds the decision to the resolved arguments and audits them', () => {
    const judged = judge('hello');
    expect(judged.argumentsHash).toBe(argumentsHash(judged.resolvedArguments));
    expect(judged.audit).toMatchObject({
      subject: { type: 'step', id: send.stepId },
      data: { withValues: true, resolvedArguments: judged.resolvedArguments, approvalId: 'req-2' },
    });
    expect(['auto-approved', 'pending']).toContain(judged.outcome);
  });

  it('a secret in the values raises the step to a human; values that make the call invalid reject it', () => {
    const secret = judge('AKIAIOSFODNN7EXAMPLE');
    expect(secret).toMatchObject({ outcome: 'pending', status: 'pending', decidedBy: null });
    expect(secret.human).not.toBeNull();
    expect(secret.decision.risk.level).toBe('critical');
    const refused = judge('hello', { ...CHECKS, http: { allowHosts: [], allowHttp: false } });
    expect(refused).toMatchObject({ outcome: 'auto-rejected', status: 'rejected', human: null });
    expect(refused.decision.basis).toMatch(/^values:/);
  });
});

describe('judgeChanged', () => {
  const policy = loadedPolicy(
    `version: t
trust:
  low: { minScore: 0, minSuccesses: 0 }
  medium: { minScore: 0.5, minSuccesses: 5 }
rules:
  - { id: no-prod, effect: deny, tools: [write_file], arguments: { path: "^prod/" }, reason: "Not in prod." }
`,
    't.yaml',
  ).policy;
  const plan = planOf(S.write('notes.md', 'x'));
  const step = plan[0];
  if (step === undefined) throw new Error('no step');
  const request = { id: 'req-1', stepId: step.stepId, tool: step.tool, agentId: 'agent-1' };
  const changed = (args: { path: string; content: string }) =>
    judgeChanged({
      request,
      plan: { kind: 'general', steps: plan },
      task: FROM_TOKEN,
      policy,
      changed: args,
    });

  it('lets an edit that changes nothing the policy looks at stand', () => {
    expect(changed({ path: 'notes.md', content: 'y' })).toEqual({ kind: 'stands' });
  });

  it('refuses an edit the policy denies, even though the step as planned was allowed', () => {
    expect(changed({ path: 'prod/app.yaml', content: 'y' })).toMatchObject({
      kind: 'denied',
      decision: { basis: 'rule:no-prod' },
    });
  });

  it('judges a request whose step is missing from the plan against an empty planned step of its tool', () => {
    const orphan = judgeChanged({
      request: { ...request, stepId: 'missing' },
      plan: { kind: 'general', steps: [] },
      task: FROM_TOKEN,
      policy,
      changed: { path: 'prod/app.yaml', content: 'y' },
    });
    expect(orphan.kind).toBe('denied');
  });
});
