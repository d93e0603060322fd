import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The rules of the data layer, checked on the source tree: every table is written by one module of
// packages/db, in one way (the typed query builder, or SQL inside that module); no SQL outside it.

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dbSource = join(root, 'packages', 'db', 'src');

function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'generated' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

function tables(): string[] {
  const generated = readFileSync(join(dbSource, 'generated', 'kysely.ts'), 'utf8');
  const block = /export type DB = \{([^}]*)\}/.exec(generated)?.[1];
  if (block === undefined) throw new Error('no DB type in the generated Kysely types');
  return [...block.matchAll(/^\s*(\w+):/gm)].map((match) => match[1] ?? '');
}

function writePatterns(table: string): RegExp[] {
  return [
    new RegExp(`\\.(insertInto|updateTable|deleteFrom|mergeInto)\\(\\s*'${table}'`),
    new RegExp(`\\b(INSERT\\s+INTO|UPDATE|DELETE\\s+FROM)\\s+"${table}"`),
  ];
}

/** The services' and packages' source folders, packages/db and test infrastructure excepted. */
function codeOutsideDb(): string[] {
  const folders = [
    ...readdirSync(join(root, 'services')).map((name) => join(root, 'services', name, 'src')),
    ...readdirSync(join(root, 'packages'))
      .filter((name) => !['db', 'testing', 'faults'].includes(name))
      .map((name) => join(root, 'packages', name, 'src')),
  ];
  return folders
    .filter((folder) => statSync(folder, { throwIfNoEntry: false })?.isDirectory())
    .flatMap(sourceFiles);
}

const SQL_TEXT =
  /\b(SELECT\s[\s\S]{0,200}?\sFROM\s+"|INSERT\s+INTO\s+"|UPDATE\s+"\w+"\s+SET|DELETE\s+FROM\s+"|FOR\s+UPDATE\b|pg_advisory)/;

describe('the data layer', () => {
  const files = sourceFiles(dbSource).map((path) => ({ path, text: readFileSync(path, 'utf8') }));

  it('finds the tables of the schema', () => {
    expect(tables()).toContain('StepRun');
    expect(tables().length).toBeGreaterThan(20);
  });

  it.each(tables())('writes %s from one module of packages/db at most', (table) => {
    const patterns = writePatterns(table);
    const writers = files
      .filter((file) => patterns.some((pattern) => pattern.test(file.text)))
      .map((file) => relative(dbSource, file.path));
    expect(writers.length, `${table} is written by ${writers.join(', ')}`).toBeLessThanOrEqual(1);
  });

  it('has no SQL text in any service or package outside packages/db', () => {
    const offenders = codeOutsideDb()
      .filter((path) => SQL_TEXT.test(readFileSync(path, 'utf8')))
      .map((path) => relative(root, path));
    expect(offenders).toEqual([]);
  });

  it('is the only code that imports a database driver or client, or reaches one through Db', () => {
    const driver =
      /from '(pg|kysely|@prisma\/[\w-]+)'|\.(prisma|kysely|pool)\b[.)]|\$(transaction|executeRaw|queryRaw)/;
    const offenders = codeOutsideDb()
      .filter((path) => driver.test(readFileSync(path, 'utf8')))
      .map((path) => relative(root, path));
    expect(offenders).toEqual([]);
  });
});
