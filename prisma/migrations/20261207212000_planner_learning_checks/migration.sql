-- Issue 13: the status and kind columns of the planner's and learning's tables take only the values the
-- code writes and the contracts allow (schema.prisma's @kyselyType on each column says the same to the
-- compiler). Every value written before this migration is among them. Task.kind is the submitter's own
-- kind of task, not an enum, and stays free text.

-- AddCheckConstraint
ALTER TABLE "Task" ADD CONSTRAINT "Task_status_check" CHECK ("status" IN ('accepted', 'planning', 'planned', 'failed', 'cancelled'));

-- AddCheckConstraint
ALTER TABLE "Plan" ADD CONSTRAINT "Plan_status_check" CHECK ("status" IN ('active', 'superseded'));

-- AddCheckConstraint
ALTER TABLE "Plan" ADD CONSTRAINT "Plan_origin_check" CHECK ("origin" IN ('model', 'human', 'replan'));

-- AddCheckConstraint
ALTER TABLE "PlanStep" ADD CONSTRAINT "PlanStep_riskClass_check" CHECK ("riskClass" IN ('read', 'compute', 'write', 'network', 'destructive'));

-- AddCheckConstraint
ALTER TABLE "PlanMetrics" ADD CONSTRAINT "PlanMetrics_outcome_check" CHECK ("outcome" IS NULL OR "outcome" IN ('completed', 'failed', 'cancelled'));

-- AddCheckConstraint
ALTER TABLE "Feedback" ADD CONSTRAINT "Feedback_kind_check" CHECK ("kind" IN ('outcome', 'verdict', 'rating'));

-- AddCheckConstraint
ALTER TABLE "Feedback" ADD CONSTRAINT "Feedback_verdict_check" CHECK ("verdict" IS NULL OR "verdict" IN ('approved', 'rejected', 'edited', 'answered', 'expired', 'reverted'));

-- AddCheckConstraint
ALTER TABLE "LearningPattern" ADD CONSTRAINT "LearningPattern_type_check" CHECK ("type" IN ('strategy', 'prompt', 'tool_selection', 'code_pattern', 'error_recovery'));

-- AddCheckConstraint
ALTER TABLE "LearningPattern" ADD CONSTRAINT "LearningPattern_source_check" CHECK ("source" IN ('execution', 'feedback'));

-- AddCheckConstraint
ALTER TABLE "LearningPattern" ADD CONSTRAINT "LearningPattern_status_check" CHECK ("status" IN ('candidate', 'active', 'retired'));

-- AddCheckConstraint
ALTER TABLE "PromptVariant" ADD CONSTRAINT "PromptVariant_role_check" CHECK ("role" IN ('planning', 'code'));

-- AddCheckConstraint
ALTER TABLE "PromptVariant" ADD CONSTRAINT "PromptVariant_status_check" CHECK ("status" IN ('candidate', 'active', 'retired'));
