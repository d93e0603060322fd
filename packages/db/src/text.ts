import { toSafeJsonText, toSafeText } from '@tandem/contracts';

// Postgres TEXT and JSONB reject the NUL character (jsonb also lone surrogates); a program's output, a
// poison message or an error text may contain them, and recording it must not fail for that reason.
/** Replaces NUL characters and lone surrogates, which Postgres text cannot store, with U+FFFD. */
export function toText(value: string): string {
  return toSafeText(value);
}

/** JSON text for a jsonb parameter: every string and key made safe first (see `toSafeJson`). */
export function toJsonText(value: unknown): string {
  return toSafeJsonText(value);
}
