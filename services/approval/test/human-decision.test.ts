import { describe, expect, it } from 'vitest';
import { humanOutcome, requestKindOf } from '../src/domain/human-decision.js';
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
