-- AlterTable
ALTER TABLE "Plan" ADD COLUMN     "editedByLabel" TEXT;

-- Before this migration a body's editedBy won over the token: a name that is not `token:...` was a
-- client's claim. Keep it as the label it is; who edited is not known for those rows.
UPDATE "Plan" SET "editedByLabel" = "editedBy", "editedBy" = NULL
 WHERE "editedBy" IS NOT NULL AND "editedBy" NOT LIKE 'token:%';
