-- AlterTable
ALTER TABLE "Plan" ADD COLUMN     "editedByLabel" TEXT;

-- Before this migration a body's editedBy won over the token: a name that is not `token:...` was a
-- client's claim. Keep it as the label it is; who edited is not known for those rows.
UPDATE "Plan" SET "editedByLabel" = "editedBy", "editedBy" = NULL
 WHERE "editedBy" IS NOT NULL AND "editedBy" NOT LIKE 'token:%';

-- Idempotency keys of HTTP tasks are scoped per token: the stored key is `token:<ApiToken.id>:<key>`
-- (see httpTaskExternalId in packages/contracts). Rows with a submitting token get that prefix; rows
-- without one (none are written since tokens were required) keep their key as it was.
UPDATE "Task" SET "externalId" = 'token:' || substring("submittedBy" from 7) || ':' || "externalId"
 WHERE "source" = 'urn:tandem:http'
   AND "submittedBy" ~* '^token:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
   AND "externalId" !~* '^token:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:';
