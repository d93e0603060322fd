import type pg from 'pg';

/**
 * Hooks to run after a transaction's COMMIT, keyed by the transaction's handle (a Kysely transaction or
 * a plain-SQL `Sql`); a handle outside a transaction has no entry. And the pool each handle runs on.
 */
const commitHooks = new WeakMap<object, Array<() => void>>();
const pools = new WeakMap<object, pg.Pool>();

/** Registers a transaction handle: hooks collect until {@link runCommitHooks} or {@link dropCommitHooks}. */
export function openCommitHooks(handle: object, pool: pg.Pool): void {
  commitHooks.set(handle, []);
  pools.set(handle, pool);
}

/** Registers the pool of a handle that is not a transaction (statements commit one by one). */
export function registerPool(handle: object, pool: pg.Pool): void {
  pools.set(handle, pool);
}

/**
 * Runs `hook` once the transaction of `handle` has committed (never when it rolls back); at once for a
 * handle outside a transaction, whose statements have committed already. A hook that throws is ignored.
 */
export function afterCommit(handle: object, hook: () => void): void {
  const hooks = commitHooks.get(handle);
  if (hooks) hooks.push(hook);
  else runHook(hook);
}

/** The pool a handle runs on. */
export function poolOf(handle: object): pg.Pool | undefined {
  return pools.get(handle);
}

/** After COMMIT: runs the handle's hooks, in order. */
export function runCommitHooks(handle: object): void {
  const hooks = commitHooks.get(handle) ?? [];
  commitHooks.delete(handle);
  for (const hook of hooks) runHook(hook);
}

/** After ROLLBACK: forgets the handle's hooks. */
export function dropCommitHooks(handle: object): void {
  commitHooks.delete(handle);
}

function runHook(hook: () => void): void {
  try {
    hook();
  } catch {
    // A hook only speeds things up (e.g. hands committed outbox rows to the relay); the poll covers it.
  }
}
