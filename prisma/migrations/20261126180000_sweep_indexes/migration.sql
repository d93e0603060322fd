-- CreateIndex
CREATE INDEX "Task_deadline_idx" ON "Task"("deadline");

-- CreateIndex
CREATE INDEX "StepRun_status_updatedAt_idx" ON "StepRun"("status", "updatedAt");
