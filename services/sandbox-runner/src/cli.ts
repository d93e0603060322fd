/**
 * `pnpm --silent sandbox run --language javascript|python [--timeout-ms N] [--memory-mb N]` (fixed):
 * reads a program on stdin, runs it as one job on the same backend and under the same operator ceilings
 * as a job from the bus, and prints the result as one JSON object on the last line of stdout. Exit code:
 * 0 when the job ended `ok`, 1 for any other outcome, 2 for a usage or configuration error.
 */
import type { z } from 'zod';
import { type Flags, UsageError, parseArguments } from './cli-arguments.js';
import { SandboxBackendConfig, createConfiguredBackend } from './backend.js';
import { SandboxCeilingsConfig, clampLimits } from './limits.js';

const USAGE =
  'usage: pnpm --silent sandbox run --language javascript|python [--timeout-ms N] [--memory-mb N] < program';
const MAX_PROGRAM_BYTES = 200_000;
const DEFAULT_TIMEOUT_MS = 10_000;

async function readProgram(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.byteLength;
    if (size > MAX_PROGRAM_BYTES) throw new UsageError(`the program is over ${MAX_PROGRAM_BYTES} bytes`);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new UsageError('no program on stdin');
  return text;
}

async function main(): Promise<number> {
  let flags: z.infer<typeof Flags>;
  let program: string;
  const ceilings = SandboxCeilingsConfig.safeParse(process.env);
  try {
    if (!ceilings.success) {
      throw new UsageError(
        `invalid configuration: ${ceilings.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      );
    }
    flags = parseArguments(process.argv.slice(2));
    program = await readProgram();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`sandbox: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  const backendConfig = SandboxBackendConfig.safeParse(process.env);
  if (!backendConfig.success) {
    process.stderr.write(
      `sandbox: invalid configuration: ${backendConfig.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}\n`,
    );
    return 2;
  }
  const backend = createConfiguredBackend(backendConfig.data, ceilings.data);
  const check = await backend.check();
  if (!check.ok) {
    process.stdout.write(
      `${JSON.stringify({ outcome: 'sandbox_error', backend: backend.name, errorMessage: check.problems.join('; ') })}\n`,
    );
    return 1;
  }
  const limits = clampLimits(
    {
      timeoutMs: flags['timeout-ms'] ?? DEFAULT_TIMEOUT_MS,
      maxOutputBytes: ceilings.data.TANDEM_SANDBOX_MAX_OUTPUT_BYTES,
      memoryMb: flags['memory-mb'],
    },
    ceilings.data,
  );
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const result = await backend
    .run({ language: flags.language, code: program, input: null, limits }, { signal: controller.signal })
    .finally(() => backend.close());
  process.stdout.write(
    `${JSON.stringify({
      outcome: result.outcome,
      stdout: result.stdout,
      stderr: result.stderr,
      stdoutTruncated: result.stdoutTruncated,
      stderrTruncated: result.stderrTruncated,
      value: result.value ?? null,
      exitCode: result.exitCode,
      signal: result.signal,
      durationMs: result.durationMs,
      peakMemoryBytes: result.peakMemoryBytes ?? null,
      limits,
      backend: backend.name,
      ...(result.errorMessage === undefined ? {} : { errorMessage: result.errorMessage }),
      files: result.files.map((file) => ({ path: file.path, size: file.content.byteLength })),
    })}\n`,
  );
  return result.outcome === 'ok' ? 0 : 1;
}

process.exitCode = await main();
