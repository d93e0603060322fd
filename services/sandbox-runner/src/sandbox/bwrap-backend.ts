/**
 * The bubblewrap backend, composed of its parts: settings (`domain/settings.ts`), the box's command lines
 * (`domain/bwrap-args.ts`), the host resources of its boxes (`box-host.ts`), the warm pools
 * (`box-pool.ts`), the interpretation of what a box did (`domain/outcome.ts`) and the host check
 * (`host-check.ts`). This file hands a job to a box and turns what came back into its result.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { createBoxHost } from './box-host.js';
import { createBoxPools, type Box } from './box-pool.js';
import { assertValidJob, collectLimits, goLine, oversizedFiles } from './domain/job.js';
import { earlyResult, interpretOutcome, withCgroupStats } from './domain/outcome.js';
import { resolveSettings, type BackendSettings, type BwrapBackendOptions } from './domain/settings.js';
import { BOX_FILES } from './guest-wrappers.js';
import { checkHost } from './host-check.js';
import { describeError } from './host-tools.js';
import type { SandboxBackend, SandboxFile, SandboxJob, SandboxResult, SandboxRunOptions } from './types.js';
import { collectWorkFiles, writeInputFiles, type CollectedFiles } from './work-files.js';

export type { BwrapBackendOptions } from './domain/settings.js';

/** Collects the working directory; whatever happens, a result rather than a throw. */
async function collect(
  settings: BackendSettings,
  job: SandboxJob,
  workDir: string,
  inputFiles: SandboxFile[],
): Promise<CollectedFiles> {
  try {
    return await collectWorkFiles(workDir, inputFiles, collectLimits(job, settings.maxCollectEntries));
  } catch {
    return { files: [], deletedFiles: [], filesTruncated: true };
  }
}

/** Hands the job to a ready box: its files, its memory limit, then the go line; interprets what came back. */
async function runInBox(
  settings: BackendSettings,
  job: SandboxJob,
  box: Box,
  inputJson: string,
  inputFiles: SandboxFile[],
  runOptions: SandboxRunOptions,
): Promise<SandboxResult> {
  const boxProcess = box.process;
  const dirs = box.dirs;
  if (box.setupError !== null || boxProcess === null || dirs === null) {
    return earlyResult('sandbox_error', box.setupError ?? 'the sandbox did not start');
  }
  const memoryMb = job.limits.memoryMb ?? settings.defaultMemoryMb;
  if (await boxProcess.ready) {
    try {
      // Root wrote them after the box started: code and input readable by the sandbox user.
      const code = job.language === 'python' ? BOX_FILES.pythonCode : BOX_FILES.javascriptCode;
      // Synchronous: two small files, where each promise-based write costs thread-pool round trips.
      writeFileSync(path.join(dirs.boxDir, code), job.code, { mode: 0o444 });
      writeFileSync(path.join(dirs.boxDir, BOX_FILES.input), inputJson, { mode: 0o444 });
      await writeInputFiles(dirs.workDir, inputFiles, settings.credentials);
    } catch (error) {
      await boxProcess.discard();
      return earlyResult('sandbox_error', `could not hand the job to its sandbox: ${describeError(error)}`);
    }
    if (box.cgroup !== null) {
      try {
        await box.cgroup.setMemoryLimit(memoryMb * 1024 * 1024);
      } catch {
        await boxProcess.discard();
        return earlyResult(
          'memory_limit',
          `the memory limit of ${memoryMb} MB is too small to start the ${job.language} interpreter`,
        );
      }
    }
  }
  const observed = await boxProcess.go({
    line: goLine(job),
    timeoutMs: job.limits.timeoutMs,
    maxOutputBytes: job.limits.maxOutputBytes,
    ...(runOptions.signal === undefined ? {} : { signal: runOptions.signal }),
  });
  const stats = box.cgroup === null ? null : await box.cgroup.stats();
  const result = withCgroupStats(
    interpretOutcome(job, observed, {
      bwrapPath: settings.bwrapPath,
      maxResultBytes: settings.maxResultBytes,
      memoryMb,
    }),
    stats,
    observed.killReason,
    memoryMb,
  );
  // Read only now, by the runner: the guest never reports its own files.
  return { ...result, ...(await collect(settings, job, dirs.workDir, inputFiles)) };
}

/**
 * Creates the bubblewrap backend. Each job runs in a fresh bwrap box: own user, pid, net, mount, ipc and
 * uts namespaces, an empty read-only root holding only its interpreter and what that loads, its own working
 * directory and a size-capped /tmp to write to, an empty environment, host uid 65534 in per-job memory and
 * pids cgroups when the runner is root, rlimits as backstops, and a wall-clock SIGKILL. After the box is
 * gone the runner collects what the guest wrote to its working directory.
 *
 * Boxes are started before their job (a warm pool of `poolSize` per language, or on demand): the interpreter
 * starts, then waits on the go channel; the job's code, input and files are written into the box's
 * directories when the job arrives, its memory limit is set on the box's cgroup, and its clock starts at go.
 */
export function createBwrapBackend(options: BwrapBackendOptions = {}): SandboxBackend {
  const systemTmp = tmpdir();
  const settings = resolveSettings(options, {
    uid: process.getuid?.(),
    tmpdir: systemTmp,
    arch: process.arch,
  });
  const host = createBoxHost(settings, systemTmp);
  const pools = createBoxPools(settings, host);
  let closed = false;

  async function run(job: SandboxJob, runOptions: SandboxRunOptions = {}): Promise<SandboxResult> {
    const { inputJson, files: inputFiles } = assertValidJob(job);
    if (runOptions.signal?.aborted === true) {
      return earlyResult('killed', 'the run was aborted before it started');
    }
    if (closed) return earlyResult('sandbox_error', 'the sandbox backend was closed');
    const tooLarge = oversizedFiles(inputFiles, settings.workBytes);
    if (tooLarge !== null) return earlyResult('sandbox_error', tooLarge);
    const box = await pools.acquire(job.language);
    try {
      return await runInBox(settings, job, box, inputJson, inputFiles, runOptions);
    } finally {
      // Off the job's path: kill whatever is left in the job's cgroups (a daemon that left the process group
      // included; the pid namespace normally took everything with it already), remove them and the dirs.
      host.schedule(box.dirs, box.cgroup);
      // The replacement starts once the caller has its result (spawning is synchronous work here).
      setImmediate(() => pools.refill(job.language));
    }
  }

  return {
    name: settings.isolated ? 'bwrap' : 'process',
    run,
    check: () => checkHost(settings, host),
    warm() {
      if (closed) return;
      pools.fill();
    },
    drain: () => host.drain(),
    async close() {
      closed = true;
      await pools.close();
      await host.drain();
      await host.close();
    },
  };
}
