/**
 * `pnpm bench` in the sandbox-runner: trivial Python and JavaScript jobs through the real backend (as the
 * service and `pnpm sandbox run` use it), once with the warm pool and once without. Prints p50 and p99
 * latency from request to result one at a time, jobs per second with 2 and 8 in flight, how far past its
 * time limit a runaway job is stopped (p50, p99), and the CPU spent per job (all processes of the machine,
 * from /proc/stat, so the boxes' interpreters count too). For scale it also measures the floor: a bare
 * `bwrap … python3 -I -S -c pass` and `bwrap … node -e 0` started back to back with 8 in flight, which is
 * what one fresh interpreter per job costs on this machine before the runner does anything.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { SandboxBackendConfig, createConfiguredBackend } from '../src/backend.js';
import { SandboxCeilingsConfig } from '../src/limits.js';
import type { SandboxBackend, SandboxJob, SandboxLanguage } from '../src/sandbox/index.js';

const SEQUENTIAL = Number(process.env['BENCH_SEQUENTIAL'] ?? 100);
const PARALLEL = Number(process.env['BENCH_PARALLEL'] ?? 200);
const RUNAWAY = Number(process.env['BENCH_RUNAWAY'] ?? 20);
const POOL_SIZE = Number(process.env['BENCH_POOL_SIZE'] ?? 2 * availableParallelism());
const LIMITS = { timeoutMs: 10_000, maxOutputBytes: 64 * 1024, memoryMb: 256 };
const LANGUAGES: SandboxLanguage[] = (process.env['BENCH_LANGUAGES'] ?? 'python,javascript')
  .split(',')
  .filter((language): language is SandboxLanguage => language === 'python' || language === 'javascript');

const TRIVIAL: Record<SandboxLanguage, string> = { python: 'result = 1', javascript: 'return 1' };
const RUNAWAY_CODE: Record<SandboxLanguage, string> = {
  python: 'while True:\n    pass',
  javascript: 'for (;;) {}',
};

function percentile(sorted: number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** Busy CPU time of the whole machine in seconds (user + nice + system + irq + softirq). */
function busyCpuSeconds(): number {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = fields;
  return (user + nice + system + irq + softirq) / 100;
}

async function inParallel(
  count: number,
  inFlight: number,
  work: () => Promise<void>,
): Promise<{ perSecond: number; cpuMs: number }> {
  let next = 0;
  const cpu = busyCpuSeconds();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        next += 1;
        await work();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: count / seconds, cpuMs: ((busyCpuSeconds() - cpu) * 1000) / count };
}

function spawnQuiet(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: {}, stdio: 'ignore' });
    child.once('error', reject);
    child.once('close', () => resolve());
  });
}

const BARE_BWRAP = [
  '--unshare-all',
  '--die-with-parent',
  '--new-session',
  '--ro-bind',
  '/usr',
  '/usr',
  '--symlink',
  'usr/bin',
  '/bin',
  '--symlink',
  'usr/lib',
  '/lib',
  '--symlink',
  'usr/lib64',
  '/lib64',
  '--proc',
  '/proc',
  '--dev',
  '/dev',
];

const figures: Record<string, number | string> = { cores: availableParallelism(), poolSize: POOL_SIZE };

for (const [name, command] of [
  ['floorBarePythonInBwrap', ['/usr/bin/python3', '-I', '-S', '-c', 'pass']],
  ['floorBareNodeInBwrap', ['/usr/bin/node', '-e', '0']],
] as const) {
  const floor = await inParallel(PARALLEL, 8, () =>
    spawnQuiet('/usr/bin/bwrap', [...BARE_BWRAP, ...command]),
  );
  figures[`${name}PerSecond`] = Number(floor.perSecond.toFixed(1));
  figures[`${name}CpuMsPerJob`] = Number(floor.cpuMs.toFixed(1));
}

const ceilings = SandboxCeilingsConfig.parse({});
for (const pooled of [true, false]) {
  const backend: SandboxBackend = createConfiguredBackend(
    SandboxBackendConfig.parse({ TANDEM_SANDBOX_POOL_SIZE: pooled ? POOL_SIZE : 0 }),
    ceilings,
  );
  const check = await backend.check();
  if (!check.ok) throw new Error(`the sandbox cannot run jobs: ${check.problems.join('; ')}`);
  figures['backend'] = backend.name;
  const mode = pooled ? 'Pool' : 'NoPool';
  if (pooled) backend.warm();

  const timed = async (job: SandboxJob): Promise<number> => {
    const started = performance.now();
    const result = await backend.run(job);
    const ms = performance.now() - started;
    if (job.limits.timeoutMs === LIMITS.timeoutMs && result.outcome !== 'ok')
      throw new Error(`a trivial ${job.language} job ended ${result.outcome}: ${result.errorMessage ?? ''}`);
    return ms;
  };

  for (const language of LANGUAGES) {
    const job: SandboxJob = { language, code: TRIVIAL[language], limits: LIMITS };
    for (let index = 0; index < 5; index += 1) await timed(job);
    const latencies: number[] = [];
    for (let index = 0; index < SEQUENTIAL; index += 1) {
      // One at a time, with the pool given its moment to refill, as for requests that do not queue.
      if (pooled) await new Promise((resolve) => setTimeout(resolve, 150));
      latencies.push(await timed(job));
    }
    latencies.sort((a, b) => a - b);
    figures[`${language}${mode}P50Ms`] = Number(percentile(latencies, 50).toFixed(1));
    figures[`${language}${mode}P99Ms`] = Number(percentile(latencies, 99).toFixed(1));
    for (const inFlight of [2, 8]) {
      const measured = await inParallel(PARALLEL, inFlight, async () => {
        await timed(job);
      });
      figures[`${language}${mode}JobsPerSecond${inFlight}InFlight`] = Number(measured.perSecond.toFixed(1));
      if (inFlight === 8) figures[`${language}${mode}CpuMsPerJob`] = Number(measured.cpuMs.toFixed(1));
    }
    if (pooled) {
      const overshoot: number[] = [];
      for (let index = 0; index < RUNAWAY; index += 1) {
        const limit = 500;
        const started = performance.now();
        const result = await backend.run({
          language,
          code: RUNAWAY_CODE[language],
          limits: { ...LIMITS, timeoutMs: limit },
        });
        if (result.outcome !== 'timeout')
          throw new Error(`a runaway ${language} job ended ${result.outcome}`);
        overshoot.push(performance.now() - started - limit);
      }
      overshoot.sort((a, b) => a - b);
      figures[`${language}RunawayOvershootP50Ms`] = Number(percentile(overshoot, 50).toFixed(1));
      figures[`${language}RunawayOvershootP99Ms`] = Number(percentile(overshoot, 99).toFixed(1));
    }
  }
  await backend.close();
}
for (const [name, value] of Object.entries(figures)) process.stdout.write(`${name.padEnd(40)} ${value}\n`);
process.stdout.write(`${JSON.stringify(figures)}\n`);
