-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "deadline" TIMESTAMP(3),
ADD COLUMN     "preferences" JSONB;

-- AlterTable
ALTER TABLE "Plan" ADD COLUMN     "editedBy" TEXT,
ADD COLUMN     "estimatedCostUsd" DOUBLE PRECISION,
ADD COLUMN     "origin" TEXT NOT NULL DEFAULT 'model',
ADD COLUMN     "status" TEXT NOT NULL DEFAULT 'active',
ADD COLUMN     "supersedesId" UUID;

-- AlterTable
ALTER TABLE "TaskRun" ADD COLUMN     "replans" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "ApprovalRequest" ADD COLUMN     "kind" TEXT NOT NULL DEFAULT 'approval',
ADD COLUMN     "question" TEXT;

-- AlterTable
ALTER TABLE "ModelCall" ADD COLUMN     "attempt" INTEGER NOT NULL DEFAULT 1,
ADD COLUMN     "candidateId" TEXT,
ADD COLUMN     "tier" TEXT;

-- AlterTable
ALTER TABLE "SandboxRun" ADD COLUMN     "filesTruncated" BOOLEAN NOT NULL DEFAULT false;

-- AlterTable
ALTER TABLE "PlanMetrics" ADD COLUMN     "estimatedCostUsd" DOUBLE PRECISION,
ADD COLUMN     "outcome" TEXT,
ADD COLUMN     "outcomeAt" TIMESTAMP(3),
ADD COLUMN     "qualityFactors" JSONB;

-- CreateTable
CREATE TABLE "WorkspaceFile" (
    "taskId" UUID NOT NULL,
    "path" TEXT NOT NULL,
    "content" BYTEA NOT NULL,
    "size" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "stepId" UUID,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WorkspaceFile_pkey" PRIMARY KEY ("taskId","path")
);

-- CreateTable
CREATE TABLE "SandboxRunFile" (
    "runId" UUID NOT NULL,
    "path" TEXT NOT NULL,
    "content" BYTEA,
    "size" INTEGER NOT NULL DEFAULT 0,
    "deleted" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "SandboxRunFile_pkey" PRIMARY KEY ("runId","path")
);

-- CreateTable
CREATE TABLE "StepAttempt" (
    "id" UUID NOT NULL,
    "stepId" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "origin" TEXT NOT NULL,
    "code" TEXT,
    "sandboxKey" TEXT,
    "outcome" TEXT NOT NULL,
    "error" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "StepAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "StepAttempt_taskId_idx" ON "StepAttempt"("taskId");

-- CreateIndex
CREATE UNIQUE INDEX "StepAttempt_stepId_attempt_key" ON "StepAttempt"("stepId", "attempt");
