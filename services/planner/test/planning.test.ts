import { describe, expect, it } from 'vitest';
import {
  DEFAULT_TOOL_CALL_LIMITS,
  DEFAULT_TOOL_CHECK_CONTEXT,
  ErrorCodes,
  toolRegistry,
  type LearningPatternsReply,
} from '@tandem/contracts';
import { ChatMessage as WireChatMessage } from '@tandem/testing';
import {
  checkModelPlan,
  initialMessages,
  planningSystemPrompt,
  planningTools,
  type ChatMessage,
  type ModelToolCall,
  type PlanCheck,
} from '../src/domain/planning.js';
import { planQuality, riskMixOf } from '../src/domain/quality.js';

const LIMITS = { ...DEFAULT_TOOL_CALL_LIMITS, maxSteps: 20 };

function runCodeCall(id: string, args: Record<string, unknown>): ModelToolCall {
  return { id, name: 'run_code', arguments: JSON.stringify(args) };
}

function respondCall(id: string, answer: string): ModelToolCall {
  return { id, name: 'respond', arguments: JSON.stringify({ answer }) };
}

function rejected(check: PlanCheck): Extract<PlanCheck, { ok: false }> {
  if (check.ok) throw new Error(`expected the plan to be rejected, got ${check.steps.length} valid steps`);
  return check;
}

function accepted(check: PlanCheck): Extract<PlanCheck, { ok: true }> {
  if (!check.ok)
    throw new Error(`expected the plan to be accepted, got ${check.error.code}: ${check.error.message}`);
  return check;
}

function toolMessages(feedback: ChatMessage[]): Array<Extract<ChatMessage, { role: 'tool' }>> {
  return feedback.flatMap((message) => (message.role === 'tool' ? [message] : []));
}

/** Every feedback message must be a chat message the API (here: the scripted server's schema) accepts. */
function expectWireValid(feedback: ChatMessage[]): void {
  for (const message of feedback) expect(WireChatMessage.safeParse(message).success).toBe(true);
}

