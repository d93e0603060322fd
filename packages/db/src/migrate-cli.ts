// `pnpm db:migrate`: applies prisma/migrations to DATABASE_URL. A composition root, so it reads the
// environment itself; everything else takes its settings as arguments.
import { migrate, MigrationError } from './migrate.js';

async function main(): Promise<number> {
  const url = process.env['DATABASE_URL'];
  if (url === undefined || url.trim() === '') {
    process.stderr.write(
      'db:migrate: DATABASE_URL is not set.\n' +
        'Set it to the database to migrate, e.g. DATABASE_URL=postgresql://postgres@127.0.0.1:5432/tandem pnpm db:migrate\n',
    );
    return 2;
  }
  try {
    const result = await migrate({ url });
    for (const name of result.applied) process.stdout.write(`applied  ${name}\n`);
    for (const name of result.unknown) {
      process.stdout.write(`warning  ${name} is applied in the database but has no folder here\n`);
    }
    process.stdout.write(
      result.applied.length === 0
        ? `database is up to date (${result.alreadyApplied.length} migrations applied)\n`
        : `applied ${result.applied.length} migration(s); ${result.alreadyApplied.length} were already applied\n`,
    );
    return 0;
  } catch (error) {
    const code = error instanceof MigrationError ? `${error.code}: ` : '';
    process.stderr.write(
      `db:migrate failed: ${code}${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
}

process.exitCode = await main();
