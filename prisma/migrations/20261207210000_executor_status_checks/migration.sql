-- issue 13: the executor's status and kind columns accept only the values its code writes (the
-- @kyselyType unions in schema.prisma). Every value the executor ever wrote is in these lists, so
-- existing rows pass.

-- AddCheckConstraint
ALTER TABLE "TaskRun" ADD CONSTRAINT "TaskRun_status_check" CHECK ("status" IN ('running', 'replanning', 'completed', 'failed', 'cancelled'));

-- AddCheckConstraint
ALTER TABLE "StepRun" ADD CONSTRAINT "StepRun_status_check" CHECK ("status" IN ('waiting', 'approved', 'rejected', 'generating', 'running', 'fixing', 'completed', 'failed', 'superseded', 'cancelled'));

-- AddCheckConstraint
ALTER TABLE "StepRun" ADD CONSTRAINT "StepRun_approval_check" CHECK ("approval" IS NULL OR "approval" IN ('auto', 'human'));

-- AddCheckConstraint
ALTER TABLE "StepAttempt" ADD CONSTRAINT "StepAttempt_origin_check" CHECK ("origin" IN ('given', 'generate', 'fix'));

-- AddCheckConstraint
ALTER TABLE "StepAttempt" ADD CONSTRAINT "StepAttempt_outcome_check" CHECK ("outcome" IN ('running', 'ok', 'error', 'timeout', 'memory_limit', 'output_limit', 'killed', 'sandbox_error', 'generation_failed', 'lease_expired'));

-- AddCheckConstraint
ALTER TABLE "DeadLetterOutcome" ADD CONSTRAINT "DeadLetterOutcome_outcome_check" CHECK ("outcome" IN ('task_failed', 'task_ended', 'not_tandem', 'observer', 'no_task'));
