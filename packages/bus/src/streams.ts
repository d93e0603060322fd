import {
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  DiscardPolicy,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { Nanos } from '@nats-io/transport-node';
import { nanos } from '@nats-io/transport-node';
import { Entities, assertSubjectPrefix, streamNameFor, type Entity } from '@tandem/contracts';
import { assertStreamReplicas, replicasToKeep } from './domain/stream-replicas.js';

/** Default retention of every stream: 7 days. */
export const DEFAULT_STREAM_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** JetStream's deduplication window on `Nats-Msg-Id`: 2 minutes. */
export const DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

// JetStream API error codes (nats-server's jetstream_errors_generated.go).
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;

/** Options of {@link ensureStreams}. */
export interface EnsureStreamsOptions {
  /** The deployment prefix; streams are `<PREFIX>_<ENTITY>` over `<prefix>.<entity>.>`. */
  prefix: string;
  /** How long messages are kept (default 7 days). */
  maxAgeMs?: number;
  /**
   * Stream replicas in a NATS cluster (default 1; `TANDEM_STREAM_REPLICAS`). A stream is raised to this
   * count, never lowered: a stream an operator raised higher keeps its replicas.
   */
  replicas?: number;
}

/** What {@link ensureStreams} did to each stream. */
export type StreamChange = 'created' | 'updated' | 'unchanged';

/** The stream an event subject suffix (`task.requested.v1`) is stored in. */
export function entityOfSuffix(suffix: string): Entity {
  const first = suffix.split('.')[0];
  const entity = Entities.find((candidate) => candidate === first);
  if (entity === undefined) {
    throw new Error(`subject suffix "${suffix}" does not start with a known entity (${Entities.join(', ')})`);
  }
  return entity;
}

/** The settings the bus manages on each stream; every other setting keeps the server's default. */
export interface ManagedStreamConfig {
  name: string;
  subjects: string[];
  retention: RetentionPolicy;
  storage: StorageType;
  discard: DiscardPolicy;
  max_age: Nanos;
  duplicate_window: Nanos;
  num_replicas: number;
}

/** The desired configuration of one entity's stream. */
export function streamConfigFor(entity: Entity, options: EnsureStreamsOptions): ManagedStreamConfig {
  const prefix = assertSubjectPrefix(options.prefix);
  const maxAgeMs = options.maxAgeMs ?? DEFAULT_STREAM_MAX_AGE_MS;
  if (!Number.isInteger(maxAgeMs) || maxAgeMs < DUPLICATE_WINDOW_MS) {
    throw new RangeError(
      `stream maxAgeMs must be an integer of at least ${DUPLICATE_WINDOW_MS} (the duplicate window), got ${maxAgeMs}`,
    );
  }
  return {
    name: streamNameFor(prefix, entity),
    subjects: [`${prefix}.${entity}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    num_replicas: assertStreamReplicas(options.replicas ?? 1),
  };
}

/**
 * Creates or updates the stream of every entity. Idempotent, and safe when several processes start at
 * once: an add that loses the race falls back to comparing and updating. Storage and retention cannot
 * change in place; a mismatch there is an error rather than a silent recreate. Replicas are raised to
 * `replicas` but never lowered (`replicasToKeep`).
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  options: EnsureStreamsOptions,
): Promise<Record<string, StreamChange>> {
  const changes: Record<string, StreamChange> = {};
  for (const entity of Entities) {
    const config = streamConfigFor(entity, options);
    changes[config.name] = await ensureStream(jsm, config);
  }
  return changes;
}

async function ensureStream(jsm: JetStreamManager, config: ManagedStreamConfig): Promise<StreamChange> {
  let info = await streamInfo(jsm, config.name);
  if (info === null) {
    try {
      await jsm.streams.add(config);
      return 'created';
    } catch (error) {
      // Another process created it first (with a config that differs in some default): compare and update below.
      if (!hasApiCode(error, STREAM_NAME_IN_USE)) throw error;
      info = await streamInfo(jsm, config.name);
      if (info === null) throw error;
    }
  }
  const current = info.config;
  const replicas = replicasToKeep(current.num_replicas, config.num_replicas);
  if (current.storage !== config.storage || current.retention !== config.retention) {
    throw new Error(
      `stream ${config.name} exists with storage=${current.storage} retention=${current.retention}; ` +
        `expected storage=${config.storage} retention=${config.retention} (these cannot be changed in place)`,
    );
  }
  if (
    sameSubjects(current.subjects, config.subjects) &&
    current.max_age === config.max_age &&
    current.duplicate_window === config.duplicate_window &&
    current.num_replicas === replicas
  ) {
    return 'unchanged';
  }
  // update() merges these into the server's current config.
  await jsm.streams.update(config.name, {
    subjects: config.subjects,
    max_age: config.max_age,
    duplicate_window: config.duplicate_window,
    num_replicas: replicas,
  });
  return 'updated';
}

async function streamInfo(jsm: JetStreamManager, name: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (hasApiCode(error, STREAM_NOT_FOUND)) return null;
    throw error;
  }
}

function sameSubjects(current: readonly string[] | undefined, desired: readonly string[]): boolean {
  if (current === undefined || current.length !== desired.length) return false;
  return desired.every((subject) => current.includes(subject));
}

/** True for a JetStream API error with the given error code (`err_code`). */
export function hasApiCode(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}
