import { performance } from 'node:perf_hooks';
import type { ChatRequestRecord, ScriptedReply } from '@tandem/testing';
import { allowToolsPolicy, answers, startStack, taskRequested } from '../test/harness.js';

const PLAN: ScriptedReply = {
  toolCalls: [
    { name: 'write_file', arguments: { path: 'a.txt', content: 'alpha' } },
    { name: 'read_file', arguments: { path: 'a.txt' } },
    { name: 'write_file', arguments: { path: 'b/b.txt', content: 'beta' } },
    { name: 'list_files', arguments: {} },
    { name: 'read_file', arguments: { path: 'b/b.txt' } },
    { name: 'respond', arguments: { answer: '{{steps.s2.value.content}}' } },
  ],
};
const stack = await startStack({
  match: (r: ChatRequestRecord) => ((r.body.tools ?? []).length > 0 ? PLAN : { content: 'x' }),
  policy: allowToolsPolicy(['write_file', 'read_file', 'list_files']),
  env: {
    TANDEM_AUTO_APPROVE: 'read,write,compute',
    LOG_LEVEL: 'error',
    TANDEM_LEARNING_QUERY_TIMEOUT_MS: '50',
  },
});
const N = Number(process.env['TRACE_TASKS'] ?? 8);
for (let i = 0; i < N; i += 1) {
  const event = taskRequested({ goal: `t${i}` });
  const t0 = Date.now();
  const p0 = performance.now();
  await stack.publish('task.requested.v1', event);
  const outcome = await stack.waitForOutcome(answers(event), 'x');
  const total = performance.now() - p0;
  if (i < N - 1) continue;
  const id = outcome.data.taskId;
  const q = async (sql: string) => (await stack.sql.query(sql, [id])).rows;
  const marks: Array<[string, Date]> = [];
  for (const r of await q(`SELECT "createdAt" FROM "Task" WHERE id=$1`))
    marks.push(['task created', r.createdAt]);
  for (const r of await q(
    `SELECT "subject","publisher","createdAt","publishedAt" FROM "Outbox" WHERE payload::text LIKE '%'||$1||'%' ORDER BY seq`,
  )) {
    marks.push([`outbox ${r.publisher} ${r.subject.split('.').slice(-3).join('.')} created`, r.createdAt]);
    marks.push([
      `outbox ${r.publisher} ${r.subject.split('.').slice(-3).join('.')} published`,
      r.publishedAt,
    ]);
  }
  for (const r of await q(`SELECT "createdAt" FROM "Plan" WHERE "taskId"=$1`))
    marks.push(['plan stored', r.createdAt]);
  for (const r of await q(`SELECT "createdAt" FROM "ModelCall" WHERE "taskId"=$1`))
    marks.push(['model call stored', r.createdAt]);
  for (const r of await q(
    `SELECT s."stepKey", r."finishedAt" FROM "StepRun" r JOIN "PlanStep" s ON s.id=r."stepId" WHERE r."taskId"=$1`,
  ))
    marks.push([`step ${r.stepKey} done`, r.finishedAt]);
  marks.sort((a, b) => a[1].getTime() - b[1].getTime());
  console.log(`--- task ${i} total ${total.toFixed(1)} ms`);
  for (const [label, at] of marks) console.log(`${String(at.getTime() - t0).padStart(5)} ${label}`);
}
for (const service of ['planner', 'approval', 'executor', 'learning'] as const) {
  const text = await (await fetch(`${stack.url(service)}/metrics`)).text();
  const sums = new Map<string, number>();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(tandem_[a-z_]+_seconds)_(sum|count)\{([^}]*)\} ([0-9.e+-]+)/.exec(line);
    if (!m) continue;
    const key = `${m[1]}{${m[3]}}`;
    (m[2] === 'sum' ? sums : counts).set(key, Number(m[4]));
  }
  for (const [key, sum] of sums) {
    const count = counts.get(key) ?? 0;
    if (count > 0) console.log(service, key, `avg ${((sum / count) * 1000).toFixed(2)} ms over ${count}`);
  }
}
await stack.stop();
