import { describe, expect, it } from 'vitest';
import type { PlannedStep } from '@tandem/contracts';
import { argumentAt, evaluateStep, type StepDecisionInput } from '../src/domain/evaluate.js';
import { parsePolicy, type Policy } from '../src/domain/policy.js';
import { loadPolicy } from '../src/policy-file.js';
import { assessRisk, raiseRisk } from '../src/domain/risk.js';
import {
  NEW_TRUST,
  applyTrustEvent,
  foldTrustEvents,
  type TrustEventKind,
  type TrustState,
} from '../src/domain/trust.js';
import { TASK, planOf, steps as S } from './scenarios/fixtures.js';

const DEFAULT = loadPolicy(undefined).policy;
const VETERAN = foldTrustEvents(Array<TrustEventKind>(30).fill('success'));

function policyWith(rules: string, extra = ''): Policy {
  return parsePolicy(
    `version: "test"\ntrust:\n  low: { minScore: 0, minSuccesses: 0 }\n  medium: { minScore: 0.5, minSuccesses: 5 }\n${extra}rules:\n${rules}`,
    'test.yaml',
  );
}

function decide(
  planOrStep: PlannedStep[],
  options: Partial<Omit<StepDecisionInput, 'step' | 'plan'>> & { stepKey?: string } = {},
) {
  const step = planOrStep.find((candidate) => candidate.key === (options.stepKey ?? planOrStep.at(-1)?.key));
  if (step === undefined) throw new Error('no step');
  return evaluateStep({
    step,
    plan: planOrStep,
    task: options.task ?? { ...TASK, agentId: 'agent-1' },
    agentVerified: options.agentVerified ?? true,
    trust: options.trust === undefined ? VETERAN : options.trust,
    policy: options.policy ?? DEFAULT,
    ...(options.risk ? { risk: options.risk } : {}),
  });
}

describe('evaluateStep: deny rules', () => {
  const policy = policyWith(`
  - { id: allow-writes, effect: allow, tools: [write_file] }
  - { id: no-prod, effect: deny, tools: [write_file, ask_human], arguments: { path: "^prod/" }, reason: "Not in prod." }
`);

  it('a matching deny rule rejects, even against veteran trust and an allow rule written first', () => {
    const decision = decide(planOf(S.write('prod/app.yaml', 'x')), { policy });
    expect(decision).toMatchObject({
      outcome: 'rejected',
      basis: 'rule:no-prod',
      reason: 'Not in prod.',
      trustUsed: null,
    });
  });

  it('the allow rule applies where the deny rule does not match', () => {
    expect(decide(planOf(S.write('staging/app.yaml', 'x')), { policy, trust: null })).toMatchObject({
      outcome: 'auto-approved',
      basis: 'rule:allow-writes',
    });
  });

  it('fails closed: a value that is not a string counts as matching for deny', () => {
    const decision = decide(planOf({ tool: 'write_file', arguments: { path: 42, content: 'x' } }), {
      policy,
    });
    expect(decision).toMatchObject({ outcome: 'rejected', basis: 'rule:no-prod' });
  });

  it('fails closed: a value built at run time counts as matching for deny', () => {
    const plan = planOf(S.python('result = "prod/x"'), S.write('{{steps.s1.value}}', 'x'));
    expect(decide(plan, { policy })).toMatchObject({ outcome: 'rejected', basis: 'rule:no-prod' });
  });

  it('an absent argument does not match', () => {
    const plan = planOf(S.list());
    const onlyPath = policyWith('  - { id: d, effect: deny, arguments: { path: "^prod/" } }\n');
    expect(decide(plan, { policy: onlyPath }).outcome).toBe('auto-approved');
  });

  it('deny applies to questions too', () => {
    const ask = policyWith('  - { id: no-questions, effect: deny, tools: [ask_human] }\n');
    expect(decide(planOf(S.ask('Why?')), { policy: ask })).toMatchObject({
      outcome: 'rejected',
      basis: 'rule:no-questions',
    });
  });

  it('deny rules naming an agent apply even when the submitter is unverified', () => {
    const named = policyWith('  - { id: not-bob, effect: deny, agents: [bob], tools: [read_file] }\n');
    const decision = decide(planOf(S.read('a.csv')), {
      policy: named,
      agentVerified: false,
      task: { ...TASK, agentId: 'bob' },
    });
    expect(decision.outcome).toBe('rejected');
  });

  it('matches dot paths into arrays', () => {
    const policy = policyWith(
      '  - { id: no-cookie, effect: deny, arguments: { headers.0.name: "^[Cc]ookie$" } }\n',
    );
    const withCookie = planOf(
      S.get('https://api.example.com/', { headers: [{ name: 'Cookie', secret: 'SESSION' }] }),
    );
    const withAccept = planOf(
      S.get('https://api.example.com/', { headers: [{ name: 'Accept', value: 'text/html' }] }),
    );
    expect(decide(withCookie, { policy }).basis).toBe('rule:no-cookie');
    expect(decide(withAccept, { policy }).outcome).toBe('auto-approved');
  });
});

