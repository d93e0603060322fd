import { randomUUID } from 'node:crypto';
import { insertRows, utcWallClock, type Sql, type SqlColumn, toJsonText } from '@tandem/db';

const AUDIT_COLUMNS: SqlColumn[] = [
  { name: 'id', cast: 'uuid' },
  { name: 'service' },
  { name: 'action' },
  { name: 'subjectType' },
  { name: 'subjectId' },
  { name: 'actor' },
  { name: 'reason' },
  { name: 'data', cast: 'jsonb' },
  { name: 'createdAt', cast: 'timestamp' },
];

/** One row of the append-only audit log written by this service. */
export interface AuditEntry {
  action: string;
  subject: { type: string; id: string };
  actor: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

/** An audit row's values in column order (UTC wall-clock `createdAt`, like Prisma writes). */
export function auditRow(entry: AuditEntry): unknown[] {
  return [
    randomUUID(),
    'approval',
    entry.action,
    entry.subject.type,
    entry.subject.id,
    entry.actor,
    entry.reason,
    toJsonText(entry.data),
    utcWallClock(),
  ];
}

/** Writes audit rows in the caller's transaction, one statement. */
export async function writeAudit(sql: Sql, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await insertRows(sql, 'AuditLog', AUDIT_COLUMNS, entries.map(auditRow));
}
