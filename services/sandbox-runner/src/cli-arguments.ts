import { SandboxLanguage } from '@tandem/contracts';
import { z } from 'zod';

/** The flags of `pnpm sandbox run` (fixed contract). */
export const Flags = z.strictObject({
  language: SandboxLanguage,
  'timeout-ms': z.coerce.number().int().min(1).max(600_000).optional(),
  'memory-mb': z.coerce.number().int().min(16).max(16_384).optional(),
});

/** A problem with how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** Parses `run --flag value ...` (also `--flag=value`); unknown words and flags are usage errors. */
export function parseArguments(argv: readonly string[]): z.infer<typeof Flags> {
  const [command, ...rest] = argv;
  if (command !== 'run')
    throw new UsageError(command === undefined ? 'no command' : `unknown command "${command}"`);
  const flags: Record<string, string> = {};
  for (let index = 0; index < rest.length; index += 1) {
    const word = rest[index] ?? '';
    if (!word.startsWith('--')) throw new UsageError(`unexpected argument "${word}"`);
    const [name, inline] = word.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? rest[(index += 1)];
    if (name === undefined || name === '' || value === undefined)
      throw new UsageError(`--${name ?? ''} needs a value`);
    if (name in flags) throw new UsageError(`--${name} given twice`);
    flags[name] = value;
  }
  const parsed = Flags.safeParse(flags);
  if (!parsed.success) {
    throw new UsageError(
      parsed.error.issues
        .map((issue) => `${issue.path.length > 0 ? `--${issue.path.join('.')}` : 'flags'}: ${issue.message}`)
        .join('; '),
    );
  }
  return parsed.data;
}
