import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  TaskRequestedCloudEvent,
  toModelTools,
  toolRegistry,
  validatePlan,
  validateToolCall,
  resolveStepReferences,
  type PlanStepDraft,
  type ToolDefinition,
} from '../src/index.js';

type SchemaNode = { [key: string]: unknown };

function isNode(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Walks every object schema and checks OpenAI strict-mode rules. */
function strictProblems(node: unknown, path = ''): string[] {
  if (!isNode(node)) return [];
  const problems: string[] = [];
  if (node['type'] === 'object') {
    const properties = isNode(node['properties']) ? node['properties'] : {};
    const required = Array.isArray(node['required']) ? node['required'] : [];
    if (node['additionalProperties'] !== false) problems.push(`${path}: additionalProperties is not false`);
    for (const name of Object.keys(properties))
      if (!required.includes(name)) problems.push(`${path}/${name}: not required`);
  }
  for (const value of Object.values(node)) {
    if (Array.isArray(value))
      value.forEach((item, index) => problems.push(...strictProblems(item, `${path}/${index}`)));
    else if (isNode(value)) problems.push(...strictProblems(value, path));
  }
  return problems;
}

describe('model tool schemas', () => {
  it('satisfy OpenAI strict mode for every registered tool', () => {
    const tools = toModelTools(toolRegistry.values());
    expect(tools.map((tool) => tool.function.name).sort()).toEqual([
      'ask_human',
      'delete_file',
      'http_request',
      'list_files',
      'read_file',
      'respond',
      'run_code',
      'write_file',
    ]);
    for (const tool of tools) {
      expect(tool.function.strict).toBe(true);
      expect(strictProblems(tool.function.parameters)).toEqual([]);
    }
  });

  it('makes optional properties nullable rather than omitting them', () => {
    const runCode = toModelTools(toolRegistry.values()).find((tool) => tool.function.name === 'run_code');
    const properties = runCode?.function.parameters['properties'];
    expect(isNode(properties) && properties['code']).toEqual({
      anyOf: [
        { type: 'string', minLength: 1, maxLength: 100_000, description: 'The program to run.' },
        { type: 'null' },
      ],
    });
  });
});

describe('model tool schemas of the workspace, HTTP and ask_human tools', () => {
  const parameters = (name: string): SchemaNode => {
    const tool = toModelTools(toolRegistry.values()).find((candidate) => candidate.function.name === name);
    if (!tool) throw new Error(`no tool ${name}`);
    return tool.function.parameters;
  };

  it('sends http_request headers as a strict list of {name, value|null, secret|null}', () => {
    const properties = parameters('http_request')['properties'];
    if (!isNode(properties)) throw new Error('no properties');
    expect(Object.keys(properties).sort()).toEqual(['body', 'headers', 'method', 'url']);
    const headers = properties['headers'];
    expect(isNode(headers) && Array.isArray(headers['anyOf'])).toBe(true);
    const list = isNode(headers) && Array.isArray(headers['anyOf']) ? headers['anyOf'][0] : undefined;
    const item = isNode(list) ? list['items'] : undefined;
    expect(isNode(item) && item['required']).toEqual(['name', 'value', 'secret']);
    expect(isNode(item) && item['additionalProperties']).toBe(false);
    const secret = isNode(item) && isNode(item['properties']) ? item['properties']['secret'] : undefined;
    expect(JSON.stringify(secret)).toContain('^[A-Z][A-Z0-9_]{0,63}$');
  });

  it('describes workspace paths and secrets so a model can use them', () => {
    const tools = new Map(
      toModelTools(toolRegistry.values()).map((tool) => [tool.function.name, tool.function]),
    );
    for (const name of ['read_file', 'write_file', 'delete_file', 'list_files'])
      expect(tools.get(name)?.description).toContain('reports/');
    expect(tools.get('http_request')?.description).toContain('secret');
    expect(tools.get('list_files')?.parameters['required']).toEqual(['prefix']);
    expect(tools.get('ask_human')?.parameters['required']).toEqual(['question', 'choices']);
  });

  it('tells the model that delete_file asks a human and that a missing file is not an error', () => {
    const tool = toModelTools(toolRegistry.values()).find(
      (candidate) => candidate.function.name === 'delete_file',
    );
    expect(tool?.function.description).toMatch(/always asks a human/);
    expect(tool?.function.description).toContain('`deleted` is false');
    expect(tool?.function.parameters).toEqual({
      type: 'object',
      properties: {
        path: {
          type: 'string',
          minLength: 1,
          maxLength: 512,
          description: 'The file, relative to the workspace, e.g. `reports/draft.md`.',
        },
      },
      required: ['path'],
      additionalProperties: false,
    });
  });

  it('declares risk classes and side effects', () => {
    const risk = Object.fromEntries(
      [...toolRegistry.values()].map((tool) => [tool.name, [tool.risk, tool.sideEffects]]),
    );
    expect(risk).toEqual({
      run_code: ['compute', false],
      respond: ['read', false],
      read_file: ['read', false],
      write_file: ['write', false],
      delete_file: ['destructive', false],
      list_files: ['read', false],
      http_request: ['network', true],
      ask_human: ['read', false],
    });
  });
});

describe('validateToolCall', () => {
  const call = (name: string, args: string) => validateToolCall(toolRegistry, { name, arguments: args });

  it('accepts a strict-mode call and treats nulls as absent', () => {
    const result = call('run_code', JSON.stringify({ language: 'python', code: 'result = 1', spec: null }));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.call.arguments).toEqual({ language: 'python', code: 'result = 1' });
  });

  it.each([
    ['run_code', '{"language": "python", "code": "x"', ErrorCodes.TOOL_INVALID_JSON],
    ['run_code', "{'language': 'python'}", ErrorCodes.TOOL_INVALID_JSON],
    ['Run_Code', '{"language":"python","code":"x"}', ErrorCodes.TOOL_UNKNOWN_FUNCTION],
    ['delete_everything', '{}', ErrorCodes.TOOL_UNKNOWN_FUNCTION],
    ['run_code', '{"language":"python","code":"x","shell":true}', ErrorCodes.TOOL_INVALID_ARGUMENTS],
    ['run_code', '{"language":"ruby","code":"x"}', ErrorCodes.TOOL_INVALID_ARGUMENTS],
    ['run_code', '{"language":"python","code":42}', ErrorCodes.TOOL_INVALID_ARGUMENTS],
    ['respond', '[]', ErrorCodes.TOOL_INVALID_ARGUMENTS],
    ['run_code', '{"language":"python"}', ErrorCodes.TOOL_SEMANTIC],
    ['run_code', '{"language":"python","code":"x","spec":"y"}', ErrorCodes.TOOL_SEMANTIC],
  ])('rejects %s %s with %s', (name, args, code) => {
    const result = call(name, args);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe(code);
  });

  it('caps size before parsing and depth before schema checks', () => {
    const big = JSON.stringify({ answer: 'x'.repeat(300 * 1024) });
    const tooBig = call('respond', big);
    expect(!tooBig.ok && tooBig.error.code).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_LARGE);
    const deep = `{"answer":${'['.repeat(40)}1${']'.repeat(40)}}`;
    const tooDeep = call('respond', deep);
    expect(!tooDeep.ok && tooDeep.error.code).toBe(ErrorCodes.TOOL_ARGUMENTS_TOO_DEEP);
  });
});