describe('evaluateStep: questions', () => {
  it('ask_human always waits for a human, even when an allow rule matches', () => {
    const policy = policyWith('  - { id: allow-asks, effect: allow, tools: [ask_human] }\n');
    expect(decide(planOf(S.ask('Which quarter?')), { policy })).toMatchObject({
      outcome: 'needs-human',
      basis: 'question',
      trustUsed: null,
    });
  });
});

describe('evaluateStep: allow and ask rules', () => {
  it('an allow rule lifts the floor for a destructive step', () => {
    const policy = policyWith(
      '  - { id: tmp, effect: allow, tools: [delete_file], arguments: { path: "^tmp/[^/]+$" } }\n',
    );
    expect(decide(planOf(S.remove('tmp/a.log')), { policy })).toMatchObject({
      outcome: 'auto-approved',
      basis: 'rule:tmp',
    });
    expect(decide(planOf(S.remove('data/a.log')), { policy })).toMatchObject({
      outcome: 'needs-human',
      basis: 'floor:destructive',
    });
  });

  it('an allow rule never matches a value it cannot test', () => {
    const policy = policyWith(
      '  - { id: tmp, effect: allow, tools: [delete_file], arguments: { path: "^tmp/" } }\n',
    );
    const plan = planOf(S.python('result = "tmp/x"'), S.remove('{{steps.s1.value}}'));
    expect(decide(plan, { policy }).basis).toBe('floor:destructive');
  });

  it('an ask rule sends the step to its group with its deadline and expiry', () => {
    const policy = policyWith(
      '  - { id: finance, effect: ask, tools: [write_file], arguments: { path: "^finance/" }, group: finance, deadline: 4h, onExpiry: escalate }\n',
      'defaults: { deadline: 1h, reminderBefore: 10m, group: approvers }\nescalation: { group: oncall }\n',
    );
    expect(decide(planOf(S.write('finance/ledger.csv', 'x')), { policy })).toMatchObject({
      outcome: 'needs-human',
      basis: 'rule:finance',
      deadlineMs: 14_400_000,
      onExpiry: 'escalate',
      group: 'finance',
      reminderBeforeMs: 600_000,
    });
    expect(decide(planOf(S.write('reports/a.md', 'x')), { policy })).toMatchObject({
      outcome: 'auto-approved',
      deadlineMs: 3_600_000,
      onExpiry: 'reject',
      group: 'approvers',
    });
  });

  it('a reminder no shorter than the rule deadline is dropped', () => {
    const policy = policyWith(
      '  - { id: quick, effect: ask, tools: [write_file], deadline: 5m }\n',
      'defaults: { reminderBefore: 10m }\n',
    );
    expect(decide(planOf(S.write('a/b.md', 'x')), { policy })).toMatchObject({
      deadlineMs: 300_000,
      reminderBeforeMs: 0,
    });
  });

  it('the first allow or ask rule in file order decides', () => {
    const askFirst = policyWith(`
  - { id: ask-writes, effect: ask, tools: [write_file] }
  - { id: allow-writes, effect: allow, tools: [write_file] }
`);
    const allowFirst = policyWith(`
  - { id: allow-writes, effect: allow, tools: [write_file] }
  - { id: ask-writes, effect: ask, tools: [write_file] }
`);
    const plan = planOf(S.write('a/b.md', 'x'));
    expect(decide(plan, { policy: askFirst }).basis).toBe('rule:ask-writes');
    expect(decide(plan, { policy: allowFirst }).basis).toBe('rule:allow-writes');
  });

  it('allow and ask rules naming an agent need a verified submitter', () => {
    const policy = policyWith(
      '  - { id: bob-posts, effect: allow, agents: [bob], actionClasses: ["http_request:write"] }\n',
    );
    const plan = planOf(S.http('POST', 'https://api.example.com/x'));
    expect(decide(plan, { policy, task: { ...TASK, agentId: 'bob' } }).basis).toBe('rule:bob-posts');
    expect(decide(plan, { policy, task: { ...TASK, agentId: 'bob' }, agentVerified: false }).basis).toBe(
      'floor:external',
    );
    expect(decide(plan, { policy, task: { ...TASK, agentId: 'eve' } }).basis).toBe('floor:external');
  });

  it('filters by risk level and action class', () => {
    const policy = policyWith(
      '  - { id: high-reads, effect: ask, actionClasses: ["http_request:read"], riskLevels: [medium], group: net }\n',
    );
    expect(decide(planOf(S.get('https://api.example.com/')), { policy }).basis).toBe('rule:high-reads');
    expect(decide(planOf(S.get('https://10.0.0.1/')), { policy }).basis).toBe('risk:high');
  });
});

