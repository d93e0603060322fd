import { randomUUID } from 'node:crypto';
import {
  firstUserText,
  type ChatRequestRecord,
  type ScriptedReply,
  type ScriptedToolCall,
} from '@tandem/testing';

/**
 * The suite's task kinds. `normal` touches the workspace (write_file, read_file), the sandbox (run_code)
 * and an external system (http_request to the suite's effect sink); `question` adds a step only a human
 * can decide (ask_human, answered through the approval API). The rest are poison in task form: a program
 * printing 1.1 MiB, a plan of five 240,000-character writes, a program whose output and result hold NUL.
 */
export const TASK_KINDS = ['normal', 'question', 'big-output', 'big-plan', 'nul-output'] as const;
/** One of the suite's task kinds. */
export type TaskKind = (typeof TASK_KINDS)[number];

/** The CloudEvent source of the suite's tasks. */
export const WORKLOAD_SOURCE = 'urn:tandem:fault-suite';

/** The goal of a task: the model script reads its label and kind back from it. */
export function goalFor(label: string, kind: TaskKind): string {
  return `fault-suite task ${label} [${kind}]`;
}

/** The label and kind in a goal written by {@link goalFor}, or null. */
export function parseGoal(text: string): { label: string; kind: TaskKind } | null {
  const match = /fault-suite task (\S+) \[([a-z-]+)\]/.exec(text);
  if (!match) return null;
  const kind = TASK_KINDS.find((candidate) => candidate === match[2]);
  return kind === undefined || match[1] === undefined ? null : { label: match[1], kind };
}

/** The answer a task of this kind must end with (null: any terminal state will do, it is poison). */
export function expectedAnswer(kind: TaskKind, label: string): string | null {
  if (kind === 'normal') return `42 ${label} 200`;
  if (kind === 'question') return `42 ${label} 200 yes`;
  return null;
}

const none = { dependsOn: null, rationale: null };

/** The plan the scripted planning model answers for a task (`sinkUrl`: the suite's effect sink). */
export function planFor(kind: TaskKind, label: string, sinkUrl: string): ScriptedReply {
  if (kind === 'big-output')
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: "print('x' * (1100 * 1024))\nresult = 1",
            spec: null,
            ...none,
          },
        },
        { name: 'respond', arguments: { answer: 'printed {{steps.s1.value}}', ...none } },
      ],
    };
  if (kind === 'big-plan')
    return {
      toolCalls: [
        ...[1, 2, 3, 4, 5].map((index) => ({
          name: 'write_file',
          arguments: { path: `big-${index}.txt`, content: String(index).repeat(240_000), ...none },
        })),
        { name: 'respond', arguments: { answer: 'wrote five big files', ...none } },
      ],
    };
  if (kind === 'nul-output')
    return {
      toolCalls: [
        {
          name: 'run_code',
          arguments: {
            language: 'python',
            code: "print('before\\x00after')\nresult = 'nul\\x00inside'",
            spec: null,
            ...none,
          },
        },
        { name: 'respond', arguments: { answer: 'ran {{steps.s1.value}}', ...none } },
      ],
    };
  const steps: ScriptedToolCall[] = [
    { name: 'write_file', arguments: { path: 'in.txt', content: label, ...none } },
    { name: 'read_file', arguments: { path: 'in.txt', dependsOn: ['s1'], rationale: null } },
    { name: 'run_code', arguments: { language: 'python', code: 'result = 6 * 7', spec: null, ...none } },
    {
      name: 'http_request',
      arguments: {
        method: 'POST',
        url: `${sinkUrl}/effect/${label}`,
        body: label,
        dependsOn: ['s2'],
        rationale: null,
      },
    },
  ];
  let answer = '{{steps.s3.value}} {{steps.s2.value.content}} {{steps.s4.value.status}}';
  if (kind === 'question') {
    steps.push({
      name: 'ask_human',
      arguments: { question: `Proceed with ${label}?`, choices: ['yes', 'no'], ...none },
    });
    answer += ' {{steps.s5.value.answer}}';
  }
  steps.push({ name: 'respond', arguments: { answer, ...none } });
  return { toolCalls: steps };
}

/** The scripted model of the suite: plans by the goal's kind; code requests are not expected (code is given). */
export function workloadScript(sinkUrl: () => string): (request: ChatRequestRecord) => ScriptedReply {
  return (request) => {
    if ((request.body.tools ?? []).length === 0) return { content: '```python\nresult = 6 * 7\n```' };
    const goal = parseGoal(firstUserText(request.body.messages));
    if (goal === null)
      return { toolCalls: [{ name: 'respond', arguments: { answer: 'unknown task', ...none } }] };
    return planFor(goal.kind, goal.label, sinkUrl());
  };
}

/** A CloudEvent requesting a task of the suite. */
export function taskEvent(label: string, kind: TaskKind): { id: string; event: Record<string, unknown> } {
  const id = `${label}-${randomUUID()}`;
  return {
    id,
    event: {
      specversion: '1.0',
      id,
      source: WORKLOAD_SOURCE,
      type: 'tandem.task.requested',
      time: new Date().toISOString(),
      data: { goal: goalFor(label, kind), kind: 'fault-suite' },
    },
  };
}

/** Messages on `task.requested.v1` that are no task: each must be dead-lettered, none may create a task. */
export function poisonMessages(): Array<{ name: string; bytes: Uint8Array }> {
  const encode = (text: string) => new TextEncoder().encode(text);
  return [
    { name: 'not-json', bytes: new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x6e, 0x6f]) },
    { name: 'not-a-cloudevent', bytes: encode(JSON.stringify({ hello: 'world' })) },
    {
      name: 'no-goal',
      bytes: encode(
        JSON.stringify({
          specversion: '1.0',
          id: `poison-${randomUUID()}`,
          source: WORKLOAD_SOURCE,
          type: 'tandem.task.requested',
          data: { nogoal: true },
        }),
      ),
    },
    { name: 'json-array', bytes: encode('[1,2,3]') },
  ];
}
