/**
 * `pnpm bench` in the sandbox-runner: trivial Python and JavaScript jobs through the real backend (as
 * the service and `pnpm sandbox run` use it). Prints p50 and p99 latency from request to result one at
 * a time, jobs per second with 2 and 8 in flight, and how far past its time limit a runaway job is
 * stopped (p50, p99). No warm pool exists yet: every job spawns its sandbox.
 */
import { performance } from 'node:perf_hooks';
import { createConfiguredBackend } from '../src/backend.js';
import type { SandboxJob } from '../src/sandbox/index.js';

const backend = createConfiguredBackend();
const SEQUENTIAL = Number(process.env['BENCH_SEQUENTIAL'] ?? 100);
const PARALLEL = Number(process.env['BENCH_PARALLEL'] ?? 200);
const RUNAWAY = Number(process.env['BENCH_RUNAWAY'] ?? 20);
const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024, memoryMb: 256 };

const TRIVIAL: Record<'python' | 'javascript', string> = { python: 'result = 1', javascript: 'return 1' };
const RUNAWAY_CODE: Record<'python' | 'javascript', string> = {
  python: 'while True:\n    pass',
  javascript: 'for (;;) {}',
};

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

async function timed(job: SandboxJob): Promise<number> {
  const started = performance.now();
  const result = await backend.run(job);
  const ms = performance.now() - started;
  if (job.limits.timeoutMs === LIMITS.timeoutMs && result.outcome !== 'ok')
    throw new Error(`a trivial ${job.language} job ended ${result.outcome}: ${result.errorMessage ?? ''}`);
  return ms;
}

const check = await backend.check();
if (!check.ok) throw new Error(`the sandbox cannot run jobs: ${check.problems.join('; ')}`);
const figures: Record<string, number | string> = { backend: backend.name, warmPool: 'none yet' };
for (const language of ['python', 'javascript'] as const) {
  const job: SandboxJob = { language, code: TRIVIAL[language], limits: LIMITS };
  for (let index = 0; index < 5; index += 1) await timed(job);
  const latencies: number[] = [];
  for (let index = 0; index < SEQUENTIAL; index += 1) latencies.push(await timed(job));
  latencies.sort((a, b) => a - b);
  figures[`${language}P50Ms`] = Number(percentile(latencies, 50).toFixed(1));
  figures[`${language}P99Ms`] = Number(percentile(latencies, 99).toFixed(1));
  for (const inFlight of [2, 8]) {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < PARALLEL) {
          next += 1;
          await timed(job);
        }
      }),
    );
    figures[`${language}JobsPerSecond${inFlight}InFlight`] = Number(
      (PARALLEL / ((performance.now() - started) / 1000)).toFixed(1),
    );
  }
  const overshoot: number[] = [];
  for (let index = 0; index < RUNAWAY; index += 1) {
    const limit = 500;
    const started = performance.now();
    const result = await backend.run({
      language,
      code: RUNAWAY_CODE[language],
      limits: { ...LIMITS, timeoutMs: limit },
    });
    if (result.outcome !== 'timeout') throw new Error(`a runaway ${language} job ended ${result.outcome}`);
    overshoot.push(performance.now() - started - limit);
  }
  overshoot.sort((a, b) => a - b);
  figures[`${language}RunawayOvershootP50Ms`] = Number(percentile(overshoot, 50).toFixed(1));
  figures[`${language}RunawayOvershootP99Ms`] = Number(percentile(overshoot, 99).toFixed(1));
}
for (const [name, value] of Object.entries(figures)) process.stdout.write(`${name.padEnd(36)} ${value}\n`);
process.stdout.write(`${JSON.stringify(figures)}\n`);
