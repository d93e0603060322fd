import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { renderInfraNatsConfig } from './infra-nats-conf.js';
import { repositoryRoot } from './paths.js';

// `pnpm --filter @tandem/launcher run nats:conf [--check] [--prefix p --out file]`: writes
// infra/nats/nats.conf from the topology (packages/bus/src/topology.ts), or with --check exits 1 when
// the committed file differs from what it would write. --prefix/--out: the same config for another
// TANDEM_SUBJECT_PREFIX, written elsewhere (the committed file is for `tandem`).
const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    prefix: { type: 'string' },
    out: { type: 'string' },
  },
});
const file = values.out ?? join(repositoryRoot, 'infra', 'nats', 'nats.conf');
const wanted = renderInfraNatsConfig(values.prefix);
if (values.check) {
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
