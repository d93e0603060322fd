import { DEFAULT_TOOL_CALL_LIMITS, toolRegistry } from '@tandem/contracts';
import type { Db } from '@tandem/db';
import {
  createHttpServer,
  createLogger,
  createMetrics,
  databaseAuth,
  type HttpServer,
  type Log,
} from '@tandem/service-kit';
import { registerPlanRoutes } from '../../src/http/plan-routes.js';
import { registerTaskRoutes } from '../../src/http/tasks.js';

/**
 * The planner's HTTP routes (tasks and plan edits) on a server with database auth, as the planner
 * registers them, for route tests; the caller awaits `ready()` or `listen()` and closes it.
 */
export function createPlannerHttp(db: Db, options: { prefix: string; log?: Log }): HttpServer {
  const app = createHttpServer({
    log: options.log ?? createLogger({ service: 'planner', level: 'silent' }),
    registry: createMetrics('planner').registry,
    readiness: [],
    auth: databaseAuth(db),
  });
  registerTaskRoutes(app, { db, prefix: options.prefix });
  registerPlanRoutes(app, {
    db,
    prefix: options.prefix,
    registry: toolRegistry,
    checkContext: {
      http: { allowHosts: [], allowHttp: false },
      runCode: { languages: ['javascript', 'python'], maxCodeChars: 100_000 },
    },
    limits: {
      maxSteps: 20,
      maxArgumentBytes: DEFAULT_TOOL_CALL_LIMITS.maxArgumentBytes,
      maxDepth: DEFAULT_TOOL_CALL_LIMITS.maxDepth,
    },
    estimateStepCostUsd: () => 0,
  });
  return app;
}
