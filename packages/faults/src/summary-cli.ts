/**
 * `pnpm --filter @tandem/faults run summary`: the figures of the last run of every scenario
 * (`results/*.json`) as one Markdown table, for docs/reliability.md.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { summaryTable } from './report.js';
import { RESULTS_DIR } from './scenario.js';

const Result = z.looseObject({
  scenario: z.string(),
  startedAt: z.string(),
  wallClockSeconds: z.number(),
  figures: z.looseObject({
    submitted: z.number(),
    accepted: z.number(),
    terminal: z.number(),
    lost: z.number(),
    stuck: z.number(),
    duplicateTasks: z.number(),
    duplicateSandboxRuns: z.number(),
    duplicateEffects: z.number(),
    duplicateOutcomes: z.number(),
    plainDuplicates: z.number(),
    plainMissed: z.number(),
    missingOutcomes: z.number(),
    wrongStates: z.number(),
    poisonTasks: z.number(),
    crashes: z.number(),
    http5xx: z.number(),
    sandboxExecutions: z.number(),
    effectRequests: z.number(),
    outcomeEvents: z.number(),
  }),
  timings: z.record(
    z.string(),
    z
      .number()
      .nullable()
      .transform((value) => value ?? Number.NaN),
  ),
  failures: z.array(z.string()),
});

const files = (await readdir(RESULTS_DIR)).filter((file) => file.endsWith('.json')).sort();
const results = [];
for (const file of files) {
  const parsed = Result.safeParse(JSON.parse(await readFile(join(RESULTS_DIR, file), 'utf8')));
  if (parsed.success) results.push(parsed.data);
  else process.stderr.write(`skipping ${file}: ${parsed.error.message}\n`);
}
results.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
process.stdout.write(`${summaryTable(results)}\n`);
process.stdout.write(
  `\n${results.length} scenarios, ${Math.round(results.reduce((sum, result) => sum + result.wallClockSeconds, 0) / 6) / 10} minutes of scenario wall clock\n`,
);
