import type { JsonValue, TaskBudget, TaskModelPreference } from '@tandem/contracts';
import type { StepState } from './progress.js';

/** A task's run as the executor decides on it: the run, the task, the plan version it runs, its steps. */
export interface RunState {
  run: { status: string; planId: string; replans: number };
  task: {
    id: string;
    goal: string;
    input: JsonValue | null;
    kind: string;
    agentId: string | null;
    source: string;
    externalId: string;
    deadline: Date | null;
  };
  plan: { id: string; version: number; status: string };
  /** In plan order. */
  steps: StepState[];
  /** The keys each step depends on, by step key. */
  dependsOn: Map<string, string[]>;
  budget: TaskBudget | undefined;
  preferences: TaskModelPreference | undefined;
}

/** A task as its outcome event names it. */
export interface TaskRef {
  id: string;
  kind: string;
  agentId: string | null;
}
