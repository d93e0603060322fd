/**
 * The host check of a backend (start-up and /readyz): the tools it runs, the scratch root, the cgroups, and
 * one probe box started through the same directories and binds as a Python job.
 */
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';

import type { BoxRoot } from './box-root.js';
import { BOX_DIR_PREFIX, type BoxHost, type JobDirs } from './box-host.js';
import { SETTLE_MS } from './box-pool.js';
import { startBox } from './box-process.js';
import { SECCOMP_FD, buildBwrapArgs, probeCommand } from './domain/bwrap-args.js';
import type { BackendSettings } from './domain/settings.js';
import { READY_MARKER } from './guest-wrappers.js';
import { RM_PATH, describeError } from './host-tools.js';
import type { SandboxCheck } from './types.js';

/** Budget for the probe box. */
const CHECK_TIMEOUT_MS = 10_000;

/** What the `process` backend does not enforce, for its check (logs and /readyz). */
export const PROCESS_BACKEND_GAPS = [
  'no namespaces (the weaker "process" backend was chosen): the guest can read every host file uid 65534 may read',
  'no network isolation: the guest can reach the network, including services on 127.0.0.1',
  'no pid isolation: the guest sees host processes (and can signal those of its own uid)',
  'no syscall filter (seccomp needs the bubblewrap backend)',
] as const;

/** Checks that a backend with `settings` can run jobs on this host; `warnings` are the limits it cannot enforce. */
export async function checkHost(settings: BackendSettings, host: BoxHost): Promise<SandboxCheck> {
  const { bwrapPath, credentials, isolated, pythonPath, scratchRoot, seccomp } = settings;
  const problems: string[] = [];
  const tools: Array<readonly [string, string]> = [
    ...(isolated ? [['bubblewrap', bwrapPath] as const] : []),
    ['prlimit', settings.prlimitPath],
    ['python', pythonPath],
    ['node', settings.nodePath],
  ];
  if (settings.workStorage === 'tmpfs')
    tools.push(['mount', settings.mountPath], ['umount', settings.umountPath]);
  else tools.push(['rm', RM_PATH]);
  const cgroups = await host.cgroups();
  const warnings = [...cgroups.missing, ...(isolated ? [] : PROCESS_BACKEND_GAPS)];
  for (const [what, file] of tools) {
    try {
      await access(file, fsConstants.X_OK);
    } catch {
      problems.push(
        `${what} is not an executable at ${file}${what === 'bubblewrap' ? ' (apt-get install bubblewrap)' : ''}`,
      );
    }
  }
  if (settings.workStorage === 'tmpfs' && credentials === undefined) {
    problems.push('a tmpfs working directory needs a root runner (use workStorage "directory")');
  }
  try {
    const info = await stat(scratchRoot);
    // bwrap runs as the sandbox user and must traverse the scratch root to bind the job dir.
    if (credentials !== undefined && info.uid !== credentials.uid && (info.mode & 0o001) === 0) {
      problems.push(`scratch root ${scratchRoot} is not searchable by uid ${credentials.uid}`);
    }
  } catch (error) {
    problems.push(`scratch root ${scratchRoot} is unusable: ${describeError(error)}`);
  }
  if (problems.length > 0 || !isolated) return { ok: problems.length === 0, problems, warnings };

  let root: BoxRoot;
  try {
    root = await host.rootBinds();
  } catch (error) {
    problems.push(`could not find what the box must hold of the interpreters: ${describeError(error)}`);
    return { ok: false, problems, warnings };
  }
  // The probe goes through the same directories and binds as a Python job (bwrap started directly, no
  // cgroup): the interpreter itself writes the ready marker, since the box holds nothing else to run.
  const readyMarker = Buffer.from(READY_MARKER, 'utf8');
  let dirs: JobDirs | undefined;
  try {
    dirs = await host.makeBoxDirs(`${BOX_DIR_PREFIX}${process.pid}-check-`, []);
    const probe = startBox({
      file: bwrapPath,
      args: buildBwrapArgs({
        root: root.python,
        boxDir: dirs.boxDir,
        workDir: dirs.workDir,
        tmpBytes: settings.tmpBytes,
        seccompFd: seccomp === null ? null : SECCOMP_FD,
        command: probeCommand(pythonPath),
      }),
      ...(seccomp === null ? {} : { inputs: [seccomp] }),
      ...(credentials === undefined ? {} : { credentials }),
      maxResultBytes: 1024,
      startOutputBytes: 64 * 1024,
      startTimeoutMs: CHECK_TIMEOUT_MS,
      settleMs: SETTLE_MS,
      readyMarker,
    });
    const observed = await probe.go({ line: '', timeoutMs: CHECK_TIMEOUT_MS, maxOutputBytes: 64 * 1024 });
    if (observed.spawnError !== null) {
      problems.push(`could not start bubblewrap at ${bwrapPath}: ${observed.spawnError.message}`);
    } else if (observed.exitCode !== 0 || !observed.result.bytes.equals(readyMarker)) {
      const detail = observed.stderr.bytes.toString('utf8').trim();
      const status =
        observed.killReason ?? `exit code ${String(observed.exitCode)}, signal ${String(observed.signal)}`;
      problems.push(
        `bubblewrap could not run ${pythonPath} in the box (${status})${detail === '' ? '' : `: ${detail}`}`,
      );
    }
  } catch (error) {
    problems.push(`could not prepare a probe directory: ${describeError(error)}`);
  } finally {
    if (dirs !== undefined) {
      const probeDirs = dirs;
      await host.removeBoxDirs(probeDirs).catch((error: unknown) => {
        problems.push(`could not remove the probe directory: ${describeError(error)}`);
      });
    }
  }
  return { ok: problems.length === 0, problems, warnings };
}
