import { insertAuditEntries, type Tx } from '@tandem/db';
import type { AuditEntry } from './domain/audit.js';

export type { AuditEntry } from './domain/audit.js';

/** Writes this service's audit rows in the caller's transaction, one statement. */
export async function writeAudit(tx: Tx, entries: readonly AuditEntry[]): Promise<void> {
  await insertAuditEntries(
    tx,
    entries.map((entry) => ({ service: 'approval', ...entry })),
  );
}
