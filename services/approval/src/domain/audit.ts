/** What an audit row of this service is about. */
export type AuditSubjectType = 'step' | 'task' | 'api-token';

/** One row of the append-only audit log this service writes (a decision states it; audit.ts stores it). */
export interface AuditEntry {
  action: string;
  subject: { type: AuditSubjectType; id: string };
  actor: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}
