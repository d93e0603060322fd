import type { Entity } from './envelope.js';

/** Default deployment prefix for subjects, streams and consumers. */
export const DEFAULT_SUBJECT_PREFIX = 'tandem';

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Throws unless the prefix is usable as leading subject tokens (no wildcards, spaces or empty tokens). */
export function assertSubjectPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new Error(
      `invalid subject prefix "${prefix}": use letters, digits, '_' or '-', tokens separated by '.'`,
    );
  }
  return prefix;
}

/** `<prefix>.<suffix>`, e.g. `tandem.task.requested.v1`. */
export function subjectFor(prefix: string, suffix: string): string {
  return `${assertSubjectPrefix(prefix)}.${suffix}`;
}

/** A name token derived from the prefix, usable in stream and consumer names. */
export function prefixToken(prefix: string): string {
  return assertSubjectPrefix(prefix)
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_');
}

/**
 * The stream of one entity: `TANDEM_TASK` for prefix `tandem`.
 * Wire name: renaming it orphans the messages stored under the old name.
 */
export function streamNameFor(prefix: string, entity: Entity): string {
  return `${prefixToken(prefix)}_${entity.toUpperCase()}`;
}

/** A durable consumer name scoped to the deployment prefix: `TANDEM_planner-intake`. */
export function consumerNameFor(prefix: string, durable: string): string {
  return `${prefixToken(prefix)}_${durable}`;
}

/** Core NATS request/reply subject (no stream) for queries that may go unanswered. */
export function querySubjectFor(prefix: string, name: string): string {
  return `${assertSubjectPrefix(prefix)}.query.${name}`;
}
