import { askHuman } from '@tandem/contracts';
import { z } from 'zod';

/** The function-calling name of the tool that asks a human a question (`ask_human`). */
export const ASK_HUMAN_TOOL = askHuman.name;

/**
 * The arguments of an `ask_human` step as approval reads them. Looser than `askHuman.input` on purpose:
 * the planner has already validated them against it; approval only needs these two fields, and a plan
 * stored under an older version of the tool must still be readable.
 */
const AskHumanArguments = z.looseObject({
  question: z.string().trim().min(1),
  choices: z.array(z.string()).nullish(),
});

/** What an `ask_human` step asks: the question and, when given, the only answers allowed. */
export interface HumanQuestion {
  question: string;
  /** null: any non-empty answer. */
  choices: string[] | null;
}

/** The question of an `ask_human` step's arguments, or null when they don't hold one. */
export function parseQuestion(args: unknown): HumanQuestion | null {
  const parsed = AskHumanArguments.safeParse(args);
  if (!parsed.success) return null;
  const choices = parsed.data.choices ?? null;
  return { question: parsed.data.question, choices: choices && choices.length > 0 ? choices : null };
}

/**
 * The choice an answer picks (compared after trimming both), or null when it matches none.
 * With no choices every answer stands as given.
 */
export function matchChoice(answer: string, choices: readonly string[] | null): string | null {
  if (choices === null) return answer;
  const wanted = answer.trim();
  return choices.find((choice) => choice.trim() === wanted) ?? null;
}
