import {
  InvalidArgumentError,
  InvalidSubjectError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { TandemError } from '@tandem/contracts';
import { describe, expect, it } from 'vitest';
import { permanentPublishError } from '../src/index.js';

describe('permanentPublishError', () => {
  it('makes over max_payload, refused and invalid subjects non-retryable, with their codes', () => {
    const tooLarge = permanentPublishError(
      InvalidArgumentError.format('payload', 'max_payload size exceeded'),
      'tandem.sandbox.run-completed.v1',
      1_049_286,
      1_048_576,
    );
    expect(tooLarge).toBeInstanceOf(TandemError);
    expect(tooLarge?.code).toBe('BUS.PAYLOAD_TOO_LARGE');
    expect(tooLarge?.retryable).toBe(false);
    expect(tooLarge?.message).toMatch(/1049286 bytes .*max_payload of 1048576 bytes/);

    const refused = new PermissionViolationError(
      'Permissions Violation for Publish to "tandem.plan.proposed.v1"',
      'publish',
      'tandem.plan.proposed.v1',
    );
    expect(permanentPublishError(refused, 'tandem.plan.proposed.v1', 10, undefined)?.code).toBe(
      'BUS.PUBLISH_REFUSED',
    );
    // Wrapped as the cause of a request error, as a JetStream publish reports it.
    expect(
      permanentPublishError(
        new RequestError('failed', { cause: refused }),
        'tandem.plan.proposed.v1',
        10,
        undefined,
      )?.code,
    ).toBe('BUS.PUBLISH_REFUSED');
    expect(permanentPublishError(new InvalidSubjectError('a b'), 'a b', 10, undefined)?.code).toBe(
      'BUS.PUBLISH_REFUSED',
    );
  });

  it('leaves failures that may pass retryable: no responders (no stream), timeouts, other errors', () => {
    const subject = 'tandem.task.accepted.v1';
    expect(
      permanentPublishError(
        new RequestError('no responders', { cause: new NoRespondersError(subject) }),
        subject,
        1,
        1,
      ),
    ).toBeNull();
    expect(permanentPublishError(new TimeoutError(), subject, 1, 1)).toBeNull();
    expect(permanentPublishError(new Error('connection closed'), subject, 1, 1)).toBeNull();
    expect(permanentPublishError('nope', subject, 1, 1)).toBeNull();
  });
});
