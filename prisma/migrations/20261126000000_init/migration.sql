-- CreateTable
CREATE TABLE "Task" (
    "id" UUID NOT NULL,
    "source" TEXT NOT NULL,
    "externalId" TEXT NOT NULL,
    "requestHash" TEXT NOT NULL,
    "agentId" TEXT,
    "kind" TEXT NOT NULL DEFAULT 'general',
    "goal" TEXT NOT NULL,
    "input" JSONB,
    "status" TEXT NOT NULL,
    "budget" JSONB,
    "error" JSONB,
    "correlationId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Task_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Plan" (
    "id" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "strategy" TEXT,
    "rationale" TEXT,
    "modelsUsed" JSONB,
    "promptVariant" TEXT,
    "qualityScore" DOUBLE PRECISION,
    "risk" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Plan_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PlanStep" (
    "id" UUID NOT NULL,
    "planId" UUID NOT NULL,
    "stepKey" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "dependsOn" TEXT[],
    "tool" TEXT NOT NULL,
    "arguments" JSONB NOT NULL,
    "riskClass" TEXT NOT NULL,
    "rationale" TEXT,
    "riskLevel" TEXT,
    "riskReasons" JSONB,
    "idempotencyKey" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PlanStep_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TaskRun" (
    "taskId" UUID NOT NULL,
    "planId" UUID,
    "status" TEXT NOT NULL,
    "result" JSONB,
    "error" JSONB,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finishedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "TaskRun_pkey" PRIMARY KEY ("taskId")
);

-- CreateTable
CREATE TABLE "StepRun" (
    "stepId" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "status" TEXT NOT NULL,
    "approval" TEXT,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "code" TEXT,
    "result" JSONB,
    "error" JSONB,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "StepRun_pkey" PRIMARY KEY ("stepId")
);

-- CreateTable
CREATE TABLE "ApprovalRequest" (
    "id" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "planId" UUID NOT NULL,
    "stepId" UUID,
    "agentId" TEXT,
    "tool" TEXT,
    "riskClass" TEXT,
    "riskLevel" TEXT,
    "riskReasons" JSONB,
    "trustAtDecision" DOUBLE PRECISION,
    "mode" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "deadline" TIMESTAMP(3),
    "decidedBy" TEXT,
    "decidedAt" TIMESTAMP(3),
    "reason" TEXT,
    "editedArguments" JSONB,
    "answer" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ApprovalRequest_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Feedback" (
    "id" UUID NOT NULL,
    "taskId" UUID,
    "stepId" UUID,
    "approvalId" UUID,
    "kind" TEXT NOT NULL,
    "verdict" TEXT,
    "comment" TEXT,
    "data" JSONB,
    "sourceEventId" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Feedback_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Agent" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Agent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AgentTrust" (
    "agentId" TEXT NOT NULL,
    "actionClass" TEXT NOT NULL,
    "score" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "successes" INTEGER NOT NULL DEFAULT 0,
    "failures" INTEGER NOT NULL DEFAULT 0,
    "cap" DOUBLE PRECISION,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AgentTrust_pkey" PRIMARY KEY ("agentId","actionClass")
);

-- CreateTable
CREATE TABLE "ModelCall" (
    "id" UUID NOT NULL,
    "taskId" UUID,
    "role" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "endpoint" TEXT NOT NULL,
    "promptTokens" INTEGER NOT NULL DEFAULT 0,
    "completionTokens" INTEGER NOT NULL DEFAULT 0,
    "totalTokens" INTEGER NOT NULL DEFAULT 0,
    "costUsd" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "latencyMs" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "errorCode" TEXT,
    "fallback" BOOLEAN NOT NULL DEFAULT false,
    "idempotencyKey" TEXT,
    "response" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ModelCall_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SandboxRun" (
    "id" UUID NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "taskId" UUID,
    "stepId" UUID,
    "language" TEXT NOT NULL,
    "codeHash" TEXT NOT NULL,
    "limits" JSONB NOT NULL,
    "outcome" TEXT NOT NULL,
    "stdout" TEXT NOT NULL,
    "stderr" TEXT NOT NULL,
    "stdoutTruncated" BOOLEAN NOT NULL DEFAULT false,
    "stderrTruncated" BOOLEAN NOT NULL DEFAULT false,
    "value" JSONB,
    "exitCode" INTEGER,
    "durationMs" INTEGER NOT NULL,
    "peakMemoryBytes" BIGINT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "SandboxRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LearningPattern" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "scope" TEXT NOT NULL,
    "signature" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "provenance" JSONB NOT NULL,
    "successCount" INTEGER NOT NULL DEFAULT 0,
    "failureCount" INTEGER NOT NULL DEFAULT 0,
    "confidence" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "status" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LearningPattern_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PromptVariant" (
    "id" UUID NOT NULL,
    "role" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "template" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "trials" INTEGER NOT NULL DEFAULT 0,
    "successes" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "PromptVariant_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "PlanMetrics" (
    "planId" UUID NOT NULL,
    "taskId" UUID NOT NULL,
    "stepCount" INTEGER NOT NULL,
    "validationErrors" INTEGER NOT NULL DEFAULT 0,
    "repairAttempts" INTEGER NOT NULL DEFAULT 0,
    "qualityScore" DOUBLE PRECISION,
    "planningMs" INTEGER NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "PlanMetrics_pkey" PRIMARY KEY ("planId")
);

-- CreateTable
CREATE TABLE "Outbox" (
    "seq" BIGSERIAL NOT NULL,
    "id" UUID NOT NULL,
    "publisher" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "headers" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "publishedAt" TIMESTAMP(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,

    CONSTRAINT "Outbox_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "ProcessedMessage" (
    "consumer" TEXT NOT NULL,
    "messageId" TEXT NOT NULL,
    "processedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ProcessedMessage_pkey" PRIMARY KEY ("consumer","messageId")
);

-- CreateTable
CREATE TABLE "DeadLetter" (
    "id" UUID NOT NULL,
    "consumer" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "streamSeq" BIGINT,
    "messageId" TEXT,
    "code" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "payload" TEXT NOT NULL,
    "headers" JSONB,
    "deliveryCount" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DeadLetter_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "WebhookDelivery" (
    "id" UUID NOT NULL,
    "webhookId" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastStatus" INTEGER,
    "lastError" TEXT,
    "nextAttemptAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "WebhookDelivery_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ReceivedWebhook" (
    "webhookId" TEXT NOT NULL,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ReceivedWebhook_pkey" PRIMARY KEY ("webhookId")
);

-- CreateTable
CREATE TABLE "ApiToken" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "agentIds" TEXT[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiToken_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditLog" (
    "seq" BIGSERIAL NOT NULL,
    "id" UUID NOT NULL,
    "service" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "subjectType" TEXT NOT NULL,
    "subjectId" TEXT NOT NULL,
    "actor" TEXT,
    "reason" TEXT,
    "data" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuditLog_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE INDEX "Task_status_idx" ON "Task"("status");

-- CreateIndex
CREATE UNIQUE INDEX "Task_source_externalId_key" ON "Task"("source", "externalId");

-- CreateIndex
CREATE UNIQUE INDEX "Plan_taskId_version_key" ON "Plan"("taskId", "version");

-- CreateIndex
CREATE UNIQUE INDEX "PlanStep_idempotencyKey_key" ON "PlanStep"("idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "PlanStep_planId_index_key" ON "PlanStep"("planId", "index");

-- CreateIndex
CREATE UNIQUE INDEX "PlanStep_planId_stepKey_key" ON "PlanStep"("planId", "stepKey");

-- CreateIndex
CREATE INDEX "StepRun_taskId_idx" ON "StepRun"("taskId");

-- CreateIndex
CREATE INDEX "ApprovalRequest_status_createdAt_idx" ON "ApprovalRequest"("status", "createdAt");

-- CreateIndex
CREATE INDEX "ApprovalRequest_taskId_idx" ON "ApprovalRequest"("taskId");

-- CreateIndex
CREATE UNIQUE INDEX "ApprovalRequest_stepId_key" ON "ApprovalRequest"("stepId");

-- CreateIndex
CREATE UNIQUE INDEX "Feedback_sourceEventId_kind_key" ON "Feedback"("sourceEventId", "kind");

-- CreateIndex
CREATE INDEX "ModelCall_taskId_idx" ON "ModelCall"("taskId");

-- CreateIndex
CREATE INDEX "ModelCall_idempotencyKey_idx" ON "ModelCall"("idempotencyKey");

-- CreateIndex
CREATE UNIQUE INDEX "SandboxRun_idempotencyKey_key" ON "SandboxRun"("idempotencyKey");

-- CreateIndex
CREATE INDEX "SandboxRun_taskId_idx" ON "SandboxRun"("taskId");

-- CreateIndex
CREATE INDEX "LearningPattern_type_scope_status_idx" ON "LearningPattern"("type", "scope", "status");

-- CreateIndex
CREATE UNIQUE INDEX "LearningPattern_type_scope_signature_key" ON "LearningPattern"("type", "scope", "signature");

-- CreateIndex
CREATE UNIQUE INDEX "PromptVariant_role_name_key" ON "PromptVariant"("role", "name");

-- CreateIndex
CREATE UNIQUE INDEX "Outbox_id_key" ON "Outbox"("id");

-- CreateIndex
CREATE INDEX "Outbox_publisher_publishedAt_seq_idx" ON "Outbox"("publisher", "publishedAt", "seq");

-- CreateIndex
CREATE INDEX "DeadLetter_createdAt_idx" ON "DeadLetter"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "DeadLetter_consumer_streamSeq_key" ON "DeadLetter"("consumer", "streamSeq");

-- CreateIndex
CREATE UNIQUE INDEX "WebhookDelivery_webhookId_url_key" ON "WebhookDelivery"("webhookId", "url");

-- CreateIndex
CREATE UNIQUE INDEX "ApiToken_tokenHash_key" ON "ApiToken"("tokenHash");

-- CreateIndex
CREATE UNIQUE INDEX "AuditLog_id_key" ON "AuditLog"("id");

-- CreateIndex
CREATE INDEX "AuditLog_subjectType_subjectId_idx" ON "AuditLog"("subjectType", "subjectId");

-- AddForeignKey
ALTER TABLE "Plan" ADD CONSTRAINT "Plan_taskId_fkey" FOREIGN KEY ("taskId") REFERENCES "Task"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "PlanStep" ADD CONSTRAINT "PlanStep_planId_fkey" FOREIGN KEY ("planId") REFERENCES "Plan"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TaskRun" ADD CONSTRAINT "TaskRun_taskId_fkey" FOREIGN KEY ("taskId") REFERENCES "Task"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "StepRun" ADD CONSTRAINT "StepRun_stepId_fkey" FOREIGN KEY ("stepId") REFERENCES "PlanStep"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AgentTrust" ADD CONSTRAINT "AgentTrust_agentId_fkey" FOREIGN KEY ("agentId") REFERENCES "Agent"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
