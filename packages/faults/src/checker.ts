import { expectedAnswer, type TaskKind } from './workload.js';

/** A task the suite submitted, and whether the submission was acknowledged (PubAck or HTTP 202). */
export interface SubmittedTask {
  label: string;
  kind: TaskKind;
  /** The CloudEvent id (NATS) or the task id returned by HTTP. */
  key: string;
  via: 'nats' | 'http';
  accepted: boolean;
  acceptedAt: number;
}

/** A task as Postgres holds it after quiescence. */
export interface TaskRow {
  taskId: string;
  externalId: string;
  goalLabel: string | null;
  /** Task.status (planning side). */
  status: string;
  /** TaskRun.status (run side), null before the executor started it. */
  runStatus: string | null;
  answer: string | null;
  errorCode: string | null;
  /** `stepKey:tool:status` of its current plan's steps (for failure messages). */
  steps: string[];
}

/** One outcome event as an observer received it. */
export interface OutcomeSeen {
  eventId: string;
  taskId: string;
  status: string;
  seenAt: number;
}

/** What the checker reads after quiescence. */
export interface Observations {
  submitted: SubmittedTask[];
  tasks: TaskRow[];
  /** Outcome events from the durable JetStream consumer. */
  durable: OutcomeSeen[];
  /** Outcome events from the plain core-NATS subscriber. */
  plain: OutcomeSeen[];
  /** Sandbox executions per idempotency key (from the sandbox-runner's log lines). */
  sandboxExecutions: Record<string, number>;
  /** SandboxRun rows per attempt (idempotency key `<stepId>:<attempt>`). */
  sandboxRunsPerAttempt: Record<string, number>;
  /** Requests the effect sink received per Idempotency-Key (the step of an http_request). */
  effects: Record<string, number>;
  /** Tasks whose goal was none of the suite's (created from a poison message). */
  poisonTasks: number;
  /** Service exits the suite did not cause (crashes). */
  crashes: string[];
  /** HTTP submissions answered 5xx. */
  http5xx: number;
}

/** The figures of one run (every counter the suite asserts on is here, with the timings beside them). */
export interface Figures {
  submitted: number;
  accepted: number;
  terminal: number;
  lost: number;
  stuck: number;
  duplicateTasks: number;
  duplicateSandboxRuns: number;
  duplicateEffects: number;
  duplicateOutcomes: number;
  plainDuplicates: number;
  plainMissed: number;
  missingOutcomes: number;
  wrongStates: number;
  poisonTasks: number;
  crashes: number;
  http5xx: number;
  /** Totals that show the counters saw work (not asserted). */
  sandboxExecutions: number;
  effectRequests: number;
  outcomeEvents: number;
}

const TERMINAL_RUN = new Set(['completed', 'failed', 'cancelled']);
const TERMINAL_TASK = new Set(['failed', 'cancelled']);

/** Whether a task row is in a terminal state (the run ended, or planning ended it). */
export function isTerminal(row: TaskRow): boolean {
  return (row.runStatus !== null && TERMINAL_RUN.has(row.runStatus)) || TERMINAL_TASK.has(row.status);
}

function terminalStatus(row: TaskRow): string {
  if (row.runStatus !== null && TERMINAL_RUN.has(row.runStatus)) return row.runStatus;
  return row.status;
}

