import { describe, expect, it } from 'vitest';
import { ErrorCodes, TandemError, type ToolCheckContext } from '@tandem/contracts';
import {
  checkEdit,
  checkHumanDecision,
  decidableRequest,
  deciderSees,
  decisionTrustChange,
  humanOutcome,
  requestKindOf,
} from '../src/domain/human-decision.js';
import { matchChoice, parseQuestion } from '../src/domain/question.js';

const APPROVAL = { kind: 'approval', choices: null } as const;
const OPEN_QUESTION = { kind: 'question', choices: null } as const;
const CHOICE_QUESTION = { kind: 'question', choices: ['eu-west', 'us-east'] } as const;

describe('humanOutcome', () => {
  it('approves and rejects an approval request', () => {
    expect(humanOutcome(APPROVAL, { decision: 'approve' })).toEqual({
      ok: true,
      outcome: { status: 'approved', reason: null, answer: null },
    });
    expect(humanOutcome(APPROVAL, { decision: 'reject', reason: 'no' })).toEqual({
      ok: true,
      outcome: { status: 'rejected', reason: 'no', answer: null },
    });
  });

  it('refuses to answer an approval request and to approve a question, with APPROVAL.WRONG_DECISION', () => {
    expect(humanOutcome(APPROVAL, { decision: 'answer', answer: 'yes' })).toMatchObject({
      ok: false,
      problem: { code: 'APPROVAL.WRONG_DECISION' },
    });
    expect(humanOutcome(OPEN_QUESTION, { decision: 'approve' })).toMatchObject({
      ok: false,
      problem: { code: 'APPROVAL.WRONG_DECISION' },
    });
  });

  it('takes an edit of an approval request as an approval (arguments are checked by the caller), not of a question', () => {
    expect(humanOutcome(APPROVAL, { decision: 'edit', arguments: { a: 1 }, reason: 'smaller' })).toEqual({
      ok: true,
      outcome: { status: 'approved', reason: 'smaller', answer: null },
    });
    expect(humanOutcome(OPEN_QUESTION, { decision: 'edit', arguments: {} })).toMatchObject({
      ok: false,
      problem: { code: 'APPROVAL.WRONG_DECISION' },
    });
  });

  it('answers an open question with any answer and rejects a question with a reason', () => {
    expect(humanOutcome(OPEN_QUESTION, { decision: 'answer', answer: 'because' })).toEqual({
      ok: true,
      outcome: { status: 'answered', reason: null, answer: 'because' },
    });
    expect(humanOutcome(OPEN_QUESTION, { decision: 'reject', reason: 'not mine to say' })).toMatchObject({
      ok: true,
      outcome: { status: 'rejected', reason: 'not mine to say' },
    });
  });

  it('takes only one of the choices, stored as the choice is spelled', () => {
    expect(humanOutcome(CHOICE_QUESTION, { decision: 'answer', answer: 'us-east' })).toMatchObject({
      ok: true,
      outcome: { status: 'answered', answer: 'us-east' },
    });
    expect(humanOutcome(CHOICE_QUESTION, { decision: 'answer', answer: 'mars' })).toMatchObject({
      ok: false,
      problem: { code: 'APPROVAL.INVALID_ANSWER', details: { choices: ['eu-west', 'us-east'] } },
    });
  });
});

describe('question helpers', () => {
  it('matches a choice after trimming both sides, case-sensitively', () => {
    expect(matchChoice(' yes ', ['yes', 'no'])).toBe('yes');
    expect(matchChoice('yes', [' yes', 'no'])).toBe(' yes');
    expect(matchChoice('Yes', ['yes', 'no'])).toBeNull();
    expect(matchChoice('anything', null)).toBe('anything');
  });

  it('reads question and choices from step arguments', () => {
    expect(parseQuestion({ question: 'Go?', choices: ['y', 'n'] })).toEqual({
      question: 'Go?',
      choices: ['y', 'n'],
    });
    expect(parseQuestion({ question: 'Go?' })).toEqual({ question: 'Go?', choices: null });
    expect(parseQuestion({ choices: ['y'] })).toBeNull();
    expect(parseQuestion(null)).toBeNull();
  });

  it('treats every stored kind but question as an approval request', () => {
    expect(requestKindOf('question')).toBe('question');
    expect(requestKindOf('approval')).toBe('approval');
    expect(requestKindOf(null)).toBe('approval');
  });
});

/** The TandemError code `fn` throws (fails the test when it does not throw one). */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof TandemError) return error.code;
    throw error;
  }
  throw new Error('expected a TandemError');
}

