/**
 * The part of a zod schema the bus uses. Declared structurally so that the bus parses with whatever
 * zod instance the contracts were built with (a `z.ZodType<T>` satisfies it) without importing zod.
 */
export interface MessageSchema<T> {
  safeParse(input: unknown): MessageSchemaResult<T>;
}

/** What {@link MessageSchema.safeParse} returns (zod's `safeParse` result). */
export type MessageSchemaResult<T> =
  { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<SchemaIssue> } };

/** One validation problem, as zod reports it. */
export interface SchemaIssue {
  readonly path: ReadonlyArray<PropertyKey>;
  readonly message: string;
  readonly code?: string;
}

const MAX_ISSUES_IN_REASON = 20;

/** `data.taskId: Invalid UUID; data.goal: Required`: issues readable in a dead-letter reason. */
export function formatIssues(issues: ReadonlyArray<SchemaIssue>): string {
  const shown = issues.slice(0, MAX_ISSUES_IN_REASON).map((issue) => {
    const path = issue.path.map((part) => String(part)).join('.');
    return `${path === '' ? '(root)' : path}: ${issue.message}`;
  });
  const more =
    issues.length > MAX_ISSUES_IN_REASON ? `; and ${issues.length - MAX_ISSUES_IN_REASON} more` : '';
  return shown.join('; ') + more;
}

/** Parses with a schema and throws a readable error (used where bad data is the caller's bug). */
export function parseOrThrow<T>(schema: MessageSchema<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new TypeError(`${what} does not match its schema: ${formatIssues(result.error.issues)}`);
  return result.data;
}