describe('checkModelPlan', () => {
  it('accepts run_code then respond, treating strict-mode nulls as absent', () => {
    const check = accepted(
      checkModelPlan(
        toolRegistry,
        [
          runCodeCall('call_a', { language: 'python', code: null, spec: 'sum the first 10 squares' }),
          respondCall('call_b', 'The sum is {{steps.s1.value}}.'),
        ],
        null,
        LIMITS,
      ),
    );
    expect(check.steps.map((step) => [step.key, step.tool.name])).toEqual([
      ['s1', 'run_code'],
      ['s2', 'respond'],
    ]);
    expect(check.steps[0]?.arguments).toEqual({ language: 'python', spec: 'sum the first 10 squares' });
    expect(check.steps[0]?.dependsOn).toEqual([]);
    expect(check.steps[1]?.dependsOn).toEqual(['s1']);
  });

  it('derives dependsOn from every {{steps.sX.value|stdout}} reference, once per step', () => {
    const check = accepted(
      checkModelPlan(
        toolRegistry,
        [
          runCodeCall('c1', { language: 'javascript', spec: 'compute a' }),
          runCodeCall('c2', { language: 'python', spec: 'compute b' }),
          respondCall(
            'c3',
            'a={{steps.s1.value}} sum={{ steps.s1.value.sum }} out={{steps.s2.stdout}} again {{steps.s2.value}}',
          ),
        ],
        'thinking aloud',
        LIMITS,
      ),
    );
    expect(check.steps[2]?.dependsOn).toEqual(['s1', 's2']);
    expect(check.steps[1]?.dependsOn).toEqual([]);
  });

  it('answers a malformed-JSON call with one tool message per call and a user message', () => {
    const calls = [
      runCodeCall('call_1', { language: 'python', spec: 'x' }),
      { id: 'call_2', name: 'run_code', arguments: '{"language": "python", "spec": "y"' },
      respondCall('call_3', 'done: {{steps.s1.value}}'),
    ];
    const check = rejected(checkModelPlan(toolRegistry, calls, null, LIMITS));
    expect(check.error.code).toBe(ErrorCodes.TOOL_INVALID_JSON);
    expect(check.error.stepId).toBe('s2');
    expect(check.invalidCalls).toBe(1);

    const [assistant, ...rest] = check.feedback;
    expect(assistant).toEqual({
      role: 'assistant',
      content: null,
      tool_calls: calls.map((call) => ({
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: call.arguments },
      })),
    });
    const tools = toolMessages(check.feedback);
    expect(tools.map((message) => message.tool_call_id)).toEqual(['call_1', 'call_2', 'call_3']);
    expect(tools[0]?.content).toBe('Step s1 is valid, but the plan as a whole was rejected.');
    expect(tools[1]?.content).toMatch(/^Rejected step s2: TOOL\.INVALID_JSON: /);
    expect(tools[2]?.content).toBe('Step s3 is valid, but the plan as a whole was rejected.');
    const last = rest[rest.length - 1];
    expect(last?.role).toBe('user');
    expect(last?.role === 'user' && last.content).toContain('TOOL.INVALID_JSON');
    expect(check.feedback).toHaveLength(1 + calls.length + 1);
    expectWireValid(check.feedback);
  });

  it('counts every invalid call and reports the first error with its step id', () => {
    const calls: ModelToolCall[] = [
      respondCall('ok_1', 'fine'),
      { id: 'bad_2', name: 'delete_everything', arguments: '{}' },
      runCodeCall('bad_3', { language: 'ruby', code: 'puts 1' }),
      runCodeCall('bad_4', { language: 'python', code: 'result = 1', spec: 'one' }),
      respondCall('ok_5', 'the end'),
    ];
    const check = rejected(checkModelPlan(toolRegistry, calls, 'plan', LIMITS));
    expect(check.invalidCalls).toBe(3);
    expect(check.error.code).toBe(ErrorCodes.TOOL_UNKNOWN_FUNCTION);
    expect(check.error.stepId).toBe('s2');
    const tools = toolMessages(check.feedback);
    expect(tools).toHaveLength(5);
    expect(tools.map((message) => message.content.split(':')[0])).toEqual([
      'Step s1 is valid, but the plan as a whole was rejected.',
      'Rejected step s2',
      'Rejected step s3',
      'Rejected step s4',
      'Step s5 is valid, but the plan as a whole was rejected.',
    ]);
    expect(tools[1]?.content).toContain(ErrorCodes.TOOL_UNKNOWN_FUNCTION);
    expect(tools[2]?.content).toContain(ErrorCodes.TOOL_INVALID_ARGUMENTS);
    expect(tools[3]?.content).toContain(ErrorCodes.TOOL_SEMANTIC);
    expect(check.feedback[check.feedback.length - 1]).toMatchObject({ role: 'user' });
    expectWireValid(check.feedback);
  });

  it.each([
    [
      'an unknown property',
      { language: 'python', code: 'x', shell: true },
      ErrorCodes.TOOL_INVALID_ARGUMENTS,
    ],
    ['neither code nor spec', { language: 'python' }, ErrorCodes.TOOL_SEMANTIC],
    ['a wrong type', { language: 'python', code: 42 }, ErrorCodes.TOOL_INVALID_ARGUMENTS],
  ])('rejects run_code with %s as step s1', (_label, args, code) => {
    const check = rejected(
      checkModelPlan(toolRegistry, [runCodeCall('c1', args), respondCall('c2', 'x')], null, LIMITS),
    );
    expect(check.error.code).toBe(code);
    expect(check.error.stepId).toBe('s1');
    expect(check.invalidCalls).toBe(1);
    expect(toolMessages(check.feedback)).toHaveLength(2);
  });

  it('rejects an answer without tool calls with PLAN.NO_TOOL_CALLS and echoes the content back', () => {
    const check = rejected(checkModelPlan(toolRegistry, [], 'The answer is 42.', LIMITS));
    expect(check.error.code).toBe(ErrorCodes.PLAN_NO_TOOL_CALLS);
    expect(check.invalidCalls).toBe(0);
    expect(check.feedback).toHaveLength(2);
    expect(check.feedback[0]).toEqual({ role: 'assistant', content: 'The answer is 42.' });
    expect(check.feedback[1]?.role).toBe('user');
    expect(toolMessages(check.feedback)).toEqual([]);
    expectWireValid(check.feedback);
  });

  it('rejects a plan of valid calls without respond with PLAN.MISSING_RESPOND', () => {
    const check = rejected(
      checkModelPlan(toolRegistry, [runCodeCall('c1', { language: 'python', spec: 'x' })], null, LIMITS),
    );
    expect(check.error.code).toBe(ErrorCodes.PLAN_MISSING_RESPOND);
    expect(check.invalidCalls).toBe(0);
    const tools = toolMessages(check.feedback);
    expect(tools).toEqual([
      {
        role: 'tool',
        tool_call_id: 'c1',
        content: 'Step s1 is valid, but the plan as a whole was rejected.',
      },
    ]);
    const last = check.feedback[check.feedback.length - 1];
    expect(last?.role === 'user' && last.content).toContain(ErrorCodes.PLAN_MISSING_RESPOND);
    expectWireValid(check.feedback);
  });

  it('rejects respond that is not last with PLAN.MISSING_RESPOND', () => {
    const check = rejected(
      checkModelPlan(
        toolRegistry,
        [respondCall('c1', 'early'), runCodeCall('c2', { language: 'python', spec: 'late' })],
        null,
        LIMITS,
      ),
    );
    expect(check.error.code).toBe(ErrorCodes.PLAN_MISSING_RESPOND);
  });

  it('rejects a reference to a later step with PLAN.BAD_REFERENCE and the referring step id', () => {
    const check = rejected(
      checkModelPlan(
        toolRegistry,
        [
          runCodeCall('c1', { language: 'python', spec: 'use {{steps.s2.value}}' }),
          respondCall('c2', 'done'),
        ],
        null,
        LIMITS,
      ),
    );
    expect(check.error.code).toBe(ErrorCodes.PLAN_BAD_REFERENCE);
    expect(check.error.stepId).toBe('s1');
    expect(check.invalidCalls).toBe(0);
  });

  it('rejects more steps than maxSteps with PLAN.TOO_MANY_STEPS', () => {
    const calls = [
      runCodeCall('c1', { language: 'python', spec: 'a' }),
      runCodeCall('c2', { language: 'python', spec: 'b' }),
      respondCall('c3', 'done'),
    ];
    expect(rejected(checkModelPlan(toolRegistry, calls, null, { ...LIMITS, maxSteps: 2 })).error.code).toBe(
      ErrorCodes.PLAN_TOO_MANY_STEPS,
    );
    expect(checkModelPlan(toolRegistry, calls, null, { ...LIMITS, maxSteps: 3 }).ok).toBe(true);
  });

  it('rejects arguments over the byte limit with TOOL.ARGUMENTS_TOO_LARGE', () => {
    const check = rejected(
      checkModelPlan(toolRegistry, [respondCall('c1', 'x'.repeat(200))], null, {
        ...LIMITS,
        maxArgumentBytes: 100,
      }),
    );
    expect(check.error.code).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE);
    expect(check.error.stepId).toBe('s1');
  });
});

