/**
 * `pnpm bench`: the platform's own overhead on a fixed workload, on real Postgres and NATS with the five
 * services as separate processes and an instant scripted model.
 *
 * Each task is planned as five tool calls that need no sandbox (write_file, read_file, write_file,
 * list_files, read_file) and a `respond`: six steps. Printed: tasks per second with 1 and with 16 tasks in
 * flight; the median and p99 overhead per step at 1 in flight (task latency from publishing the CloudEvent
 * to receiving its outcome, minus the time spent in the model, divided by the steps); write transactions
 * per step (transaction ids assigned over the run at 1 in flight, i.e. transactions that wrote, divided by
 * the steps executed in that window).
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { waitFor } from '@tandem/testing';
import { allowToolsPolicy, answers, startStack, taskRequested, type Stack } from '../test/harness.js';

const STEPS_PER_TASK = 6;
const SEQUENTIAL_TASKS = Number(process.env['BENCH_SEQUENTIAL_TASKS'] ?? 200);
const PARALLEL_TASKS = Number(process.env['BENCH_PARALLEL_TASKS'] ?? 1000);
const IN_FLIGHT = 16;

const PLAN: ScriptedReply = {
  toolCalls: [
    { name: 'write_file', arguments: { path: 'a.txt', content: 'alpha', dependsOn: null, rationale: null } },
    { name: 'read_file', arguments: { path: 'a.txt', dependsOn: ['s1'], rationale: null } },
    { name: 'write_file', arguments: { path: 'b/b.txt', content: 'beta', dependsOn: null, rationale: null } },
    { name: 'list_files', arguments: { prefix: null, dependsOn: ['s1', 's3'], rationale: null } },
    { name: 'read_file', arguments: { path: 'b/b.txt', dependsOn: ['s3'], rationale: null } },
    {
      name: 'respond',
      arguments: {
        answer: '{{steps.s2.value.content}} {{steps.s5.value.content}}',
        dependsOn: null,
        rationale: null,
      },
    },
  ],
  usage: { promptTokens: 500, completionTokens: 200, totalTokens: 700 },
};

function script(request: ChatRequestRecord): ScriptedReply {
  return (request.body.tools ?? []).length > 0 ? PLAN : { content: 'unused' };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

async function counters(stack: Stack): Promise<{ xids: bigint }> {
  // Transaction ids are assigned only to transactions that write: the count of write transactions. (The
  // statistics views are flushed lazily and undercount short windows, so they are not used.)
  const { rows } = await stack.sql.query<{ xid: string }>(`SELECT txid_current()::text AS xid`);
  const row = rows[0];
  if (!row) throw new Error('no counters');
  return { xids: BigInt(row.xid) };
}

/** Runs one task and returns its latency and model time in ms. */
async function runTask(
  stack: Stack,
  label: string,
): Promise<{ latencyMs: number; modelMs: number; taskId: string }> {
  const event = taskRequested({ goal: `bench ${label}`, kind: 'bench' });
  const started = performance.now();
  await stack.publish('task.requested.v1', event);
  const outcome = await stack.waitForOutcome(answers(event), `bench task ${label}`);
  const latencyMs = performance.now() - started;
  if (outcome.data.status !== 'completed')
    throw new Error(`bench task ${label} ended ${outcome.data.status}`);
  return { latencyMs, modelMs: 0, taskId: outcome.data.taskId };
}

async function modelTimeOf(stack: Stack, taskIds: string[]): Promise<Map<string, number>> {
  // Call records are written asynchronously: wait until every task has its planning call stored.
  await waitFor(
    async () => {
      const { rows } = await stack.sql.query<{ n: number }>(
        'SELECT count(DISTINCT "taskId")::int AS n FROM "ModelCall" WHERE "taskId" = ANY($1::uuid[])',
        [taskIds],
      );
      return (rows[0]?.n ?? 0) >= taskIds.length ? true : undefined;
    },
    { description: 'model call records', timeoutMs: 30_000 },
  );
  const { rows } = await stack.sql.query<{ taskId: string; ms: number }>(
    'SELECT "taskId", sum("latencyMs")::int AS ms FROM "ModelCall" WHERE "taskId" = ANY($1::uuid[]) GROUP BY "taskId"',
    [taskIds],
  );
  return new Map(rows.map((row) => [row.taskId, row.ms]));
}

