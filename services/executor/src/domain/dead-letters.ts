import { ErrorCodes, type ErrorShape } from '@tandem/contracts';

/** A dead letter of a task's message, with what Tandem's outbox holds under the message's id. */
export interface DeadLetterFacts {
  id: string;
  taskId: string;
  consumer: string;
  subject: string;
  messageId: string | null;
  natsMessageId: string | null;
  code: string;
  reason: string;
  payload: string;
  deliveryCount: number;
  /** The outbox row whose id the message carried; null when there is none. */
  outbox: { publisher: string; subject: string; payload: string } | null;
}

/** What the sweep does with a dead letter. */
export type DeadLetterVerdict =
  { kind: 'fail_task'; error: ErrorShape } | { kind: 'ignore'; outcome: 'not_tandem' | 'observer' };

const MAX_REASON = 500;

/**
 * Decides whether a dead letter ends its task. Only a message Tandem itself published does: one whose
 * message id is an outbox row with the same subject and, parsed, exactly the same JSON. Anyone allowed
 * on the bus can publish a message naming a task (or copying an outbox id it saw), so a message that is
 * not the outbox row's payload changes nothing. A consumer that only observes (`isObserver`:
 * learning, and every consumer of reports of what already happened, `step.finished` and the outcomes)
 * losing a message never ends a task.
 */
export function judgeDeadLetter(
  letter: DeadLetterFacts,
  options: { isObserver: (consumer: string, subject: string) => boolean },
): DeadLetterVerdict {
  if (!publishedByTandem(letter)) return { kind: 'ignore', outcome: 'not_tandem' };
  if (options.isObserver(letter.consumer, letter.subject)) return { kind: 'ignore', outcome: 'observer' };
  const reason =
    letter.reason.length > MAX_REASON ? `${letter.reason.slice(0, MAX_REASON)}...` : letter.reason;
  const messageId = letter.natsMessageId ?? letter.messageId;
  return {
    kind: 'fail_task',
    error: {
      code: ErrorCodes.TASK_MESSAGE_DEAD_LETTERED,
      message: `message ${messageId ?? '(no id)'} on ${letter.subject} was dead-lettered by ${letter.consumer} (${letter.code}): ${reason}`,
      retryable: false,
      details: {
        deadLetterId: letter.id,
        consumer: letter.consumer,
        subject: letter.subject,
        messageId,
        code: letter.code,
        reason,
        deliveryCount: letter.deliveryCount,
      },
    },
  };
}

/** Whether the dead-lettered message is, byte for byte after parsing, the outbox row it names. */
export function publishedByTandem(letter: DeadLetterFacts): boolean {
  if (letter.outbox === null || letter.outbox.subject !== letter.subject) return false;
  const message = parseJson(letter.payload);
  const stored = parseJson(letter.outbox.payload);
  return message.ok && stored.ok && sameJson(message.value, stored.value);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** Deep equality of parsed JSON values (object keys in any order). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => sameJson(item, b[index]));
  }
  const left = Object.entries(a);
  const right = new Map(Object.entries(b));
  if (left.length !== right.size) return false;
  return left.every(([key, value]) => right.has(key) && sameJson(value, right.get(key)));
}
