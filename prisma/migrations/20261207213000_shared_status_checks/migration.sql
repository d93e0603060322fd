-- Issue 13: the status and kind columns of the shared and sandbox tables take only the values the code
-- writes and the contracts allow (schema.prisma says the same with @kyselyType; the drift test keeps
-- them equal). Every value written since the init migration is among them: SandboxOutcome,
-- SandboxLanguage, ModelRole and ModelCallRecord.outcome have not changed, and SandboxRun.status exists
-- since 20261207151000 with 'running' and 'finished' only.

-- AddCheckConstraint
ALTER TABLE "SandboxRun" ADD CONSTRAINT "SandboxRun_status_check" CHECK ("status" IN ('running', 'finished'));
ALTER TABLE "SandboxRun" ADD CONSTRAINT "SandboxRun_outcome_check" CHECK ("outcome" IS NULL OR "outcome" IN ('ok', 'error', 'timeout', 'memory_limit', 'output_limit', 'killed', 'sandbox_error'));
ALTER TABLE "SandboxRun" ADD CONSTRAINT "SandboxRun_language_check" CHECK ("language" IN ('javascript', 'python'));
ALTER TABLE "ModelCall" ADD CONSTRAINT "ModelCall_role_check" CHECK ("role" IN ('planning', 'code'));
ALTER TABLE "ModelCall" ADD CONSTRAINT "ModelCall_outcome_check" CHECK ("outcome" IN ('ok', 'error'));
