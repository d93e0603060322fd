import { ErrorCodes, TandemError } from '@tandem/contracts';

/** The part of a zod schema a query module parses stored values with (any zod instance fits). */
export interface RowSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: { message: string } };
}

/**
 * Parses a stored value (a Json column, a row) with its schema. A value that does not parse is an
 * error, `DB.ROW_INVALID` naming where it was read, never an empty default.
 */
export function parseStored<T>(schema: RowSchema<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new TandemError(
    ErrorCodes.DB_ROW_INVALID,
    `${where} does not match its schema: ${result.error.message}`,
  );
}