describe('evaluateStep: the floor and high risk', () => {
  it('destructive steps need a human whatever the trust', () => {
    expect(decide(planOf(S.remove('tmp/a.log')))).toMatchObject({
      outcome: 'needs-human',
      basis: 'floor:destructive',
    });
  });

  it('critical steps need a human', () => {
    expect(decide(planOf(S.write('.env', 'x')))).toMatchObject({
      outcome: 'needs-human',
      basis: 'floor:critical',
    });
  });

  it('external side effects need a human', () => {
    expect(decide(planOf(S.http('DELETE', 'https://api.example.com/x')))).toMatchObject({
      outcome: 'needs-human',
      basis: 'floor:external',
    });
  });

  it('high risk needs a human even for a veteran', () => {
    const decision = decide(planOf(S.read('.ssh/id_rsa')), {
      trust: { score: 1, successes: 1000, failures: 0, cap: null },
    });
    expect(decision).toMatchObject({ outcome: 'needs-human', basis: 'risk:high', trustUsed: null });
    expect(decision.reason).toMatch(/args\.secret-path/);
  });

  it('uses a precomputed risk (a raised second opinion)', () => {
    const plan = planOf(S.read('data/a.csv'));
    const step = plan[0];
    if (step === undefined) throw new Error('no step');
    const risk = raiseRisk(assessRisk(step, { plan, task: TASK }), {
      level: 'high',
      reason: 'odd',
      source: 'model',
    });
    expect(decide(plan, { risk })).toMatchObject({ outcome: 'needs-human', basis: 'risk:high' });
  });
});

