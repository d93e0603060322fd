import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrismaSchema } from './helpers/prisma-schema.js';
import { actualShape, diffShapes, expectedShape } from './helpers/schema-drift.js';
import { createMigratedTestDatabase, withClient, type TestDatabase } from './helpers/test-database.js';

// The migrations are written by hand (the schema engine cannot run offline), so this test is what
// keeps them equal to schema.prisma: every model's table, columns (type, nullability, array-ness,
// default), primary key, unique indexes, indexes and foreign keys, with Prisma's names; and for every
// column whose `/// @kyselyType(...)` is a union of string literals, a CHECK constraint
// `<Table>_<column>_check` allowing exactly those values (the generated types promise no other value
// can be read, so the database must refuse any other).

const schemaPath = new URL('../../../prisma/schema.prisma', import.meta.url);
let expected: ReturnType<typeof expectedShape>;
let migrated: TestDatabase;
let tampered: TestDatabase;

beforeAll(async () => {
  expected = expectedShape(parsePrismaSchema(await readFile(schemaPath, 'utf8')));
  [migrated, tampered] = await Promise.all([createMigratedTestDatabase(), createMigratedTestDatabase()]);
});

afterAll(async () => {
  await Promise.all([migrated.drop(), tampered.drop()]);
});

describe('schema drift', () => {
  it('the migrated database matches schema.prisma for every model', async () => {
    const actual = await withClient(migrated.url, actualShape);
    const problems = diffShapes(expected, actual);
    expect(problems, `migrations and schema.prisma differ:\n  ${problems.join('\n  ')}\n`).toEqual([]);
    // Guard against a vacuous pass: the comparison saw every model.
    expect(expected.size).toBeGreaterThanOrEqual(21);
    expect([...expected.keys()].every((table) => actual.has(table))).toBe(true);
    // ... and every annotated status and kind column, with its CHECK read back as a list of values.
    const checked = [...expected.values()].flatMap((table) => table.checks);
    expect(checked.length).toBeGreaterThanOrEqual(5);
    for (const [name, table] of expected)
      for (const check of table.checks)
        expect(
          actual
            .get(name)
            ?.checks.find((found) => found.name === check.name)
            ?.values?.sort(),
        ).toEqual(check.values?.sort());
  });

  it('reports each kind of difference in a readable line', async () => {
    await withClient(tampered.url, (client) =>
      client.query(`
        ALTER TABLE "Task" ALTER COLUMN "goal" DROP NOT NULL;
        ALTER TABLE "Task" ALTER COLUMN "kind" DROP DEFAULT;
        ALTER TABLE "Task" ADD COLUMN "extra" TEXT;
        ALTER TABLE "Plan" ALTER COLUMN "qualityScore" TYPE REAL;
        ALTER TABLE "PlanStep" ALTER COLUMN "dependsOn" TYPE TEXT USING NULL;
        ALTER TABLE "Feedback" DROP COLUMN "verdict";
        DROP INDEX "Task_status_idx";
        DROP INDEX "Outbox_id_key";
        ALTER TABLE "AgentTrust" DROP CONSTRAINT "AgentTrust_agentId_fkey";
        ALTER TABLE "AgentTrust" ADD CONSTRAINT "AgentTrust_agentId_fkey" FOREIGN KEY ("agentId") REFERENCES "Agent"("id") ON DELETE CASCADE ON UPDATE CASCADE;
        ALTER TABLE "ReceivedWebhook" DROP CONSTRAINT "ReceivedWebhook_pkey";
        DROP TABLE "AuditLog";
        CREATE TABLE "Stray" ("id" TEXT);
        ALTER TABLE "SandboxRun" DROP CONSTRAINT "SandboxRun_status_check";
        ALTER TABLE "SandboxRun" DROP CONSTRAINT "SandboxRun_language_check";
        ALTER TABLE "SandboxRun" ADD CONSTRAINT "SandboxRun_language_check" CHECK ("language" IN ('javascript', 'python', 'ruby'));
        ALTER TABLE "ModelCall" RENAME CONSTRAINT "ModelCall_role_check" TO "ModelCall_role_values";
        ALTER TABLE "ModelCall" DROP CONSTRAINT "ModelCall_outcome_check";
        ALTER TABLE "ModelCall" ADD CONSTRAINT "ModelCall_outcome_check" CHECK (length("outcome") < 10);
        ALTER TABLE "Outbox" ADD CONSTRAINT "Outbox_publisher_check" CHECK ("publisher" IN ('planner'));
        ALTER TABLE "Outbox" ADD CONSTRAINT "Outbox_attempts_check" CHECK ("attempts" >= 0);
      `),
    );
    const problems = diffShapes(expected, await withClient(tampered.url, actualShape));
    expect(problems.sort()).toEqual(
      [
        'table "Task": column "goal" is text NULL, schema says text NOT NULL',
        `table "Task": column "kind" is text NOT NULL, schema says text NOT NULL DEFAULT 'general'::text`,
        'table "Task": column "extra" is not in the schema',
        'table "Plan": column "qualityScore" is float4 NULL, schema says float8 NULL',
        'table "PlanStep": column "dependsOn" is text NULL, schema says text[] NULL',
        'table "Feedback": column "verdict" missing (schema: text NULL)',
        // A dropped column takes its CHECK constraint with it: both are reported.
        `table "Feedback": column "verdict" has no CHECK constraint, schema says 'answered' | 'approved' | 'edited' | 'expired' | 'rejected' | 'reverted'`,
        'table "Task": index "Task_status_idx" (status) missing',
        'table "Outbox": unique index "Outbox_id_key" (id) missing',
        'table "AgentTrust": foreign key "AgentTrust_agentId_fkey" (agentId) -> "Agent" (id) ON DELETE Restrict ON UPDATE Cascade missing',
        'table "AgentTrust": foreign key "AgentTrust_agentId_fkey" (agentId) -> "Agent" (id) ON DELETE Cascade ON UPDATE Cascade is not in the schema',
        'table "ReceivedWebhook": primary key is none, schema says "ReceivedWebhook_pkey" (webhookId)',
        'table "AuditLog": missing in the database',
        'table "Stray": in the database but not in the schema',
        `table "SandboxRun": column "status" has no CHECK constraint, schema says 'finished' | 'running'`,
        `table "SandboxRun": column "language" allows 'javascript' | 'python' | 'ruby' ("SandboxRun_language_check"), schema says 'javascript' | 'python'`,
        'table "ModelCall": column "role" has its CHECK named "ModelCall_role_values", not "ModelCall_role_check"',
        `table "ModelCall": column "outcome" has CHECK ((length(outcome) < 10)) ("ModelCall_outcome_check"), not a list of values; schema says 'error' | 'ok'`,
        `table "Outbox": column "publisher" allows 'planner' ("Outbox_publisher_check"), but the schema has no @kyselyType union on it`,
      ].sort(),
    );
  });
});
