import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import type { ServiceName } from '@tandem/launcher';
import { z } from 'zod';
import {
  check,
  percentile,
  type Figures,
  type Observations,
  type SubmittedTask,
  type TaskRow,
} from './checker.js';
import { formatTable } from './report.js';
import { startFaultStack, SUITE_ACK_WAIT_MS, type FaultStack, type FaultStackOptions } from './stack.js';
import { goalFor, parseGoal, poisonMessages, taskEvent, type TaskKind } from './workload.js';

/** Where each run writes its figures (`<scenario>.json`). */
export const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/** What a fault function gets: the stack, the clock of the run and a way to mark when a fault happened. */
export interface FaultContext {
  stack: FaultStack;
  /** Resolves `ms` after the workload started. */
  at(ms: number): Promise<void>;
  /** Records a fault (its time starts the recovery clock). */
  mark(description: string): void;
  /** Records a timing (printed and written, never asserted). */
  time(name: string, ms: number): void;
  /** kill -9 of one replica of a service; the launcher's supervisor restarts it. Resolves when it is ready. */
  killService(service: ServiceName, replica?: number): Promise<number>;
}

/** A scenario: a fault run against the workload. */
export interface Scenario {
  name: string;
  description: string;
  stack?: FaultStackOptions;
  /** How long tasks are submitted. */
  durationMs: number;
  /** Tasks per second. */
  rate: number;
  /** The kind of the i-th task (default: every third needs a human). */
  kindOf?: (index: number) => TaskKind;
  /** Also publish poison messages and send a goal with NUL over HTTP. */
  poison?: boolean;
  fault?: (context: FaultContext) => Promise<void>;
  /** How long to wait for quiescence after the last submission (default 60 s). */
  quiesceMs?: number;
}

/** The record of one run, as written to `results/<scenario>.json`. */
export interface ScenarioResult {
  scenario: string;
  description: string;
  startedAt: string;
  wallClockSeconds: number;
  figures: Figures;
  timings: Record<string, number>;
  faults: Array<{
    atMs: number;
    description: string;
    recoveryMs: number | null;
    inFlightWaitMs: number | null;
  }>;
  deadLetters: Array<{ consumer: string; code: string; count: number }>;
  streams: Array<{ name: string; replicas: number }>;
  supervisedRestarts: number;
  failures: string[];
}

const defaultKind = (index: number): TaskKind => (index % 3 === 2 ? 'question' : 'normal');

