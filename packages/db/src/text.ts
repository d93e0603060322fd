// Postgres TEXT and JSONB reject the NUL character; a poison message or an error text may contain it,
// and recording it must not fail for that reason.
/** Replaces NUL characters, which Postgres text cannot store, with U+FFFD. */
export function toText(value: string): string {
  return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
}
