import { sql, type ColumnType, type RawBuilder } from 'kysely';
import { Slot } from './prepared.js';
import { toJsonText } from './text.js';

declare const jsonBrand: unique symbol;

/** A value made into jsonb text by {@link json}: the only thing a Json column accepts. */
export interface JsonInput {
  readonly [jsonBrand]: true;
}

/**
 * A Json column as the generated types see it: read as `unknown` (parse it), written only through
 * {@link json}. `pg` would send a JS array as a Postgres array, and Postgres refuses NUL in jsonb.
 */
export type JsonColumn = ColumnType<unknown, JsonInput, JsonInput>;

/** A timestamp column: `timestamp(3) without time zone` holding UTC wall-clock time, written as a Date. */
export type UtcTimestamp = ColumnType<Date, Date, Date>;

/**
 * Any JSON-serialisable value as jsonb, for a Json column: serialised once, NUL and lone surrogates made
 * U+FFFD. `undefined` (and a value that serialises to nothing) is JSON null.
 */
export function json(value: unknown): RawBuilder<JsonInput> {
  // In a prepared query the value comes later: its placeholder is filled in as jsonb text.
  if (value instanceof Slot) return sql<JsonInput>`${new Slot(value.key, true)}::jsonb`;
  return sql<JsonInput>`${toJsonText(value ?? null)}::jsonb`;
}
