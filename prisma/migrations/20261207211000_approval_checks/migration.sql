-- Issue 13: the status and kind columns of the approval service's tables take only the values the code
-- writes and the contracts allow (schema.prisma's @kyselyType on each column says the same to the
-- compiler). Every value written before this migration is among them: requests were always created with
-- the contracts' RiskClass, RiskLevel and OnExpiry values, `escalated` is allowed for the API's filter
-- (an escalated request stays `pending`), and webhook deliveries were only ever pending, delivered or
-- failed.

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_riskClass_check" CHECK ("riskClass" IS NULL OR "riskClass" IN ('read', 'compute', 'write', 'network', 'destructive'));

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_riskLevel_check" CHECK ("riskLevel" IS NULL OR "riskLevel" IN ('low', 'medium', 'high', 'critical'));

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_kind_check" CHECK ("kind" IN ('approval', 'question'));

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_mode_check" CHECK ("mode" IN ('auto', 'human'));

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_status_check" CHECK ("status" IN ('pending', 'approved', 'rejected', 'expired', 'escalated', 'answered', 'superseded', 'cancelled', 'awaiting-values'));

-- AddCheckConstraint
ALTER TABLE "ApprovalRequest" ADD CONSTRAINT "ApprovalRequest_onExpiry_check" CHECK ("onExpiry" IS NULL OR "onExpiry" IN ('reject', 'escalate'));

-- AddCheckConstraint
ALTER TABLE "TrustEvent" ADD CONSTRAINT "TrustEvent_kind_check" CHECK ("kind" IN ('success', 'approval', 'rejection', 'edit', 'failure', 'limit', 'revert', 'reset', 'cap'));

-- AddCheckConstraint
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_event_check" CHECK ("event" IN ('approval.requested', 'approval.reminder', 'approval.escalated', 'approval.expired'));

-- AddCheckConstraint
ALTER TABLE "WebhookDelivery" ADD CONSTRAINT "WebhookDelivery_status_check" CHECK ("status" IN ('pending', 'delivered', 'failed'));

-- AddCheckConstraint
ALTER TABLE "ApiToken" ADD CONSTRAINT "ApiToken_role_check" CHECK ("role" IN ('submitter', 'approver', 'admin'));

-- AddCheckConstraint
ALTER TABLE "AuditLog" ADD CONSTRAINT "AuditLog_subjectType_check" CHECK ("subjectType" IN ('step', 'task', 'api-token'));