function describe(row: TaskRow): string {
  return `task ${row.taskId} (status ${row.status}, run ${row.runStatus ?? 'none'}${row.errorCode ? `, error ${row.errorCode}` : ''}; steps ${row.steps.join(', ') || 'none'})`;
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

function excess(counts: Iterable<number>): number {
  let total = 0;
  for (const count of counts) if (count > 1) total += count - 1;
  return total;
}

/**
 * Counts lost, duplicated and stuck work, and says which task, state and counter for every failure.
 * Lost: accepted, never terminal (stuck: of those, the ones with a task row). Duplicates: beyond one per
 * task (tasks per submission, outcome events per task), per idempotency key (sandbox executions, effects).
 */
export function check(observations: Observations): { figures: Figures; failures: string[] } {
  const failures: string[] = [];
  const byExternal = new Map<string, TaskRow[]>();
  const byId = new Map<string, TaskRow>();
  for (const row of observations.tasks) {
    byExternal.set(row.externalId, [...(byExternal.get(row.externalId) ?? []), row]);
    byId.set(row.taskId, row);
  }
  const byLabel = countBy(
    observations.tasks.filter((row) => row.goalLabel !== null),
    (row) => row.goalLabel ?? '',
  );
  const accepted = observations.submitted.filter((task) => task.accepted);
  let lost = 0;
  let stuck = 0;
  let terminal = 0;
  let wrongStates = 0;
  let missingOutcomes = 0;
  const durableByTask = countBy(observations.durable, (event) => event.taskId);
  const plainByTask = countBy(observations.plain, (event) => event.taskId);
  const acceptedTaskIds = new Set<string>();
  for (const task of accepted) {
    const rows =
      task.via === 'http'
        ? [byId.get(task.key)].filter((row) => row !== undefined)
        : (byExternal.get(task.key) ?? []);
    const row = rows[0];
    if (row === undefined) {
      lost += 1;
      failures.push(
        `lost: ${task.kind} task ${task.label} (${task.via} ${task.key}) was accepted and has no task row`,
      );
      continue;
    }
    acceptedTaskIds.add(row.taskId);
    if (!isTerminal(row)) {
      lost += 1;
      stuck += 1;
      failures.push(
        `stuck: ${task.kind} task ${task.label}: ${describe(row)} is not terminal after quiescence`,
      );
      continue;
    }
    terminal += 1;
    if ((durableByTask.get(row.taskId) ?? 0) === 0) {
      missingOutcomes += 1;
      failures.push(
        `missing outcome: ${task.kind} task ${task.label}: ${describe(row)} ended but no outcome event reached the durable consumer`,
      );
    }
    const expected = expectedAnswer(task.kind, task.label);
    const status = terminalStatus(row);
    if (expected !== null && (status !== 'completed' || row.answer !== expected)) {
      wrongStates += 1;
      failures.push(
        `wrong terminal state: ${task.kind} task ${task.label}: ${describe(row)} ended ${status} with answer ${JSON.stringify(row.answer)}, expected completed with ${JSON.stringify(expected)}`,
      );
    } else if (row.errorCode === 'TASK.STUCK') {
      // The executor's last-resort sweep ended it: something lost its work, even if the end is typed.
      wrongStates += 1;
      failures.push(
        `wrong terminal state: ${task.kind} task ${task.label}: ${describe(row)} was ended by the stuck sweep (TASK.STUCK)`,
      );
    } else if (expected === null && status === 'failed' && row.errorCode === null) {
      wrongStates += 1;
      failures.push(
        `wrong terminal state: ${task.kind} task ${task.label}: ${describe(row)} failed without a typed error`,
      );
    }
  }
  const duplicateTasks = excess(byLabel.values());
  if (duplicateTasks > 0)
    for (const [label, count] of byLabel)
      if (count > 1) failures.push(`duplicate task: ${count} task rows for submission ${label}`);
  const duplicateSandboxRuns =
    excess(Object.values(observations.sandboxExecutions)) +
    excess(Object.values(observations.sandboxRunsPerAttempt));
  for (const [key, count] of Object.entries(observations.sandboxExecutions))
    if (count > 1) failures.push(`duplicate sandbox run: job ${key} ran ${count} times`);
  // The execution counter reads the sandbox-runner's log lines: if it saw fewer runs than Postgres
  // stored, it went blind (a renamed log line) and would pass anything.
  const storedRuns = Object.values(observations.sandboxRunsPerAttempt).reduce((sum, count) => sum + count, 0);
  const executions = Object.values(observations.sandboxExecutions).reduce((sum, count) => sum + count, 0);
  if (executions < storedRuns)
    failures.push(
      `checker blind: ${storedRuns} SandboxRun rows but only ${executions} "sandbox job finished" log lines (src/stack.ts reads them)`,
    );
  for (const [step, count] of Object.entries(observations.sandboxRunsPerAttempt))
    if (count > 1) failures.push(`duplicate sandbox run: attempt ${step} has ${count} SandboxRun rows`);
  const duplicateEffects = excess(Object.values(observations.effects));
  for (const [key, count] of Object.entries(observations.effects))
    if (count > 1)
      failures.push(`duplicate effect: http_request of step ${key} reached the sink ${count} times`);
  const duplicateOutcomes = excess(durableByTask.values());
  for (const [taskId, count] of durableByTask)
    if (count > 1)
      failures.push(`duplicate outcome: task ${taskId} has ${count} outcome events in the stream`);
  const plainDuplicates = excess(plainByTask.values());
  for (const [taskId, count] of plainByTask) {
    if (count <= 1) continue;
    const ids = new Set(
      observations.plain.filter((event) => event.taskId === taskId).map((event) => event.eventId),
    );
    failures.push(
      `plain-subscriber duplicate: task ${taskId}'s outcome arrived ${count} times (${ids.size === 1 ? 'the same event id: published twice' : `${ids.size} event ids`})`,
    );
  }
  let plainMissed = 0;
  for (const taskId of acceptedTaskIds)
    if (!plainByTask.has(taskId) && durableByTask.has(taskId)) plainMissed += 1;
  if (observations.poisonTasks > 0)
    failures.push(`poison: ${observations.poisonTasks} task rows were created from poison messages`);
  for (const crash of observations.crashes) failures.push(`crash: ${crash}`);
  if (observations.http5xx > 0) failures.push(`http: ${observations.http5xx} submissions answered 5xx`);
  return {
    figures: {
      submitted: observations.submitted.length,
      accepted: accepted.length,
      terminal,
      lost,
      stuck,
      duplicateTasks,
      duplicateSandboxRuns,
      duplicateEffects,
      duplicateOutcomes,
      plainDuplicates,
      plainMissed,
      missingOutcomes,
      wrongStates,
      poisonTasks: observations.poisonTasks,
      crashes: observations.crashes.length,
      http5xx: observations.http5xx,
      sandboxExecutions: Object.values(observations.sandboxExecutions).reduce((sum, count) => sum + count, 0),
      effectRequests: Object.values(observations.effects).reduce((sum, count) => sum + count, 0),
      outcomeEvents: observations.durable.length,
    },
    failures,
  };
}

/** The nearest-rank percentile of sorted numbers (NaN for none). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}