const Approval = z.looseObject({ id: z.string(), kind: z.string().optional(), status: z.string() });
const ApprovalList = z.object({ approvals: z.array(Approval) });
const Created = z.object({ taskId: z.string() });
const Answer = z.looseObject({ answer: z.unknown() });
const ErrorJson = z.looseObject({ code: z.string() });

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Answers every pending question "yes" and approves every pending approval, through the API. */
function startApprover(stack: FaultStack): () => Promise<void> {
  let running = true;
  const decided = new Set<string>();
  const loop = (async () => {
    while (running) {
      try {
        const response = await fetch(
          `${stack.services.url('approval')}/v1/approvals?status=pending&limit=100`,
          {
            headers: stack.auth,
            signal: AbortSignal.timeout(3_000),
          },
        );
        const list = ApprovalList.safeParse(await response.json());
        for (const approval of list.success ? list.data.approvals : []) {
          if (decided.has(approval.id)) continue;
          const body =
            approval.kind === 'question' ? { decision: 'answer', answer: 'yes' } : { decision: 'approve' };
          const decision = await fetch(
            `${stack.services.url('approval')}/v1/approvals/${approval.id}/decision`,
            {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...stack.auth },
              body: JSON.stringify(body),
              signal: AbortSignal.timeout(3_000),
            },
          );
          if (decision.status === 200 || decision.status === 409) decided.add(approval.id);
        }
      } catch {
        // the approval service may be down: that is a scenario
      }
      await sleep(300);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

/** Publishes until JetStream acknowledges (the same Nats-Msg-Id each time), as a careful client would. */
async function publishAcked(
  stack: FaultStack,
  subject: string,
  bytes: Uint8Array,
  msgID: string,
): Promise<boolean> {
  // A submission NATS refuses for 20 s is counted as not accepted (an outage, not a loss).
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      await stack.js.publish(subject, bytes, { msgID, timeout: 3_000 });
      return true;
    } catch {
      await sleep(250);
    }
  }
  return false;
}

async function readTasks(stack: FaultStack): Promise<TaskRow[]> {
  const { rows } = await stack.sql.query<{
    id: string;
    externalId: string;
    goal: string;
    status: string;
    error: unknown;
    runStatus: string | null;
    result: unknown;
    runError: unknown;
    steps: string[] | null;
  }>(
    `SELECT t."id", t."externalId", t."goal", t."status", t."error", r."status" AS "runStatus", r."result",
            r."error" AS "runError",
            (SELECT array_agg(s."stepKey" || ':' || s."tool" || ':' || coalesce(sr."status", 'none') ORDER BY s."index")
               FROM "PlanStep" s LEFT JOIN "StepRun" sr ON sr."stepId" = s."id"
              WHERE s."planId" = coalesce(r."planId",
                    (SELECT p."id" FROM "Plan" p WHERE p."taskId" = t."id" ORDER BY p."version" DESC LIMIT 1))) AS "steps"
       FROM "Task" t LEFT JOIN "TaskRun" r ON r."taskId" = t."id"`,
  );
  return rows.map((row) => {
    const answer = Answer.safeParse(row.result);
    const error = ErrorJson.safeParse(row.runError ?? row.error);
    return {
      taskId: row.id,
      externalId: row.externalId,
      goalLabel: parseGoal(row.goal)?.label ?? null,
      status: row.status,
      runStatus: row.runStatus,
      answer: answer.success && typeof answer.data.answer === 'string' ? answer.data.answer : null,
      errorCode: error.success ? error.data.code : null,
      steps: row.steps ?? [],
    };
  });
}

async function observe(
  stack: FaultStack,
  submitted: SubmittedTask[],
  http5xx: number,
): Promise<{ observations: Observations; deadLetters: ScenarioResult['deadLetters'] }> {
  const tasks = await readTasks(stack);
  const { rows: runs } = await stack.sql.query<{ stepId: string; runs: number }>(
    // Per attempt (the idempotency key is `<stepId>:<attempt>`): a code-fix attempt is a new, deliberate run.
    `SELECT "idempotencyKey" AS "stepId", count(*)::int AS runs FROM "SandboxRun" GROUP BY 1`,
  );
  const { rows: deadLetters } = await stack.sql.query<{ consumer: string; code: string; count: number }>(
    `SELECT "consumer", "code", count(*)::int AS count FROM "DeadLetter" GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  const observations: Observations = {
    submitted,
    tasks,
    durable: [...stack.durable],
    plain: [...stack.plain],
    sandboxExecutions: Object.fromEntries(stack.sandboxExecutions),
    sandboxRunsPerAttempt: Object.fromEntries(runs.map((row) => [row.stepId, row.runs])),
    effects: Object.fromEntries(stack.effects),
    poisonTasks: tasks.filter((task) => task.goalLabel === null).length,
    crashes: [...stack.crashes],
    http5xx,
  };
  return { observations, deadLetters };
}

/**
 * Runs a scenario: starts its stack, submits the workload at the scenario's rate while its fault runs,
 * waits for quiescence (every accepted task terminal with its outcome seen, or `quiesceMs`), checks,
 * prints the table and writes `results/<scenario>.json`. Timings are recorded, never asserted.
 */
export async function runScenario(scenario: Scenario): Promise<ScenarioResult> {
  const began = Date.now();
  const stack = await startFaultStack(scenario.stack);
  const timings: Record<string, number> = { stackStartMs: Date.now() - began };
  const faults: Array<{ atMs: number; description: string }> = [];
  const submitted: SubmittedTask[] = [];
  let http5xx = 0;
  const stopApprover = startApprover(stack);
  try {
    const workloadStart = Date.now();
    const context: FaultContext = {
      stack,
      at: (ms) => sleep(workloadStart + ms - Date.now()),
      mark: (description) => {
        faults.push({ atMs: Date.now() - workloadStart, description });
        process.stdout.write(
          `[fault-suite] ${scenario.name} +${Date.now() - workloadStart} ms: ${description}\n`,
        );
      },
      time: (name, ms) => {
        timings[name] = ms;
      },
      killService: async (service, replica = 0) => {
        const target = stack.services.instances(service).find((entry) => entry.replica === replica);
        if (target?.child.pid === undefined) throw new Error(`no running ${service}#${replica}`);
        stack.expectExit(service, replica);
        const killedAt = Date.now();
        context.mark(`kill -9 ${service}#${replica} (pid ${target.child.pid})`);
        process.kill(target.child.pid, 'SIGKILL');
        await sleep(200);
        await stack.services.waitReady(service, 60_000);
        const readyMs = Date.now() - killedAt;
        context.time(`${service}#${replica} ready again after kill (ms)`, readyMs);
        return readyMs;
      },
    };
    const faultRun: Promise<void> = scenario.fault ? scenario.fault(context) : Promise.resolve();
    const publishes: Array<Promise<void>> = [];
    const kindOf = scenario.kindOf ?? defaultKind;
    const count = Math.round((scenario.durationMs / 1000) * scenario.rate);
    for (let index = 0; index < count; index += 1) {
      await sleep(workloadStart + (index * 1000) / scenario.rate - Date.now());
      const kind = kindOf(index);
      const label = `${scenario.name}-${index}`;
      const { id, event } = taskEvent(label, kind);
      const task: SubmittedTask = { label, kind, key: id, via: 'nats', accepted: false, acceptedAt: 0 };
      submitted.push(task);
      publishes.push(
        publishAcked(
          stack,
          `${stack.prefix}.task.requested.v1`,
          new TextEncoder().encode(JSON.stringify(event)),
          id,
        ).then((accepted) => {
          task.accepted = accepted;
          task.acceptedAt = Date.now();
        }),
      );
      if (scenario.poison === true && index % 10 === 5) {
        for (const poison of poisonMessages())
          publishes.push(
            publishAcked(
              stack,
              `${stack.prefix}.task.requested.v1`,
              poison.bytes,
              `poison-${index}-${poison.name}`,
            ).then(() => undefined),
          );
        publishes.push(
          (async () => {
            const httpLabel = `${scenario.name}-http-nul-${index}`;
            const httpTask: SubmittedTask = {
              label: httpLabel,
              kind: 'normal',
              key: '',
              via: 'http',
              accepted: false,
              acceptedAt: 0,
            };
            submitted.push(httpTask);
            try {
              const response = await fetch(`${stack.services.url('planner')}/v1/tasks`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', ...stack.auth },
                body: JSON.stringify({ goal: `${goalFor(httpLabel, 'normal')} with a NUL \u0000 inside` }),
              });
              if (response.status >= 500) http5xx += 1;
              const created = Created.safeParse(await response.json());
              if (response.status === 202 && created.success) {
                httpTask.key = created.data.taskId;
                httpTask.accepted = true;
                httpTask.acceptedAt = Date.now();
              }
            } catch {
              // not accepted
            }
          })(),
        );
      }
    }
    timings['submissionMs'] = Date.now() - workloadStart;
    await Promise.all(publishes);
    await faultRun;
    // Quiescence: every accepted task terminal in Postgres and its outcome seen on the durable consumer.
    const quiesceStart = Date.now();
    const quiesceMs = scenario.quiesceMs ?? 60_000;
    for (;;) {
      let tasks: TaskRow[] = [];
      try {
        tasks = await readTasks(stack);
      } catch {
        // Postgres may still be restarting
      }
      const { figures } = check({
        submitted,
        tasks,
        durable: [...stack.durable],
        plain: [],
        sandboxExecutions: {},
        sandboxRunsPerAttempt: {},
        effects: {},
        poisonTasks: 0,
        crashes: [],
        http5xx: 0,
      });
      if ((figures.lost === 0 && figures.missingOutcomes === 0) || Date.now() - quiesceStart > quiesceMs)
        break;
      await sleep(1_000);
    }
    timings['quiescenceMs'] = Date.now() - quiesceStart;
    // Late duplicates (a relay's second publish, a redelivery) get a moment to show.
    await sleep(3_000);
    const { observations, deadLetters } = await observe(stack, submitted, http5xx);
    const { figures, failures } = check(observations);
    const outcomeAt = new Map<string, number>();
    const taskOf = new Map(observations.tasks.map((task) => [task.externalId, task.taskId]));
    for (const seen of observations.durable)
      if (!outcomeAt.has(seen.taskId)) outcomeAt.set(seen.taskId, seen.seenAt);
    const latencies = submitted
      .filter((task) => task.accepted && task.via === 'nats')
      .map((task) => {
        const taskId = taskOf.get(task.key);
        const at = taskId === undefined ? undefined : outcomeAt.get(taskId);
        return at === undefined ? null : { acceptedAt: task.acceptedAt, latency: at - task.acceptedAt, at };
      })
      .filter((entry) => entry !== null);
    const sorted = latencies.map((entry) => entry.latency).sort((a, b) => a - b);
    timings['taskLatencyP50Ms'] = percentile(sorted, 50);
    timings['taskLatencyP99Ms'] = percentile(sorted, 99);
    timings['taskLatencyMaxMs'] = sorted[sorted.length - 1] ?? Number.NaN;
    // The recovery target: within ack wait + 10 s. Counted and printed, never asserted.
    timings['tasksOverAckWaitPlus10s'] = sorted.filter(
      (latency) => latency > SUITE_ACK_WAIT_MS + 10_000,
    ).length;
    const faultsWithRecovery = faults.map((fault) => {
      // Recovery: from the fault to the first outcome of a task accepted after it.
      const faultAt = workloadStart + fault.atMs;
      const after = latencies
        .filter((entry) => entry.acceptedAt >= faultAt)
        .map((entry) => entry.at - faultAt);
      // In flight at the fault: the longest any of that work then waited for its outcome.
      const inFlight = latencies
        .filter((entry) => entry.acceptedAt <= faultAt && entry.at > faultAt)
        .map((entry) => entry.at - faultAt);
      return {
        ...fault,
        recoveryMs: after.length > 0 ? Math.min(...after) : null,
        inFlightWaitMs: inFlight.length > 0 ? Math.max(...inFlight) : null,
      };
    });
    const streams = await streamReplicas(stack);
    const result: ScenarioResult = {
      scenario: scenario.name,
      description: scenario.description,
      startedAt: new Date(began).toISOString(),
      wallClockSeconds: 0,
      figures,
      timings,
      faults: faultsWithRecovery,
      deadLetters,
      streams,
      supervisedRestarts: stack.restarts.length,
      failures,
    };
    result.wallClockSeconds = Math.round((Date.now() - began) / 100) / 10;
    await mkdir(RESULTS_DIR, { recursive: true });
    await writeFile(join(RESULTS_DIR, `${scenario.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${formatTable(result)}\n`);
    if (failures.length > 0) process.stdout.write(`${stack.recentOutput.slice(-30).join('\n')}\n`);
    return result;
  } finally {
    await stopApprover();
    await stack.stop();
  }
}

async function streamReplicas(stack: FaultStack): Promise<Array<{ name: string; replicas: number }>> {
  try {
    const jsm = await jetstreamManager(stack.nc, { timeout: 3_000 });
    const streams: Array<{ name: string; replicas: number }> = [];
    for await (const info of jsm.streams.list())
      streams.push({ name: info.config.name, replicas: info.config.num_replicas });
    return streams.sort((a, b) => a.name.localeCompare(b.name));
  } catch {
    return [];
  }
}