describe('evaluateStep: trust', () => {
  it('approves a medium step when score and successes meet the threshold', () => {
    const trust = foldTrustEvents(Array<TrustEventKind>(7).fill('success'));
    const decision = decide(planOf(S.write('a/b.md', 'x')), { trust });
    expect(decision).toMatchObject({
      outcome: 'auto-approved',
      basis: 'trust:medium 0.52>=0.5,7>=5',
      actionClass: 'write_file',
    });
    expect(decision.trustUsed).toBeCloseTo(0.5217);
  });

  it('names the failing comparison', () => {
    const fewSuccesses: TrustState = { score: 0.9, successes: 3, failures: 0, cap: null };
    expect(decide(planOf(S.write('a/b.md', 'x')), { trust: fewSuccesses }).basis).toBe(
      'trust:below medium 3<5',
    );
    const lowScore: TrustState = { score: 0.1, successes: 9, failures: 0, cap: null };
    expect(decide(planOf(S.write('a/b.md', 'x')), { trust: lowScore }).basis).toBe(
      'trust:below medium 0.1<0.5',
    );
  });

  it('approves low steps of an agent without history (the quickstart)', () => {
    expect(decide(planOf(S.python('result = 1 + 1')), { trust: null })).toMatchObject({
      outcome: 'auto-approved',
      basis: 'trust:low 0>=0,0>=0',
      trustUsed: 0,
    });
  });

  it('a level the policy does not list is never approved by trust', () => {
    const policy = parsePolicy('version: "x"\ntrust:\n  low: { minScore: 0, minSuccesses: 0 }\n', 'x.yaml');
    expect(decide(planOf(S.write('a/b.md', 'x')), { policy })).toMatchObject({
      outcome: 'needs-human',
      basis: 'trust:unlisted medium',
      trustUsed: null,
    });
  });

  it("an unverified submitter does not get the named agent's trust", () => {
    const decision = decide(planOf(S.write('a/b.md', 'x')), { agentVerified: false });
    expect(decision).toMatchObject({ outcome: 'needs-human', basis: 'agent:unverified', trustUsed: 0 });
    expect(decision.reason).toMatch(/not verified to act as agent-1/);
    expect(decide(planOf(S.read('a.csv')), { agentVerified: false })).toMatchObject({
      outcome: 'auto-approved',
      basis: 'agent:unverified',
    });
  });

  it('a task without agent counts as an agent without history', () => {
    expect(decide(planOf(S.write('a/b.md', 'x')), { task: { ...TASK, agentId: null } })).toMatchObject({
      outcome: 'needs-human',
      basis: 'agent:none',
    });
  });

  it('a cap holds a veteran below the threshold', () => {
    const capped = applyTrustEvent(VETERAN, { kind: 'cap', cap: 0.3 });
    expect(decide(planOf(S.write('a/b.md', 'x')), { trust: capped })).toMatchObject({
      outcome: 'needs-human',
      basis: 'trust:below medium 0.3<0.5',
      trustUsed: 0.3,
    });
  });

  it('never approves by trust a step whose class had a recent rejection, edit or revert, under any valid threshold', () => {
    const histories: TrustEventKind[][] = [
      ['rejection'],
      [...Array<TrustEventKind>(100).fill('success'), 'rejection'],
      [...Array<TrustEventKind>(50).fill('approval'), 'revert'],
      [...Array<TrustEventKind>(20).fill('success'), 'edit'],
      [...Array<TrustEventKind>(20).fill('success'), 'rejection', 'success', 'success', 'success'],
    ];
    const thresholds = [
      { minScore: 0, minSuccesses: 0 },
      { minScore: 0, minSuccesses: 5 },
      { minScore: 0.5, minSuccesses: 0 },
    ];
    for (const history of histories) {
      for (const threshold of thresholds) {
        const policy = parsePolicy(
          `version: "x"\ntrust:\n  low: ${JSON.stringify(threshold)}\n  medium: ${JSON.stringify(threshold)}\n`,
          'x.yaml',
        );
        const trust = foldTrustEvents(history);
        for (const plan of [
          planOf(S.read('a.csv')),
          planOf(S.write('a/b.md', 'x')),
          planOf(S.python('result = 1')),
        ]) {
          const decision = decide(plan, { policy, trust });
          expect(decision.outcome, `${history.at(-1)} ${JSON.stringify(threshold)}`).toBe('needs-human');
          expect(decision.basis).toMatch(/^trust:below /);
        }
      }
    }
  });

  it('gives the defaults on every decision', () => {
    const decision = decide(planOf(S.python('result = 1')));
    expect(decision).toMatchObject({
      deadlineMs: 3_600_000,
      onExpiry: 'reject',
      group: null,
      reminderBeforeMs: 0,
    });
    expect(NEW_TRUST.score).toBe(0);
  });
});

describe('argumentAt', () => {
  const args = { headers: [{ name: 'Accept', value: 'x' }], url: 'https://a', nested: { a: { b: 1 } } };

  it.each([
    ['url', 'https://a'],
    ['headers.0.name', 'Accept'],
    ['nested.a.b', 1],
    ['headers.1.name', undefined],
    ['headers.x', undefined],
    ['url.length', undefined],
    ['constructor', undefined],
    ['nested.a.toString', undefined],
  ])('%s -> %j', (path, expected) => {
    expect(argumentAt(args, path)).toEqual(expected);
  });
});
