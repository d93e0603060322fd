import type { Log } from './logger.js';

/**
 * Runs `stop` once on SIGTERM/SIGINT (a second signal forces exit), then exits 0; a failing stop exits 1.
 * Returns a function that triggers the same shutdown programmatically.
 */
export function onShutdown(
  log: Log,
  stop: () => Promise<void>,
  options: { timeoutMs?: number } = {},
): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    if (stopping) return stopping;
    log.info('shutting down');
    const timer = setTimeout(() => {
      log.error('shutdown timed out; exiting');
      process.exit(1);
    }, options.timeoutMs ?? 15_000);
    timer.unref();
    stopping = stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
    return stopping;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      void shutdown();
    });
  }
  return shutdown;
}
