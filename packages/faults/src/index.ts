/** @tandem/faults: the fault suite (scenarios, its stack of its own, the checker). */
export { check, isTerminal, percentile } from './checker.js';
/** Types of the checker. */
export type { Figures, Observations, OutcomeSeen, SubmittedTask, TaskRow } from './checker.js';
/** A Postgres cluster of the suite's own (initdb + pg_ctl as the postgres user). */
export { startPostgresCluster, POSTGRES_BIN } from './postgres-cluster.js';
/** A running Postgres cluster of the suite. */
export type { PostgresCluster } from './postgres-cluster.js';
/** The scenario runner and where it writes its figures. */
export { runScenario, RESULTS_DIR } from './scenario.js';
/** Types of scenarios and their results. */
export type { FaultContext, Scenario, ScenarioResult } from './scenario.js';
/** The stack a scenario runs on. */
export { startFaultStack, SUITE_ACK_WAIT_MS } from './stack.js';
/** Types of the stack. */
export type { FaultStack, FaultStackOptions } from './stack.js';
/** The plain-text table of a run. */
export { formatTable, summaryTable } from './report.js';
/** The workload: task kinds, plans, CloudEvents, poison. */
export {
  expectedAnswer,
  goalFor,
  parseGoal,
  planFor,
  poisonMessages,
  taskEvent,
  TASK_KINDS,
} from './workload.js';
/** A task kind of the workload. */
export type { TaskKind } from './workload.js';