describe('planQuality', () => {
  const clean = {
    structural: 1,
    rejections: 0,
    invalidCalls: 0,
    stepCount: 2,
    maxSteps: 20,
    riskMix: riskMixOf(['compute', 'read']),
    estimatedCostUsd: 0,
    budgetUsd: null,
    strategySuccess: null,
  };

  it('is 1 for a clean, small, low-risk plan without history', () => {
    expect(planQuality(clean)).toBe(1);
  });

  it('subtracts 0.2 per rejected answer and 0.05 per invalid call', () => {
    expect(planQuality({ ...clean, rejections: 1 })).toBeCloseTo(0.8);
    expect(planQuality({ ...clean, invalidCalls: 2 })).toBeCloseTo(0.9);
  });

  it('penalises plans longer than half the step limit', () => {
    expect(planQuality({ ...clean, stepCount: 11 })).toBeCloseTo(0.9);
  });

  it('ranks network and destructive steps below read and compute', () => {
    const risky = planQuality({ ...clean, riskMix: riskMixOf(['network', 'destructive']) });
    expect(risky).toBeLessThan(1);
    expect(risky).toBeLessThan(planQuality({ ...clean, riskMix: riskMixOf(['write', 'read']) }));
  });

  it('penalises a plan estimated near its cost budget', () => {
    expect(planQuality({ ...clean, estimatedCostUsd: 0.9, budgetUsd: 1 })).toBeCloseTo(0.9);
    expect(planQuality({ ...clean, estimatedCostUsd: 0.1, budgetUsd: 1 })).toBe(1);
  });

  it('blends in the historical success of the strategy', () => {
    expect(planQuality({ ...clean, strategySuccess: 0.5 })).toBeCloseTo(0.9);
    expect(planQuality({ ...clean, strategySuccess: 1 })).toBe(1);
  });

  it('stays between 0 and 1', () => {
    expect(planQuality({ ...clean, rejections: 10, invalidCalls: 50, stepCount: 20 })).toBeGreaterThanOrEqual(
      0,
    );
  });
});

