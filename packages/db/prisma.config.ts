import { defineConfig } from 'prisma/config';

// `prisma generate` reads this file even though it never connects; env('DATABASE_URL') would throw
// when unset, so fall back to a placeholder. Migrations are applied by our own migrator (src/migrate.ts),
// because the schema engine binary that `prisma migrate` downloads is not reachable offline.
export default defineConfig({
  schema: '../../prisma/schema.prisma',
  migrations: { path: '../../prisma/migrations' },
  datasource: { url: process.env['DATABASE_URL'] ?? 'postgresql://placeholder@localhost:5432/placeholder' },
});
