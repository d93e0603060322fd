-- AlterTable
ALTER TABLE "Task" ADD COLUMN     "submittedBy" TEXT;

-- AlterTable
ALTER TABLE "StepRun" ADD COLUMN     "arguments" JSONB;

-- AlterTable
ALTER TABLE "ApprovalRequest" ADD COLUMN     "actionClass" TEXT,
ADD COLUMN     "basis" TEXT,
ADD COLUMN     "approverGroup" TEXT,
ADD COLUMN     "escalationLevel" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "onExpiry" TEXT,
ADD COLUMN     "remindedAt" TIMESTAMP(3),
ADD COLUMN     "revertedAt" TIMESTAMP(3),
ADD COLUMN     "revertedBy" TEXT,
ADD COLUMN     "revertReason" TEXT;

-- AlterTable
ALTER TABLE "WebhookDelivery" ADD COLUMN     "endpoint" TEXT,
ADD COLUMN     "approvalId" UUID;

-- AlterTable
ALTER TABLE "ApiToken" ADD COLUMN     "groups" TEXT[],
ADD COLUMN     "createdBy" TEXT;

-- CreateTable
CREATE TABLE "TrustEvent" (
    "id" UUID NOT NULL,
    "agentId" TEXT NOT NULL,
    "actionClass" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "sourceEvent" TEXT NOT NULL,
    "scoreBefore" DOUBLE PRECISION NOT NULL,
    "scoreAfter" DOUBLE PRECISION NOT NULL,
    "reason" TEXT NOT NULL,
    "actor" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TrustEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "TrustEvent_sourceEvent_agentId_actionClass_key" ON "TrustEvent"("sourceEvent", "agentId", "actionClass");

-- CreateIndex
CREATE INDEX "TrustEvent_agentId_actionClass_createdAt_idx" ON "TrustEvent"("agentId", "actionClass", "createdAt");

-- CreateIndex
CREATE INDEX "ApprovalRequest_status_deadline_idx" ON "ApprovalRequest"("status", "deadline");

-- CreateIndex
CREATE INDEX "WebhookDelivery_status_nextAttemptAt_idx" ON "WebhookDelivery"("status", "nextAttemptAt");