describe('deciderSees and decidableRequest', () => {
  it('lets admins and signed webhooks decide every request, approvers only their groups', () => {
    expect(deciderSees({ role: 'admin', groups: [] }, 'finance')).toBe(true);
    expect(deciderSees({ role: 'webhook', groups: [] }, null)).toBe(true);
    expect(deciderSees({ role: 'approver', groups: ['finance'] }, 'finance')).toBe(true);
    expect(deciderSees({ role: 'approver', groups: ['finance'] }, null)).toBe(false);
    expect(deciderSees({ role: 'approver', groups: [] }, null)).toBe(true);
    expect(deciderSees({ role: 'approver', groups: [] }, 'finance')).toBe(false);
    expect(deciderSees({ role: 'submitter', groups: [] }, null)).toBe(false);
  });

  it('answers a request the decider may not see like an unknown one', () => {
    const request = { id: 'r1', stepId: 's1', approverGroup: 'finance' };
    expect(decidableRequest('r1', request, { role: 'approver', groups: ['finance'] })).toEqual(request);
    expect(codeOf(() => decidableRequest('r1', request, { role: 'approver', groups: ['ops'] }))).toBe(
      ErrorCodes.APPROVAL_NOT_FOUND,
    );
    expect(codeOf(() => decidableRequest('r1', null, { role: 'admin', groups: [] }))).toBe(
      ErrorCodes.APPROVAL_NOT_FOUND,
    );
  });
});

describe('checkHumanDecision', () => {
  const now = new Date('2026-12-07T12:00:00.000Z');
  const pending = {
    id: 'r1',
    kind: 'approval' as const,
    status: 'pending',
    decidedBy: null,
    deadline: new Date(now.getTime() + 60_000),
  };

  it('moves a pending request inside its deadline to the decided state', () => {
    expect(checkHumanDecision(pending, {}, { decision: 'approve' }, now)).toEqual({
      status: 'approved',
      reason: null,
      answer: null,
    });
  });

  it('refuses, in order, a wrong decision, a decided request and a passed deadline', () => {
    const decided = { ...pending, status: 'approved', deadline: new Date(0) };
    expect(codeOf(() => checkHumanDecision(decided, {}, { decision: 'answer', answer: 'x' }, now))).toBe(
      ErrorCodes.APPROVAL_WRONG_DECISION,
    );
    expect(codeOf(() => checkHumanDecision(decided, {}, { decision: 'approve' }, now))).toBe(
      ErrorCodes.APPROVAL_ALREADY_DECIDED,
    );
    expect(
      codeOf(() => checkHumanDecision({ ...pending, deadline: now }, {}, { decision: 'approve' }, now)),
    ).toBe(ErrorCodes.APPROVAL_EXPIRED);
  });

  it("checks an answer against the question's choices", () => {
    const question = { ...pending, kind: 'question' as const };
    const asked = { question: 'Where?', choices: ['eu-west', 'us-east'] };
    expect(checkHumanDecision(question, asked, { decision: 'answer', answer: 'eu-west' }, now).status).toBe(
      'answered',
    );
    expect(
      codeOf(() => checkHumanDecision(question, asked, { decision: 'answer', answer: 'mars' }, now)),
    ).toBe(ErrorCodes.APPROVAL_INVALID_ANSWER);
  });
});

describe('checkEdit', () => {
  const checks: ToolCheckContext = {
    http: { allowHosts: [], allowHttp: false },
    runCode: { languages: ['python'], maxCodeChars: 1000 },
  };

  it('revalidates the edited call like a model call, then takes the judgement of it', () => {
    const edited = checkEdit('write_file', { path: 'a.md', content: 'x' }, checks, () => ({
      kind: 'stands',
    }));
    expect(edited).toEqual({ arguments: { path: 'a.md', content: 'x' }, rejudged: { kind: 'stands' } });
    expect(
      codeOf(() =>
        checkEdit('write_file', { path: '../etc/passwd', content: 'x' }, checks, () => ({ kind: 'stands' })),
      ),
    ).toBe(ErrorCodes.APPROVAL_INVALID_EDIT);
  });

  it('refuses an edit the policy denies', () => {
    const denied = () =>
      checkEdit('write_file', { path: 'a.md', content: 'x' }, checks, () => ({
        kind: 'denied',
        decision: {
          outcome: 'rejected',
          risk: { level: 'low', reasons: [], externalSideEffect: false, secretTouching: false },
          actionClass: 'write_file',
          basis: 'rule:no',
          reason: 'no',
          trustUsed: null,
          deadlineMs: 0,
          onExpiry: 'reject',
          group: null,
          reminderBeforeMs: 0,
        },
      }));
    expect(codeOf(denied)).toBe(ErrorCodes.APPROVAL_INVALID_EDIT);
  });
});

describe('decisionTrustChange', () => {
  it('a rejection, an edit and a plain approval change trust; an answer does not', () => {
    expect(decisionTrustChange({ status: 'rejected', reason: 'wrong' }, false, 'token:a')).toEqual({
      kind: 'rejection',
      reason: 'rejected by token:a: wrong',
    });
    expect(decisionTrustChange({ status: 'approved', reason: null }, true, 'token:a')?.kind).toBe('edit');
    expect(decisionTrustChange({ status: 'approved', reason: null }, false, 'token:a')?.kind).toBe(
      'approval',
    );
    expect(decisionTrustChange({ status: 'answered', reason: null }, false, 'token:a')).toBeNull();
  });
});
