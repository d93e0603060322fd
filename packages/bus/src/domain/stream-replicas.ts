// Decisions about stream replicas, without I/O (streams.ts applies them to the server).

/** Most replicas JetStream allows a stream. */
export const MAX_STREAM_REPLICAS = 5;

/** Checks a replica count asked for (`TANDEM_STREAM_REPLICAS`): an integer from 1 to 5. */
export function assertStreamReplicas(replicas: number): number {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_STREAM_REPLICAS) {
    throw new RangeError(
      `stream replicas must be an integer from 1 to ${MAX_STREAM_REPLICAS}, got ${replicas}`,
    );
  }
  return replicas;
}

/**
 * The replicas a stream should have after a service or the provisioner ensured it: the count asked
 * for, or the server's when that is higher. A service never lowers replicas (an operator raised them
 * on purpose, and a restart with the default of 1 must not quietly drop redundancy); lowering is an
 * operator's explicit act (`nats stream edit --replicas`).
 */
export function replicasToKeep(current: number | undefined, wanted: number): number {
  assertStreamReplicas(wanted);
  if (current === undefined || !Number.isInteger(current) || current < 1) return wanted;
  return Math.max(current, wanted);
}
