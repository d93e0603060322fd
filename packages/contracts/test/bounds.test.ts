import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  SANDBOX_EVENT_MAX_BYTES,
  STEP_VALUE_EVENT_MAX_BYTES,
  SandboxRunCompleted,
  TASK_OUTCOME_EVENT_MAX_BYTES,
  TaskCompletedData,
  boundSandboxEventParts,
  boundStepValue,
  boundTaskResult,
  createEnvelope,
  jsonByteLength,
  truncateJsonString,
  truncateJsonStringTail,
} from '../src/index.js';

describe('event size bounds', () => {
  it('a sandbox result at the worst case the runner allows stays under SANDBOX_EVENT_MAX_BYTES', () => {
    // 4 MiB of control characters (6 bytes each once escaped) on both streams, a 4 MiB value, 100 files
    // with 2 KiB names and 10,000 deleted ones, a long error message and the longest idempotency key.
    const worst = '\u0001'.repeat(4 * 1024 * 1024);
    const bounded = boundSandboxEventParts({
      stdout: worst,
      stderr: `${worst}Traceback: boom`,
      stdoutTruncated: true,
      stderrTruncated: false,
      value: { big: '\u0001'.repeat(4 * 1024 * 1024) },
      errorMessage: worst,
      files: [
        ...Array.from({ length: 100 }, (_, index) => ({
          path: `${index}/${'\u0001'.repeat(2048)}`,
          size: 1024 * 1024,
          deleted: false,
        })),
        ...Array.from({ length: 10_000 }, (_, index) => ({ path: `gone/${index}`, size: 0, deleted: true })),
      ],
      filesTruncated: false,
    });
    const envelope = createEnvelope(
      SandboxRunCompleted,
      {
        idempotencyKey: 'k'.repeat(300),
        runId: randomUUID(),
        taskId: randomUUID(),
        stepId: randomUUID(),
        outcome: 'output_limit',
        exitCode: null,
        durationMs: 600_000,
        ...bounded,
      },
      { correlationId: randomUUID(), causationId: randomUUID() },
    );
    expect(SandboxRunCompleted.envelope.safeParse(envelope).success).toBe(true);
    expect(jsonByteLength(envelope)).toBeLessThan(SANDBOX_EVENT_MAX_BYTES);
    expect(bounded).toMatchObject({
      stdoutTruncated: true,
      stderrTruncated: true,
      value: null,
      valueTruncated: true,
      filesTruncated: true,
      stdoutLength: worst.length,
    });
    expect(bounded.valueBytes).toBeGreaterThan(4 * 1024 * 1024);
    // stderr keeps its end, where the traceback is.
    expect(bounded.stderr.endsWith('Traceback: boom')).toBe(true);
  });

  it('a small result passes unchanged', () => {
    const parts = {
      stdout: 'hi\n',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
      value: { answer: 42 },
      errorMessage: null,
      files: [{ path: 'a.txt', size: 1, deleted: false }],
      filesTruncated: false,
    };
    expect(boundSandboxEventParts(parts)).toEqual({ ...parts, valueTruncated: false });
  });

  it('truncates JSON strings on their encoded size without splitting a surrogate pair', () => {
    const text = 'a😀'.repeat(1000);
    const cut = truncateJsonString(text, 101);
    expect(cut.truncated).toBe(true);
    expect(Buffer.byteLength(JSON.stringify(cut.text))).toBeLessThanOrEqual(101);
    expect(cut.text.endsWith('\ud83d')).toBe(false);
    const tail = truncateJsonStringTail(text, 101);
    expect(Buffer.byteLength(JSON.stringify(tail.text))).toBeLessThanOrEqual(101);
    expect(tail.text.startsWith('\ude00')).toBe(false);
    expect(truncateJsonString('short', 100)).toEqual({ text: 'short', truncated: false });
  });

  it('a task result over the outcome bound becomes a typed marker that still parses as a result', () => {
    const taskId = randomUUID();
    const result = {
      answer: 'x'.repeat(1_000_000),
      steps: [
        { id: 's1', tool: 'run_code', value: 'v'.repeat(600_000) },
        { id: 's2', tool: 'respond', value: 'done' },
      ],
    };
    const bounded = boundTaskResult(result, taskId);
    expect(bounded).toMatchObject({
      truncated: true,
      bytes: jsonByteLength(result),
      href: `/v1/tasks/${taskId}`,
      steps: [
        { id: 's1', tool: 'run_code' },
        { id: 's2', tool: 'respond' },
      ],
    });
    expect(bounded.answer.length).toBeLessThanOrEqual(4096);
    expect(jsonByteLength(bounded)).toBeLessThan(TASK_OUTCOME_EVENT_MAX_BYTES);
    expect(
      TaskCompletedData.safeParse({
        taskId,
        request: { source: 's', id: 'i' },
        status: 'completed',
        result: bounded,
      }).success,
    ).toBe(true);
    const small = { answer: 'ok', steps: [{ id: 's1', tool: 'respond', value: 'ok' }] };
    expect(boundTaskResult(small, taskId)).toBe(small);
  });

  it('a step value over its bound becomes a marker', () => {
    const taskId = randomUUID();
    expect(boundStepValue('v'.repeat(STEP_VALUE_EVENT_MAX_BYTES), taskId)).toMatchObject({
      truncated: true,
      href: `/v1/tasks/${taskId}`,
    });
    expect(boundStepValue({ a: 1 }, taskId)).toEqual({ a: 1 });
  });
});
