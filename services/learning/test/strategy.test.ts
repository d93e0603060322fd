import { describe, expect, it } from 'vitest';
import {
  StrategyProvenance,
  applyOutcome,
  confidence,
  nextStrategy,
  outcomeOf,
  strategyContent,
  strategyKey,
  type Outcome,
} from '../src/domain/strategy.js';

const EMPTY = StrategyProvenance.parse({});

let counter = 0;

function outcome(succeeded: boolean, tools: string[], error: Outcome['error'] = null): Outcome {
  counter += 1;
  return {
    eventId: `event-${counter}`,
    eventType: succeeded ? 'task.completed' : 'task.failed',
    taskId: `task-${counter}`,
    kind: 'math',
    succeeded,
    tools,
    error,
    at: new Date(Date.UTC(2025, 0, 1, 0, 0, counter)).toISOString(),
  };
}

function applyAll(outcomes: Outcome[], start: StrategyProvenance = EMPTY): StrategyProvenance {
  return outcomes.reduce(applyOutcome, start);
}

describe('StrategyProvenance', () => {
  it('defaults every part to empty', () => {
    expect(EMPTY).toEqual({ events: [], sequences: {}, recentErrors: [] });
  });
});

describe('applyOutcome', () => {
  it('counts successes and failures per tool sequence', () => {
    const provenance = applyAll([
      outcome(true, ['run_code', 'respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(false, ['run_code', 'respond']),
      outcome(true, ['respond']),
      outcome(false, ['run_code', 'run_code', 'respond']),
    ]);
    expect(provenance.sequences).toEqual({
      'run_code -> respond': { successes: 2, failures: 1 },
      respond: { successes: 1, failures: 0 },
      'run_code -> run_code -> respond': { successes: 0, failures: 1 },
    });
  });

  it('files an outcome without a plan under "(no plan)"', () => {
    const provenance = applyOutcome(
      EMPTY,
      outcome(false, [], { code: 'PLAN.REJECTED', message: 'no valid plan' }),
    );
    expect(provenance.sequences).toEqual({ '(no plan)': { successes: 0, failures: 1 } });
  });

  it('records each event with id, type, task and time', () => {
    const first = outcome(true, ['respond']);
    const provenance = applyOutcome(EMPTY, first);
    expect(provenance.events).toEqual([
      { id: first.eventId, type: first.eventType, taskId: first.taskId, at: first.at },
    ]);
  });

  it('keeps the newest 100 events and drops the oldest', () => {
    const outcomes = Array.from({ length: 130 }, (_, index) => outcome(index % 2 === 0, ['respond']));
    const provenance = applyAll(outcomes);
    expect(provenance.events).toHaveLength(100);
    expect(provenance.events[0]?.id).toBe(outcomes[30]?.eventId);
    expect(provenance.events[99]?.id).toBe(outcomes[129]?.eventId);
    // Counts are not capped: every outcome is counted.
    expect(provenance.sequences['respond']).toEqual({ successes: 65, failures: 65 });
  });

  it('keeps the newest 5 errors and only from outcomes that carry one', () => {
    const outcomes = Array.from({ length: 8 }, (_, index) =>
      outcome(false, ['run_code', 'respond'], { code: `STEP.E${index}`, message: `failure ${index}` }),
    );
    const provenance = applyAll([...outcomes, outcome(true, ['run_code', 'respond'])]);
    expect(provenance.recentErrors.map((error) => error.code)).toEqual([
      'STEP.E3',
      'STEP.E4',
      'STEP.E5',
      'STEP.E6',
      'STEP.E7',
    ]);
  });

  it('cuts error messages to 200 characters', () => {
    const provenance = applyOutcome(
      EMPTY,
      outcome(false, ['respond'], { code: 'STEP.FAILED', message: 'y'.repeat(500) }),
    );
    expect(provenance.recentErrors[0]?.message).toBe('y'.repeat(200));
  });

  it('leaves the previous provenance untouched', () => {
    const previous = applyOutcome(EMPTY, outcome(true, ['respond']));
    const snapshot = structuredClone(previous);
    applyOutcome(previous, outcome(false, ['respond'], { code: 'STEP.FAILED', message: 'boom' }));
    expect(previous).toEqual(snapshot);
  });
});

describe('confidence', () => {
  it('is Laplace-smoothed: (successes + 1) / (total + 2)', () => {
    expect(confidence(0, 0)).toBe(0.5);
    expect(confidence(1, 0)).toBeCloseTo(2 / 3);
    expect(confidence(0, 1)).toBeCloseTo(1 / 3);
    expect(confidence(9, 1)).toBeCloseTo(10 / 12);
  });

  it('grows with evidence but never reaches 1', () => {
    expect(confidence(10, 0)).toBeGreaterThan(confidence(1, 0));
    expect(confidence(1000, 0)).toBeLessThan(1);
  });
});

describe('strategyContent', () => {
  it('says when there is no outcome yet', () => {
    expect(strategyContent('math', EMPTY)).toBe('No outcome of "math" tasks yet.');
  });

  it('names the most reliable successful sequence with its counts', () => {
    const provenance = applyAll([
      outcome(true, ['respond']),
      outcome(false, ['respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(false, ['run_code', 'respond']),
    ]);
    expect(strategyContent('math', provenance)).toBe(
      'For "math" tasks, plans shaped run_code -> respond succeeded 3 of 4 times.',
    );
  });

  it('prefers more successes when confidence ties', () => {
    const provenance = applyAll([
      outcome(true, ['respond']),
      outcome(false, ['respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(true, ['run_code', 'respond']),
      outcome(false, ['run_code', 'respond']),
      outcome(false, ['run_code', 'respond']),
    ]);
    expect(strategyContent('math', provenance)).toContain(
      'plans shaped run_code -> respond succeeded 2 of 4 times.',
    );
  });

  it('lists sequences that failed more often than not and the last error', () => {
    const provenance = applyAll([
      outcome(true, ['run_code', 'respond']),
      outcome(false, ['respond'], { code: 'PLAN.MISSING_RESPOND', message: 'first' }),
      outcome(false, ['run_code', 'run_code', 'respond'], {
        code: 'SANDBOX.TIMEOUT',
        message: 'the program ran past its time limit',
      }),
    ]);
    const content = strategyContent('math', provenance);
    expect(content).toContain('plans shaped run_code -> respond succeeded 1 of 1 times.');
    expect(content).toContain('Plans shaped ');
    expect(content).toContain('respond; ');
    expect(content).toContain('run_code -> run_code -> respond');
    expect(content).toContain('failed more often than not.');
    expect(content.endsWith('A recent failure: SANDBOX.TIMEOUT: the program ran past its time limit')).toBe(
      true,
    );
    expect(content).not.toContain('first');
  });

  it('names no best sequence when nothing succeeded yet', () => {
    const provenance = applyAll([outcome(false, ['respond'], { code: 'STEP.FAILED', message: 'bad' })]);
    const content = strategyContent('math', provenance);
    expect(content).not.toContain('succeeded');
    expect(content).toBe(
      'Plans shaped respond failed more often than not. A recent failure: STEP.FAILED: bad',
    );
  });
});

describe('outcomeOf', () => {
  const base = {
    specversion: '1.0' as const,
    source: '/tandem/executor',
    time: '2026-12-07T10:00:00.000Z',
    datacontenttype: 'application/json' as const,
    subject: '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10',
  };
  const data = {
    taskId: '0b6f3c2e-8f43-4a55-9d3c-2f4a1d7e9b10',
    request: { source: 'urn:acme', id: 'e1' },
  };

  it('reads a completion as a success of its kind with its tools', () => {
    expect(
      outcomeOf({
        ...base,
        id: 'e-1',
        type: 'tandem.task.completed',
        data: {
          ...data,
          status: 'completed',
          result: { answer: '5', steps: [] },
          kind: 'arithmetic',
          tools: ['run_code', 'respond'],
        },
      }),
    ).toEqual({
      eventId: 'e-1',
      eventType: 'tandem.task.completed',
      taskId: data.taskId,
      kind: 'arithmetic',
      succeeded: true,
      tools: ['run_code', 'respond'],
      error: null,
      at: '2026-12-07T10:00:00.000Z',
    });
  });

  it('reads a failure with its error, kind general and no tools when the event gives none', () => {
    expect(
      outcomeOf({
        ...base,
        id: 'e-2',
        type: 'tandem.task.failed',
        data: {
          ...data,
          status: 'failed',
          error: { code: 'SANDBOX.TIMEOUT', message: 'slow', retryable: false },
        },
      }),
    ).toMatchObject({
      kind: 'general',
      succeeded: false,
      tools: [],
      error: { code: 'SANDBOX.TIMEOUT', message: 'slow' },
    });
  });
});

describe('strategyKey', () => {
  it('keeps one strategy pattern per kind of task', () => {
    expect(strategyKey('arithmetic')).toEqual({
      type: 'strategy',
      scope: 'kind:arithmetic',
      signature: 'plan-shape',
    });
  });
});

describe('nextStrategy', () => {
  it('counts the outcome, recomputes confidence and text, and activates at minSuccesses', () => {
    const first = nextStrategy(
      { successCount: 0, failureCount: 0, provenance: EMPTY },
      outcome(true, ['run_code', 'respond']),
      2,
    );
    expect(first).toMatchObject({
      successCount: 1,
      failureCount: 0,
      confidence: confidence(1, 0),
      status: 'candidate',
    });
    expect(first.content).toBe(strategyContent('math', first.provenance));
    const second = nextStrategy(first, outcome(true, ['run_code', 'respond']), 2);
    expect(second).toMatchObject({ successCount: 2, failureCount: 0, status: 'active' });
    expect(second.provenance.events).toHaveLength(2);
  });

  it('counts a failure without making the pattern active', () => {
    const next = nextStrategy(
      { successCount: 0, failureCount: 3, provenance: EMPTY },
      outcome(false, ['respond'], { code: 'X.Y', message: 'bad' }),
      1,
    );
    expect(next).toMatchObject({ successCount: 0, failureCount: 4, status: 'candidate' });
    expect(next.provenance.recentErrors).toEqual([{ code: 'X.Y', message: 'bad' }]);
  });
});
