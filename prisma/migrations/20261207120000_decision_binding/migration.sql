-- AlterTable
ALTER TABLE "ApprovalRequest" ADD COLUMN     "argumentsHash" TEXT,
ADD COLUMN     "resolvedArguments" JSONB;
