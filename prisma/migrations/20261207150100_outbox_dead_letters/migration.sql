-- AlterTable
ALTER TABLE "Outbox" ADD COLUMN     "deadLetteredAt" TIMESTAMP(3);
