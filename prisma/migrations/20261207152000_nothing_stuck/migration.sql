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

