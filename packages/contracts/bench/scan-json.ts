/**
 * What the raw JSON scan costs before every HTTP body and bus payload is parsed: `scanJsonText` on a
 * typical 10 KB event and on a 1 MB one (the default limit), beside JSON.parse of the same text.
 * Run: `pnpm --filter @tandem/contracts run bench`. Prints medians over many runs.
 */
import { randomUUID } from 'node:crypto';
import { DEFAULT_BUS_PAYLOAD_LIMITS, scanJsonText } from '../src/index.js';

/** A step.finished-like envelope whose value is an HTTP result with a JSON list of records. */
function envelopeOf(targetBytes: number): string {
  const records: unknown[] = [];
  const envelope = {
    id: randomUUID(),
    type: 'step.finished',
    version: 1,
    occurredAt: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: null,
    data: {
      taskId: randomUUID(),
      stepId: randomUUID(),
      key: 'fetch-orders',
      tool: 'http_request',
      status: 'completed',
      value: { status: 200, headers: { 'content-type': 'application/json' }, json: { records } },
    },
  };
  let text = JSON.stringify(envelope);
  for (let index = 0; text.length < targetBytes; index += 1) {
    records.push({
      id: index,
      name: `customer ${index} "quoted" [bracketed] {braced}`,
      email: `c${index}@example.com`,
      tags: ['a', 'b', { nested: [index, index * 2, null, true] }],
      note: 'Ünïcödé text with escapes \\ and \n newlines',
      amount: index * 1.25,
    });
    if (index % 16 === 0) text = JSON.stringify(envelope);
  }
  return JSON.stringify(envelope);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function measure(label: string, text: string, runs: number): void {
  const scan: number[] = [];
  const parse: number[] = [];
  for (let run = 0; run < runs; run += 1) {
    let started = process.hrtime.bigint();
    const result = scanJsonText(text, DEFAULT_BUS_PAYLOAD_LIMITS);
    scan.push(Number(process.hrtime.bigint() - started) / 1_000);
    if (!result.ok) throw new Error(`${label}: the sample was refused (${result.problem})`);
    started = process.hrtime.bigint();
    JSON.parse(text);
    parse.push(Number(process.hrtime.bigint() - started) / 1_000);
  }
  const bytes = Buffer.byteLength(text);
  const scanUs = median(scan);
  const parseUs = median(parse);
  console.log(
    `${label.padEnd(8)} ${String(bytes).padStart(8)} B  scan ${scanUs.toFixed(1).padStart(8)} us` +
      `  (${(((bytes / scanUs) * 1e6) / 1024 / 1024).toFixed(0)} MiB/s)  JSON.parse ${parseUs.toFixed(1).padStart(8)} us` +
      `  scan/parse ${(scanUs / parseUs).toFixed(2)}`,
  );
}

const deep = `${'['.repeat(500_000)}${']'.repeat(500_000)}`;
const deepRuns: number[] = [];
for (let run = 0; run < 200; run += 1) {
  const started = process.hrtime.bigint();
  scanJsonText(deep, DEFAULT_BUS_PAYLOAD_LIMITS);
  deepRuns.push(Number(process.hrtime.bigint() - started) / 1_000);
}

console.log(`node ${process.version}, limits ${JSON.stringify(DEFAULT_BUS_PAYLOAD_LIMITS)}`);
measure('10 KB', envelopeOf(10 * 1024), 2_000);
measure('1 MB', envelopeOf(1000 * 1024), 100);
console.log(`1 MB of 500,000-deep brackets refused in ${median(deepRuns).toFixed(1)} us (median)`);
