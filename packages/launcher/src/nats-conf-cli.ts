import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { renderInfraNatsConfig } from './infra-nats-conf.js';
import { repositoryRoot } from './paths.js';

// `pnpm --filter @tandem/launcher run nats:conf [--check]`: writes infra/nats/nats.conf from the topology,
// or (--check) exits 1 when the committed file differs from what it would write.
const file = join(repositoryRoot, 'infra', 'nats', 'nats.conf');
const wanted = renderInfraNatsConfig();
if (process.argv.includes('--check')) {
  const current = await readFile(file, 'utf8').catch(() => '');
  if (current !== wanted) {
    process.stderr.write(
      `${file} differs from the topology; run pnpm --filter @tandem/launcher run nats:conf\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${file} is up to date\n`);
} else {
  await writeFile(file, wanted);
  process.stdout.write(`wrote ${file}\n`);
}
