import type { Figures } from './checker.js';
import type { ScenarioResult } from './scenario.js';

/** The parts of a scenario's result the table shows. */
export type TableInput = Omit<ScenarioResult, 'description' | 'startedAt'>;

const ASSERTED: ReadonlyArray<keyof Figures> = [
  'lost',
  'stuck',
  'duplicateTasks',
  'duplicateSandboxRuns',
  'duplicateEffects',
  'duplicateOutcomes',
  'plainDuplicates',
  'missingOutcomes',
  'wrongStates',
  'poisonTasks',
  'crashes',
  'http5xx',
];

const ms = (value: number | null | undefined) =>
  value === null || value === undefined || Number.isNaN(value) ? '-' : `${Math.round(value)} ms`;

/** One scenario's figures as a plain-text table (asserted counters marked with their target 0). */
export function formatTable(result: TableInput): string {
  const rows: Array<[string, string, string]> = [
    ['submitted', String(result.figures.submitted), ''],
    ['accepted (PubAck / 202)', String(result.figures.accepted), ''],
    ['terminal', String(result.figures.terminal), ''],
    ...ASSERTED.map((key): [string, string, string] => [
      key,
      String(result.figures[key]),
      result.figures[key] === 0 ? 'ok (target 0)' : 'FAIL (target 0)',
    ]),
    ['plain subscriber missed (not asserted)', String(result.figures.plainMissed), ''],
    [
      'sandbox executions / effect requests / outcome events',
      `${result.figures.sandboxExecutions} / ${result.figures.effectRequests} / ${result.figures.outcomeEvents}`,
      '',
    ],
    ['supervised restarts', String(result.supervisedRestarts), ''],
    ...Object.entries(result.timings).map(([name, value]): [string, string, string] => [
      name,
      name.endsWith('Ms') || name.endsWith('(ms)') ? ms(value) : String(value),
      '',
    ]),
    ...result.faults.map((fault): [string, string, string] => [
      `+${fault.atMs} ms ${fault.description}`,
      `recovery ${ms(fault.recoveryMs)}, in flight waited ${ms(fault.inFlightWaitMs)}`,
      '',
    ]),
    ...result.deadLetters.map((row): [string, string, string] => [
      `dead letters ${row.consumer} ${row.code}`,
      String(row.count),
      '',
    ]),
    [
      'stream replicas',
      result.streams.map((stream) => `${stream.name.replace(/^.*_/, '')}=${stream.replicas}`).join(' ') ||
        '-',
      '',
    ],
  ];
  const width = Math.max(...rows.map((row) => row[0].length));
  const valueWidth = Math.max(...rows.map((row) => row[1].length));
  const lines = [
    `== fault suite: ${result.scenario} (${result.wallClockSeconds} s) ==`,
    ...rows.map(
      ([name, value, verdict]) => `  ${name.padEnd(width)}  ${value.padStart(valueWidth)}  ${verdict}`,
    ),
  ];
  if (result.failures.length > 0) {
    lines.push(`  ${result.failures.length} failures:`);
    for (const failure of result.failures.slice(0, 40)) lines.push(`    - ${failure}`);
    if (result.failures.length > 40) lines.push(`    ... and ${result.failures.length - 40} more`);
  }
  return lines.join('\n');
}

/** The parts of a result the summary shows. */
export interface SummaryInput {
  scenario: string;
  wallClockSeconds: number;
  figures: Figures;
  timings: Record<string, number>;
  failures: string[];
}

/** One Markdown row per scenario (for docs/reliability.md): the asserted counters, then the timings. */
export function summaryTable(results: readonly SummaryInput[]): string {
  const header = [
    'scenario',
    'accepted',
    'lost',
    'stuck',
    'dup. tasks',
    'dup. sandbox runs',
    'dup. effects',
    'dup. outcomes',
    'plain dups',
    'wrong states',
    'crashes',
    'HTTP 5xx',
    'p50 / max latency',
    'wall clock',
    'verdict',
  ];
  const rows = results.map((result) => {
    const figures = result.figures;
    return [
      result.scenario,
      `${figures.accepted}/${figures.submitted}`,
      figures.lost,
      figures.stuck,
      figures.duplicateTasks,
      figures.duplicateSandboxRuns,
      figures.duplicateEffects,
      figures.duplicateOutcomes,
      figures.plainDuplicates,
      figures.wrongStates,
      figures.crashes,
      figures.http5xx,
      `${ms(result.timings['taskLatencyP50Ms'])} / ${ms(result.timings['taskLatencyMaxMs'])}`,
      `${result.wallClockSeconds} s`,
      result.failures.length === 0 ? 'pass' : `FAIL (${result.failures.length})`,
    ].map(String);
  });
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}
