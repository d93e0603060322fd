import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');
const EVAL = path.join(ROOT, 'eval');

/** Every TypeScript file under `dir`. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The relative module specifiers a file imports or re-exports (static and dynamic). */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    if (match[1] !== undefined) found.push(match[1]);
  }
  return found;
}

describe('the labelled scenarios stay out of the service', () => {
  test('no file under src imports anything under eval/', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(10);
    const crossing = files.flatMap((file) =>
      relativeImports(file)
        .filter((specifier) => path.resolve(path.dirname(file), specifier).startsWith(`${EVAL}${path.sep}`))
        .map((specifier) => `${path.relative(ROOT, file)} imports ${specifier}`),
    );
    expect(crossing).toEqual([]);
  });

  test('the check sees an import of eval/ when there is one', () => {
    // The same resolution as above, on a specifier that does cross, so the check cannot pass vacuously.
    const file = path.join(SRC, 'domain', 'evaluate.ts');
    expect(path.resolve(path.dirname(file), '../../eval/scenarios.js').startsWith(`${EVAL}${path.sep}`)).toBe(
      true,
    );
    expect(relativeImports(path.join(EVAL, 'scenario-report.ts'))).toContain('./scenarios.js');
  });
});