describe('initialMessages', () => {
  const patterns: LearningPatternsReply['patterns'] = [
    {
      id: '7c6f3f0e-2f4e-4d1a-9a53-0c8f0f5d9a11',
      type: 'strategy',
      scope: 'kind:math',
      content: 'Plans shaped run_code -> respond succeeded 4 of 5 times.',
      successCount: 4,
      failureCount: 1,
      confidence: 0.714285,
    },
    {
      id: '0b1d2c3e-4f50-4617-8a9b-c0d1e2f3a4b5',
      type: 'error_recovery',
      scope: 'kind:math',
      content: 'Python programs must assign result.',
      successCount: 0,
      failureCount: 2,
      confidence: 0.25,
    },
  ];

  it('puts every learned pattern into the system prompt, in order', () => {
    const [system] = initialMessages({ goal: 'Add numbers', input: undefined, kind: 'math', patterns });
    expect(system?.role).toBe('system');
    const content = system?.role === 'system' ? system.content : '';
    expect(content).toContain(
      '[strategy, confidence 0.71, 4 ok / 1 failed] Plans shaped run_code -> respond succeeded 4 of 5 times.',
    );
    expect(content).toContain(
      '[error_recovery, confidence 0.25, 0 ok / 2 failed] Python programs must assign result.',
    );
    expect(content.indexOf('Plans shaped')).toBeLessThan(content.indexOf('Python programs must'));
  });

  it('leaves the learned section out when there are no patterns', () => {
    const prompt = planningSystemPrompt([]);
    expect(prompt).toContain('respond');
    expect(prompt).not.toContain('learned');
    expect(planningSystemPrompt(patterns)).toContain('learned');
  });

  it('sends goal, kind and input as JSON in the user message', () => {
    const messages = initialMessages({
      goal: 'Sum the list',
      input: { numbers: [1, 2, 3] },
      kind: 'math',
      patterns: [],
    });
    expect(messages).toHaveLength(2);
    const user = messages[1];
    expect(user?.role).toBe('user');
    const content = user?.role === 'user' ? user.content : '';
    expect(content.startsWith('Plan this task:\n')).toBe(true);
    const task: unknown = JSON.parse(content.slice('Plan this task:\n'.length));
    expect(task).toEqual({ goal: 'Sum the list', kind: 'math', input: { numbers: [1, 2, 3] } });
  });

  it('omits input when the task has none, but keeps an explicit null', () => {
    const without = initialMessages({ goal: 'Say hi', input: undefined, kind: 'general', patterns: [] })[1];
    const withNull = initialMessages({ goal: 'Say hi', input: null, kind: 'general', patterns: [] })[1];
    expect(without?.role === 'user' && JSON.parse(without.content.slice('Plan this task:\n'.length))).toEqual(
      { goal: 'Say hi', kind: 'general' },
    );
    expect(
      withNull?.role === 'user' && JSON.parse(withNull.content.slice('Plan this task:\n'.length)),
    ).toEqual({
      goal: 'Say hi',
      kind: 'general',
      input: null,
    });
  });
});

