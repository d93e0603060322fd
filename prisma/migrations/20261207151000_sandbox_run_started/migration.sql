-- Issue 12: a sandbox job records that it started (status 'running', keyed by its idempotency key)
-- before its program runs, and its result is stored once on that row; a re-run after a runner died is
-- counted in "attempts". Rows written before this migration are finished runs.

-- AlterTable
ALTER TABLE "SandboxRun" ADD COLUMN     "status" TEXT NOT NULL DEFAULT 'finished',
ADD COLUMN     "attempts" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "startedAt" TIMESTAMP(3),
ADD COLUMN     "finishedAt" TIMESTAMP(3),
ADD COLUMN     "errorCode" TEXT,
ADD COLUMN     "errorMessage" TEXT,
ALTER COLUMN "outcome" DROP NOT NULL,
ALTER COLUMN "stdout" SET DEFAULT '',
ALTER COLUMN "stderr" SET DEFAULT '',
ALTER COLUMN "durationMs" DROP NOT NULL;
