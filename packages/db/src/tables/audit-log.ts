import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import { json } from '../column-types.js';
import type { AuditLog as AuditLogTable } from '../generated/kysely.js';
import type { Tx } from '../transaction.js';

// The only module that writes "AuditLog" (writer: the deciding service, its own rows; so far approval).
// Append-only: rows are inserted, never changed.

/** What an audit row is about: step | task | api-token. */
export type AuditSubjectType = Selectable<AuditLogTable>['subjectType'];

/** One audit row to append. */
export interface NewAuditEntry {
  /** The service writing it (e.g. `approval`). */
  service: string;
  action: string;
  subject: { type: AuditSubjectType; id: string };
  actor: string | null;
  reason: string | null;
  /** Any JSON-serialisable detail (stored as jsonb, NUL made safe). */
  data: unknown;
}

/** Appends audit rows in the caller's transaction, one statement; `createdAt` is this process's clock. */
export async function insertAuditEntries(tx: Tx, entries: readonly NewAuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const createdAt = new Date();
  await tx
    .insertInto('AuditLog')
    .values(
      entries.map((entry) => ({
        id: randomUUID(),
        service: entry.service,
        action: entry.action,
        subjectType: entry.subject.type,
        subjectId: entry.subject.id,
        actor: entry.actor,
        reason: entry.reason,
        data: json(entry.data),
        createdAt,
      })),
    )
    .execute();
}
