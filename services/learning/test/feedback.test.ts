import { ApprovalVerdictRecorded, createEnvelope } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { verdictFeedback } from '../src/domain/feedback.js';

const ids = {
  approvalId: '5a0e8c9f-1b2d-4c3e-8f4a-6b7c8d9e0f1a',
  taskId: '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10',
  planId: '7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f',
  stepId: '1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b',
};

describe('verdictFeedback', () => {
  it('keeps the verdict, its reason and everything later learning needs, keyed by the event', () => {
    const envelope = createEnvelope(
      ApprovalVerdictRecorded,
      {
        ...ids,
        agentId: 'billing-bot',
        tool: 'write_file',
        actionClass: 'write_file',
        verdict: 'edited',
        reason: 'wrong path',
        decidedBy: 'token:abc',
        arguments: { path: 'a.txt' },
        editedArguments: { path: 'b.txt' },
        answer: null,
        riskLevel: 'medium',
        riskReasons: [],
        trustAtDecision: 0.4,
        mode: 'human',
        patternIds: ['p1'],
      },
      { correlationId: ids.taskId },
    );
    const feedback = verdictFeedback(envelope);
    expect(feedback).toEqual({
      taskId: ids.taskId,
      stepId: ids.stepId,
      approvalId: ids.approvalId,
      verdict: 'edited',
      comment: 'wrong path',
      sourceEventId: envelope.id,
      data: {
        agentId: 'billing-bot',
        planId: ids.planId,
        tool: 'write_file',
        actionClass: 'write_file',
        decidedBy: 'token:abc',
        mode: 'human',
        arguments: { path: 'a.txt' },
        editedArguments: { path: 'b.txt' },
        answer: null,
        riskLevel: 'medium',
        riskReasons: [],
        trustAtDecision: 0.4,
        patternIds: ['p1'],
        occurredAt: envelope.occurredAt,
      },
    });
  });
});
