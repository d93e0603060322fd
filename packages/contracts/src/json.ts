import { z } from 'zod';

/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Any JSON value (zod 4's recursive JSON schema). */
export const JsonValue: z.ZodType<JsonValue> = z.json();

/** The nesting depth of a JSON value (a scalar is 0, `[1]` is 1). Iterative so hostile input can't blow the stack. */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const current = stack.pop();
    if (!current) break;
    if (current.depth > max) max = current.depth;
    if (current.value !== null && typeof current.value === 'object') {
      const children = Array.isArray(current.value) ? current.value : Object.values(current.value);
      for (const child of children) {
        if (child !== null && typeof child === 'object')
          stack.push({ value: child, depth: current.depth + 1 });
        else if (current.depth + 1 > max) max = current.depth + 1;
      }
    }
  }
  return max;
}
