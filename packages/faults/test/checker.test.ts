import { describe, expect, it } from 'vitest';
import { check, type Observations, type TaskRow } from '../src/index.js';

function row(overrides: Partial<TaskRow>): TaskRow {
  return {
    taskId: 't1',
    externalId: 'e1',
    goalLabel: 'a-1',
    status: 'planned',
    runStatus: 'completed',
    answer: '42 a-1 200',
    errorCode: null,
    steps: [],
    ...overrides,
  };
}

function observations(overrides: Partial<Observations>): Observations {
  return {
    submitted: [{ label: 'a-1', kind: 'normal', key: 'e1', via: 'nats', accepted: true, acceptedAt: 0 }],
    tasks: [row({})],
    durable: [{ eventId: 'o1', taskId: 't1', status: 'completed', seenAt: 1 }],
    plain: [{ eventId: 'o1', taskId: 't1', status: 'completed', seenAt: 1 }],
    sandboxExecutions: { k1: 1 },
    sandboxRunsPerAttempt: { s1: 1 },
    effects: { s4: 1 },
    poisonTasks: 0,
    crashes: [],
    http5xx: 0,
    ...overrides,
  };
}

describe('the fault checker', () => {
  it('passes a completed task seen once everywhere', () => {
    const { figures, failures } = check(observations({}));
    expect(failures).toEqual([]);
    expect(figures).toMatchObject({
      accepted: 1,
      terminal: 1,
      lost: 0,
      sandboxExecutions: 1,
      effectRequests: 1,
    });
  });

  it('counts an accepted task without a row as lost, and one not terminal as stuck, naming its steps', () => {
    const lost = check(observations({ tasks: [] }));
    expect(lost.figures).toMatchObject({ lost: 1, stuck: 0 });
    expect(lost.failures[0]).toContain('lost: normal task a-1');
    const stuck = check(
      observations({ tasks: [row({ runStatus: 'running', steps: ['s3:run_code:running'] })] }),
    );
    expect(stuck.figures).toMatchObject({ lost: 1, stuck: 1 });
    expect(stuck.failures[0]).toContain('s3:run_code:running');
  });

  it('counts duplicates per key and per task, plain-subscriber duplicates apart', () => {
    const { figures } = check(
      observations({
        sandboxExecutions: { k1: 2 },
        effects: { s4: 3 },
        durable: [
          { eventId: 'o1', taskId: 't1', status: 'completed', seenAt: 1 },
          { eventId: 'o2', taskId: 't1', status: 'completed', seenAt: 2 },
        ],
        plain: [
          { eventId: 'o1', taskId: 't1', status: 'completed', seenAt: 1 },
          { eventId: 'o1', taskId: 't1', status: 'completed', seenAt: 1 },
        ],
      }),
    );
    expect(figures).toMatchObject({
      duplicateSandboxRuns: 1,
      duplicateEffects: 2,
      duplicateOutcomes: 1,
      plainDuplicates: 1,
    });
  });

  it('says so when it saw fewer sandbox executions than Postgres stored (a blind counter)', () => {
    const { failures } = check(observations({ sandboxExecutions: {} }));
    expect(failures.join('\n')).toContain('checker blind');
  });

  it('flags a wrong answer, a failure without a typed error, poison tasks and crashes', () => {
    const wrong = check(observations({ tasks: [row({ answer: '41 a-1 200' })] }));
    expect(wrong.figures.wrongStates).toBe(1);
    const untyped = check(
      observations({
        submitted: [
          { label: 'b-1', kind: 'big-output', key: 'e1', via: 'nats', accepted: true, acceptedAt: 0 },
        ],
        tasks: [row({ goalLabel: 'b-1', runStatus: 'failed', answer: null })],
      }),
    );
    expect(untyped.figures.wrongStates).toBe(1);
    // A typed failure by the last-resort stuck sweep still means work was lost on the way.
    const swept = check(
      observations({
        submitted: [
          { label: 'b-1', kind: 'big-output', key: 'e1', via: 'nats', accepted: true, acceptedAt: 0 },
        ],
        tasks: [row({ goalLabel: 'b-1', runStatus: 'failed', answer: null, errorCode: 'TASK.STUCK' })],
      }),
    );
    expect(swept.figures.wrongStates).toBe(1);
    expect(swept.failures.join('\n')).toContain('TASK.STUCK');
    const poison = check(
      observations({ poisonTasks: 2, crashes: ['executor#0 exited on its own (code 1)'] }),
    );
    expect(poison.figures).toMatchObject({ poisonTasks: 2, crashes: 1 });
  });
});