describe('validatePlan', () => {
  const tool = (name: string): ToolDefinition => {
    const found = toolRegistry.get(name);
    if (!found) throw new Error(name);
    return found;
  };
  const step = (
    key: string,
    name: string,
    args: PlanStepDraft['arguments'],
    dependsOn: string[] = [],
  ): PlanStepDraft => ({
    key,
    tool: tool(name),
    arguments: args,
    dependsOn,
  });

  it('accepts code then respond referring back', () => {
    expect(
      validatePlan(
        [
          step('s1', 'run_code', { language: 'python', code: 'result=1' }),
          step('s2', 'respond', { answer: '{{steps.s1.value}}' }, ['s1']),
        ],
        { maxSteps: 5 },
      ),
    ).toEqual({
      ok: true,
      order: ['s1', 's2'],
      dependencies: new Map([
        ['s1', []],
        ['s2', ['s1']],
      ]),
    });
  });

  it('rejects plans without a final respond, references to missing steps and too many steps', () => {
    const noRespond = validatePlan([step('s1', 'run_code', { language: 'python', code: 'x' })], {
      maxSteps: 5,
    });
    expect(!noRespond.ok && noRespond.error.code).toBe(ErrorCodes.PLAN_MISSING_RESPOND);
    const forward = validatePlan([step('s1', 'respond', { answer: '{{steps.s2.value}}' })], { maxSteps: 5 });
    expect(!forward.ok && forward.error.code).toBe(ErrorCodes.PLAN_UNKNOWN_DEPENDENCY);
    const many = validatePlan(
      [step('s1', 'respond', { answer: 'a' }), step('s2', 'respond', { answer: 'b' })],
      { maxSteps: 1 },
    );
    expect(!many.ok && many.error.code).toBe(ErrorCodes.PLAN_TOO_MANY_STEPS);
  });

  it('resolves references to earlier results', () => {
    const results = new Map([['s1', { value: { sum: 3 }, stdout: 'hello\n' }]]);
    expect(
      resolveStepReferences('v={{steps.s1.value}} out={{ steps.s1.stdout }} x={{steps.s9.value}}', results),
    ).toBe('v={"sum":3} out=hello x={{steps.s9.value}}');
  });
});

describe('TaskRequestedCloudEvent', () => {
  const good = {
    specversion: '1.0',
    id: 'e-1',
    source: 'billing',
    type: 'tandem.task.requested',
    data: { goal: 'sum 1..10' },
  };

  it('accepts extension attributes and rejects unknown data fields', () => {
    expect(TaskRequestedCloudEvent.safeParse({ ...good, traceparent: '00-abc', priority: 3 }).success).toBe(
      true,
    );
    expect(TaskRequestedCloudEvent.safeParse({ ...good, data: { goal: 'x', colour: 'red' } }).success).toBe(
      false,
    );
  });

  it('rejects a wrong type, a missing goal, bad extension names and binary data', () => {
    expect(TaskRequestedCloudEvent.safeParse({ ...good, type: 'tandem.task.created' }).success).toBe(false);
    expect(TaskRequestedCloudEvent.safeParse({ ...good, data: {} }).success).toBe(false);
    expect(TaskRequestedCloudEvent.safeParse({ ...good, Bad_Name: 'x' }).success).toBe(false);
    expect(TaskRequestedCloudEvent.safeParse({ ...good, data_base64: 'AA==' }).success).toBe(false);
    expect(TaskRequestedCloudEvent.safeParse({ ...good, specversion: '0.3' }).success).toBe(false);
  });
});
