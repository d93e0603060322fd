-- AlterTable
ALTER TABLE "DeadLetter" ADD COLUMN     "taskId" UUID;

-- CreateTable
CREATE TABLE "DeadLetterOutcome" (
    "deadLetterId" UUID NOT NULL,
    "taskId" UUID,
    "outcome" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DeadLetterOutcome_pkey" PRIMARY KEY ("deadLetterId")
);


-- CreateTable
CREATE TABLE "EarlyCancel" (
    "id" UUID NOT NULL,
    "taskId" UUID,
    "source" TEXT,
    "externalId" TEXT,
    "reason" TEXT,
    "requestedBy" TEXT,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EarlyCancel_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "EarlyCancel_taskId_idx" ON "EarlyCancel"("taskId");

-- CreateIndex
CREATE INDEX "EarlyCancel_source_externalId_idx" ON "EarlyCancel"("source", "externalId");

-- CreateIndex
CREATE INDEX "EarlyCancel_expiresAt_idx" ON "EarlyCancel"("expiresAt");

-- AlterTable
ALTER TABLE "StepAttempt" ADD COLUMN     "requests" INTEGER NOT NULL DEFAULT 1;

-- CreateIndex
CREATE INDEX "TaskRun_status_updatedAt_idx" ON "TaskRun"("status", "updatedAt");

-- CreateIndex
CREATE INDEX "StepAttempt_finishedAt_idx" ON "StepAttempt"("finishedAt");