async function main(): Promise<void> {
  const stack = await startStack({
    match: script,
    // The workload's workspace steps are approved by a written rule.
    policy: allowToolsPolicy(['write_file', 'read_file', 'list_files']),
    env: {
      TANDEM_AUTO_APPROVE: 'read,write,compute',
      TANDEM_PLANNER_CONCURRENCY: String(IN_FLIGHT),
      TANDEM_EXECUTOR_CONCURRENCY: String(IN_FLIGHT),
      TANDEM_DB_POOL_MAX: '10',
      TANDEM_LEARNING_QUERY_TIMEOUT_MS: '50',
      LOG_LEVEL: 'error',
    },
  });
  try {
    // Warm up: JIT, connection pools, consumers.
    for (let index = 0; index < 10; index += 1) await runTask(stack, `warmup-${index}`);

    const sequentialStart = await counters(stack);
    const sequential: Array<{ latencyMs: number; taskId: string }> = [];
    const sequentialBegan = performance.now();
    for (let index = 0; index < SEQUENTIAL_TASKS; index += 1)
      sequential.push(await runTask(stack, `seq-${index}`));
    const sequentialSeconds = (performance.now() - sequentialBegan) / 1000;
    const sequentialEnd = await counters(stack);
    const modelMs = await modelTimeOf(
      stack,
      sequential.map((task) => task.taskId),
    );
    const overheads = sequential
      .map((task) => (task.latencyMs - (modelMs.get(task.taskId) ?? 0)) / STEPS_PER_TASK)
      .sort((a, b) => a - b);

    const parallelBegan = performance.now();
    let next = 0;
    const workers = Array.from({ length: IN_FLIGHT }, async () => {
      while (next < PARALLEL_TASKS) {
        const index = next;
        next += 1;
        await runTask(stack, `par-${index}-${randomUUID().slice(0, 8)}`);
      }
    });
    await Promise.all(workers);
    const parallelSeconds = (performance.now() - parallelBegan) / 1000;

    const steps = SEQUENTIAL_TASKS * STEPS_PER_TASK;
    // Each counters() call itself takes one transaction id; the sequential window is measured alone.
    const writeTx = Number(sequentialEnd.xids - sequentialStart.xids - 1n);
    const figures = {
      workload: `${STEPS_PER_TASK} steps per task (5 workspace tool calls + respond), instant scripted model`,
      tasksPerSecond1InFlight: Number((SEQUENTIAL_TASKS / sequentialSeconds).toFixed(1)),
      tasksPerSecond16InFlight: Number((PARALLEL_TASKS / parallelSeconds).toFixed(1)),
      overheadPerStepMsMedian: Number(percentile(overheads, 50).toFixed(2)),
      overheadPerStepMsP99: Number(percentile(overheads, 99).toFixed(2)),
      writeTransactionsPerStep: Number((writeTx / steps).toFixed(2)),
      tasks: { sequential: SEQUENTIAL_TASKS, parallel: PARALLEL_TASKS, inFlight: IN_FLIGHT },
    };
    process.stdout.write(
      [
        `tasks/s, 1 in flight:        ${figures.tasksPerSecond1InFlight}`,
        `tasks/s, 16 in flight:       ${figures.tasksPerSecond16InFlight}`,
        `overhead/step median (ms):   ${figures.overheadPerStepMsMedian}`,
        `overhead/step p99 (ms):      ${figures.overheadPerStepMsP99}`,
        `write transactions/step:     ${figures.writeTransactionsPerStep}`,
        JSON.stringify(figures),
        '',
      ].join('\n'),
    );
  } finally {
    await stack.stop();
  }
}

await main();
