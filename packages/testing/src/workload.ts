/**
 * Pieces the end-to-end harness, the benchmarks and the fault suite share for driving a stack with a
 * scripted model: an approval policy that allows named tools, and the task text of a planning request.
 */

/**
 * An approval policy for test and benchmark stacks whose workload uses `tools` without a human: a
 * written allow rule (writes and external calls would otherwise need a track record or a person).
 */
export function allowToolsPolicy(tools: readonly string[]): string {
  return [
    'version: test-allow-tools',
    'defaults: { deadline: 1h, onExpiry: reject }',
    'trust: { low: { minScore: 0, minSuccesses: 0 } }',
    'rules:',
    `  - { id: test-allow-tools, effect: allow, tools: [${tools.join(', ')}] }`,
    '',
  ].join('\n');
}

/** The text of the first user message of a chat request (the task, for planning requests). */
export function firstUserText(messages: ReadonlyArray<{ role: string; content?: unknown }>): string {
  const first = messages.find((message) => message.role === 'user');
  return first && typeof first.content === 'string' ? first.content : '';
}
