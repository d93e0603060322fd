import { describe, expect, it } from 'vitest';
import { ChatCompletionRequest, type ChatRequestRecord, type ScriptedReply } from '@tandem/testing';
import { DEMO_TASK, demoReply } from '../src/demo-model.js';

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'run_code',
      description: 'Run a program',
      parameters: { type: 'object' },
      strict: true,
    },
  },
  {
    type: 'function',
    function: { name: 'respond', description: 'Answer', parameters: { type: 'object' }, strict: true },
  },
];

let index = 0;

function record(body: unknown): ChatRequestRecord {
  index += 1;
  const parsed = ChatCompletionRequest.parse(body);
  const rawBody = JSON.stringify(body);
  return {
    index,
    method: 'POST',
    path: '/v1/chat/completions',
    headers: {},
    hasAuthorization: false,
    body: parsed,
    rawBody,
    status: undefined,
  };
}

function planningRequest(goal: string): ChatRequestRecord {
  return record({
    model: 'tandem-demo-planner',
    tools: TOOLS,
    messages: [
      { role: 'system', content: 'You are the planning model of Tandem.' },
      { role: 'user', content: `Plan this task:\n${JSON.stringify({ goal, kind: 'demo' }, null, 2)}` },
    ],
  });
}

function codeRequest(spec: string): ChatRequestRecord {
  return record({
    model: 'tandem-demo-coder',
    messages: [
      { role: 'system', content: 'You write python programs for Tandem.' },
      { role: 'user', content: `Task goal: ${DEMO_TASK.goal}\n\nWrite a program that does this:\n${spec}` },
    ],
  });
}

function toolCalls(reply: ScriptedReply): Array<{ name: string; arguments: unknown }> {
  if (!('toolCalls' in reply)) throw new Error(`expected tool calls, got ${JSON.stringify(reply)}`);
  return reply.toolCalls.map((call) => ({ name: call.name, arguments: call.arguments }));
}

function content(reply: ScriptedReply): string {
  if (!('content' in reply) || typeof reply.content !== 'string')
    throw new Error(`expected content, got ${JSON.stringify(reply)}`);
  return reply.content;
}

describe('demoReply', () => {
  it('plans run_code then respond for the Fibonacci demo goal', () => {
    const calls = toolCalls(demoReply(planningRequest(DEMO_TASK.goal)));
    expect(calls.map((call) => call.name)).toEqual(['run_code', 'respond']);
    expect(calls[0]?.arguments).toMatchObject({ language: 'python', code: null });
    expect(calls[0]?.arguments).toHaveProperty('spec', expect.stringContaining('Fibonacci'));
    expect(calls[1]?.arguments).toEqual({ answer: expect.stringContaining('{{steps.s1.value.sum}}') });
  });

  it('recognises Fibonacci in any case', () => {
    expect(toolCalls(demoReply(planningRequest('list FIBONACCI numbers'))).map((call) => call.name)).toEqual([
      'run_code',
      'respond',
    ]);
  });

  it('plans a single respond that explains the demo model for any other goal', () => {
    const calls = toolCalls(demoReply(planningRequest('Summarise the news')));
    expect(calls.map((call) => call.name)).toEqual(['respond']);
    expect(calls[0]?.arguments).toEqual({ answer: expect.stringContaining('demo model') });
    expect(JSON.stringify(calls[0]?.arguments)).toContain('OPENAI_BASE_URL');
  });

  it('reads the goal from the last user message, so a repair turn still plans the demo', () => {
    const reply = demoReply(
      record({
        model: 'tandem-demo-planner',
        tools: TOOLS,
        messages: [
          { role: 'system', content: 'You are the planning model of Tandem.' },
          { role: 'user', content: 'Plan this task: say hello' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'respond', arguments: '{}' } }],
          },
          { role: 'tool', tool_call_id: 'c1', content: 'Rejected step s1' },
          { role: 'user', content: 'The plan was rejected. Plan the Fibonacci task again.' },
        ],
      }),
    );
    expect(toolCalls(reply).map((call) => call.name)).toEqual(['run_code', 'respond']);
  });

  it('answers a code request (no tools) with one fenced python block', () => {
    const text = content(
      demoReply(codeRequest('Compute the first input.count Fibonacci numbers and their sum.')),
    );
    const blocks = [...text.matchAll(/```python\n([\s\S]*?)\n```/g)];
    expect(blocks).toHaveLength(1);
    expect(text.trim()).toBe(blocks[0]?.[0]);
    const code = blocks[0]?.[1] ?? '';
    expect(code).toContain('input["count"]');
    expect(code).toMatch(/^result = \{"numbers": numbers, "sum": sum\(numbers\)\}$/m);
  });

  it('answers with code even when the code request says nothing about Fibonacci', () => {
    expect(content(demoReply(codeRequest('Add two numbers.')))).toMatch(/^```python\n[\s\S]+\n```$/);
  });

  it('submits a demo task that asks for Fibonacci numbers with an input count', () => {
    expect(DEMO_TASK.goal).toMatch(/fibonacci/i);
    expect(DEMO_TASK.input.count).toBe(20);
  });
});
