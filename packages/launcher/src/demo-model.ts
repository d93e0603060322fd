import {
  createScriptedModelServer,
  type ChatRequestRecord,
  type ScriptedReply,
  type ScriptedModelServer,
} from '@tandem/testing';

/** The task `pnpm start` submits when it runs on the demo model. */
export const DEMO_TASK = {
  goal: 'Compute the first 20 Fibonacci numbers and their sum.',
  kind: 'demo.fibonacci',
  input: { count: 20 },
} as const;

const DEMO_CODE = [
  'count = int(input["count"]) if isinstance(input, dict) and "count" in input else 20',
  'numbers = [0, 1]',
  'while len(numbers) < count:',
  '    numbers.append(numbers[-1] + numbers[-2])',
  'numbers = numbers[:count]',
  'print(f"computed {len(numbers)} Fibonacci numbers")',
  'result = {"numbers": numbers, "sum": sum(numbers)}',
].join('\n');

function lastUserText(request: ChatRequestRecord): string {
  const users = request.body.messages.filter((message) => message.role === 'user');
  const last = users[users.length - 1];
  return last && typeof last.content === 'string' ? last.content : '';
}

/**
 * The demo model: a real OpenAI-compatible HTTP server with scripted answers, used when no model endpoint
 * is configured. It can plan and code the demo task; any other goal gets a plan that says so.
 */
export function demoReply(request: ChatRequestRecord): ScriptedReply {
  const text = lastUserText(request);
  const isPlanning = (request.body.tools ?? []).length > 0;
  const isDemo = /fibonacci/i.test(text);
  if (isPlanning) {
    if (!isDemo) {
      return {
        toolCalls: [
          {
            name: 'respond',
            arguments: {
              answer:
                'Tandem is running on its demo model, which can only plan the built-in Fibonacci demo. Set OPENAI_BASE_URL, OPENAI_API_KEY and TANDEM_PLANNING_MODEL / TANDEM_CODE_MODEL to use a real model.',
            },
          },
        ],
      };
    }
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: null,
            spec: 'Compute the first input.count Fibonacci numbers (starting 0, 1) and their sum; set result = {"numbers": [...], "sum": n}.',
          },
        },
        {
          name: 'respond',
          arguments: { answer: 'The first 20 Fibonacci numbers sum to {{steps.s1.value.sum}}.' },
        },
      ],
    };
  }
  return { content: `\`\`\`python\n${DEMO_CODE}\n\`\`\`` };
}

/** Starts the demo model server on 127.0.0.1. */
export function startDemoModel(): Promise<ScriptedModelServer> {
  return createScriptedModelServer({
    match: demoReply,
    models: ['tandem-demo-planner', 'tandem-demo-coder'],
  });
}
