import { readdir } from 'node:fs/promises';

/**
 * Job cgroups of this test process still present in any hierarchy the backend uses (v1 memory and pids,
 * or v2). Only this process's jobs: other test files run sandboxes in parallel. A cgroup can only be
 * removed once no process is left in it, so an empty list also means nothing of the jobs survived.
 */
export async function leftoverJobCgroups(pid: number = process.pid): Promise<string[]> {
  const found: string[] = [];
  for (const dir of [
    '/sys/fs/cgroup/memory/tandem-sandbox',
    '/sys/fs/cgroup/pids/tandem-sandbox',
    '/sys/fs/cgroup/tandem-sandbox',
  ]) {
    try {
      found.push(...(await readdir(dir)).filter((name) => name.startsWith(`job-${pid}-`)));
    } catch {
      // That hierarchy is not in use here.
    }
  }
  return found;
}