describe('planningTools', () => {
  it('offers every registered tool in strict mode, each with dependsOn and rationale', () => {
    const tools = planningTools(toolRegistry);
    expect(tools.map((tool) => tool.function.name).sort()).toEqual([...toolRegistry.keys()].sort());
    expect(tools.every((tool) => tool.function.strict)).toBe(true);
    for (const tool of tools) {
      const parameters = tool.function.parameters;
      expect(parameters['required']).toEqual(expect.arrayContaining(['dependsOn', 'rationale']));
      expect(parameters['additionalProperties']).toBe(false);
    }
  });

  it('splits dependsOn and rationale off the stored arguments and orders steps by dependency', () => {
    const check = accepted(
      checkModelPlan(
        toolRegistry,
        [
          {
            id: 'a',
            name: 'write_file',
            arguments: JSON.stringify({
              path: 'notes/a.txt',
              content: 'hi',
              dependsOn: null,
              rationale: 'keep it',
            }),
          },
          {
            id: 'b',
            name: 'read_file',
            arguments: JSON.stringify({ path: 'notes/a.txt', dependsOn: ['s1'], rationale: null }),
          },
          respondCall('c', 'Read: {{steps.s2.value.content}}'),
        ],
        null,
        LIMITS,
      ),
    );
    expect(check.steps.map((step) => step.key)).toEqual(['s1', 's2', 's3']);
    expect(check.steps[0]?.arguments).toEqual({ path: 'notes/a.txt', content: 'hi' });
    expect(check.steps[0]?.rationale).toBe('keep it');
    expect(check.steps[1]?.dependsOn).toEqual(['s1']);
    expect(check.steps[2]?.dependsOn).toEqual(['s2']);
  });

  it('rejects a dependency cycle with PLAN.CYCLE', () => {
    const check = rejected(
      checkModelPlan(
        toolRegistry,
        [
          { id: 'a', name: 'read_file', arguments: JSON.stringify({ path: 'a', dependsOn: ['s2'] }) },
          { id: 'b', name: 'read_file', arguments: JSON.stringify({ path: 'b', dependsOn: ['s1'] }) },
          respondCall('c', 'done'),
        ],
        null,
        LIMITS,
      ),
    );
    expect(check.error.code).toBe(ErrorCodes.PLAN_CYCLE);
  });

  it('rejects a 500-step plan before validating any call', () => {
    const calls = Array.from({ length: 500 }, (_, index) => ({
      id: `c${index}`,
      name: 'FS.READ',
      arguments: '{',
    }));
    const check = rejected(checkModelPlan(toolRegistry, calls, null, LIMITS));
    expect(check.error.code).toBe(ErrorCodes.PLAN_TOO_MANY_STEPS);
    expect(check.invalidCalls).toBe(0);
  });

  it('rejects an http_request to a host outside the allow-list and accepts an allowed one', () => {
    const call = (url: string) => ({
      id: 'h',
      name: 'http_request',
      arguments: JSON.stringify({ method: 'GET', url }),
    });
    const context = {
      ...DEFAULT_TOOL_CHECK_CONTEXT,
      http: { allowHosts: ['api.example.com'], allowHttp: false },
    };
    expect(
      rejected(
        checkModelPlan(
          toolRegistry,
          [call('https://169.254.169.254/'), respondCall('r', 'x')],
          null,
          LIMITS,
          context,
        ),
      ).error.code,
    ).toBe(ErrorCodes.TOOL_URL_REJECTED);
    accepted(
      checkModelPlan(
        toolRegistry,
        [call('https://api.example.com/v1'), respondCall('r', 'x')],
        null,
        LIMITS,
        context,
      ),
    );
  });
});
