import type pg from 'pg';

/**
 * Whether statements on a pool are prepared under a name (see `CreateDbOptions.preparedStatements`).
 * Pools whose connections share one server session (an embedded or pooled server), or that refused a
 * name once, send statements unnamed.
 */
const unnamedPools = new WeakSet<pg.Pool>();

/** Statements on this pool are sent unnamed from now on. */
export function disablePreparedStatements(pool: pg.Pool): void {
  unnamedPools.add(pool);
}

/** Whether statements on this pool are named. */
export function preparedStatementsOn(pool: pg.Pool): boolean {
  return !unnamedPools.has(pool);
}
