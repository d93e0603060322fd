import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  constraintName,
  indexesOf,
  literalUnion,
  parsePrismaSchema,
  primaryKeyOf,
  uniqueIndexesOf,
} from './helpers/prisma-schema.js';
import { allowedValues, expectedShape } from './helpers/schema-drift.js';

const schemaPath = new URL('../../../prisma/schema.prisma', import.meta.url);
const generatedPath = new URL('../src/generated/kysely.ts', import.meta.url);

const sample = `
// a comment with "quotes" and // more
generator client {
  provider = "prisma-client"
}

/// A doc comment
model Parent {
  id        String   @id @db.Uuid
  name      String   @default("a // not a comment")
  tags      String[]
  count     Int?     @default(0)
  seq       BigInt   @default(autoincrement())
  external  String   @unique @map("external_id")
  children  Child[]

  @@index([name, count])
  @@map("parents")
}

model Child {
  parentId  String   @db.Uuid
  key       String
  at        DateTime @default(now()) @db.Timestamptz(6)
  parent    Parent   @relation(fields: [parentId], references: [id], onDelete: Cascade)

  @@id([parentId, key])
  @@unique([key, at(sort: Desc)])
}
`;

describe('parsePrismaSchema', () => {
  const schema = parsePrismaSchema(sample);
  const parent = schema.models.find((model) => model.name === 'Parent');
  const child = schema.models.find((model) => model.name === 'Child');

  it('reads models, scalar fields and their attributes, skipping relation fields', () => {
    expect(schema.models.map((model) => model.name)).toEqual(['Parent', 'Child']);
    expect(parent?.table).toBe('parents');
    expect(parent?.fields.map((field) => field.name)).toEqual([
      'id',
      'name',
      'tags',
      'count',
      'seq',
      'external',
    ]);
    expect(parent?.fields.find((field) => field.name === 'id')).toMatchObject({
      id: true,
      nativeType: 'Uuid',
      optional: false,
    });
    expect(parent?.fields.find((field) => field.name === 'name')?.defaultValue).toBe('"a // not a comment"');
    expect(parent?.fields.find((field) => field.name === 'tags')).toMatchObject({
      list: true,
      optional: false,
    });
    expect(parent?.fields.find((field) => field.name === 'count')).toMatchObject({
      optional: true,
      defaultValue: '0',
    });
    expect(parent?.fields.find((field) => field.name === 'external')).toMatchObject({
      unique: true,
      column: 'external_id',
    });
    expect(child?.fields.find((field) => field.name === 'at')?.nativeType).toBe('Timestamptz(6)');
  });

  it('reads keys and indexes with Prisma default names', () => {
    if (parent === undefined || child === undefined) throw new Error('sample models missing');
    expect(primaryKeyOf(parent)).toEqual(['id']);
    expect(primaryKeyOf(child)).toEqual(['parentId', 'key']);
    expect(uniqueIndexesOf(parent)).toEqual([{ name: 'parents_external_id_key', columns: ['external_id'] }]);
    expect(uniqueIndexesOf(child)).toEqual([{ name: 'Child_key_at_key', columns: ['key', 'at'] }]);
    expect(indexesOf(parent)).toEqual([{ name: 'parents_name_count_idx', columns: ['name', 'count'] }]);
    expect(child.relations).toEqual([
      {
        name: 'parent',
        target: 'Parent',
        fields: ['parentId'],
        references: ['id'],
        onDelete: 'Cascade',
        onUpdate: null,
      },
    ]);
  });

  it('turns fields into the column types and defaults Prisma emits', () => {
    const shape = expectedShape(schema);
    const columns = Object.fromEntries(shape.get('parents')?.columns ?? []);
    expect(columns).toEqual({
      id: { type: 'uuid', nullable: false, defaultValue: null },
      name: { type: 'text', nullable: false, defaultValue: "'a // not a comment'::text" },
      tags: { type: 'text[]', nullable: true, defaultValue: null },
      count: { type: 'int4', nullable: true, defaultValue: '0' },
      seq: { type: 'int8', nullable: false, defaultValue: 'autoincrement()' },
      external_id: { type: 'text', nullable: false, defaultValue: null },
    });
    expect(shape.get('Child')?.columns.get('at')).toEqual({
      type: 'timestamptz(6)',
      nullable: false,
      defaultValue: 'CURRENT_TIMESTAMP',
    });
    expect(shape.get('Child')?.foreignKeys).toEqual([
      {
        name: 'Child_parentId_fkey',
        columns: ['parentId'],
        referencedTable: 'parents',
        referencedColumns: ['id'],
        onDelete: 'Cascade',
        onUpdate: 'Cascade',
      },
    ]);
  });

  it('cuts constraint names to 63 characters like Prisma', () => {
    const name = constraintName('A'.repeat(40), ['b'.repeat(30)], 'key');
    expect(name).toHaveLength(63);
    expect(name.endsWith('_key')).toBe(true);
  });

  it('refuses what it does not understand instead of passing silently', () => {
    expect(() => parsePrismaSchema('model X {\n  id String @id\n  @@fulltext([id])\n}\n')).toThrow(
      /does not understand/,
    );
    expect(() => parsePrismaSchema('model X {\n  id String @id\n')).toThrow(/not closed/);
  });
});

describe('status and kind columns (@kyselyType unions)', () => {
  const annotated = parsePrismaSchema(`
model Run {
  id      String @id
  /// running | finished
  /// @kyselyType('running' | 'finished')
  status  String @default("running")
  /// @kyselyType('ok' | 'it''s')
  outcome String?
  /// @kyselyType(Record<string, number>)
  counts  Json
  // @kyselyType('not' | 'a doc comment')
  plain   String
}
`);
  const fields = Object.fromEntries(annotated.models[0]?.fields.map((field) => [field.name, field]) ?? []);

  it('reads the type of a field from its doc comment, and only from a doc comment', () => {
    expect(fields['status']?.kyselyType).toBe("'running' | 'finished'");
    expect(fields['counts']?.kyselyType).toBe('Record<string, number>');
    expect(fields['plain']?.kyselyType).toBeNull();
    expect(fields['id']?.kyselyType).toBeNull();
  });

  it('expects a CHECK named <Table>_<column>_check for each union of string literals, no other', () => {
    // `outcome` is no TypeScript union of literals ('it''s' is SQL quoting): no CHECK is asked for it.
    expect(
      expectedShape(annotated)
        .get('Run')
        ?.checks.map((check) => [check.name, check.values]),
    ).toEqual([['Run_status_check', ['running', 'finished']]]);
    expect(literalUnion("'a' | 'b'")).toEqual(['a', 'b']);
    expect(literalUnion("'a|b' | 'c'")).toEqual(['a|b', 'c']);
    expect(literalUnion("'x'")).toEqual(['x']);
    for (const other of ['string', "'a' | string", "'a' |", '1 | 2', ''])
      expect(literalUnion(other)).toBeNull();
  });

  it('reads the values of a CHECK as Postgres prints it, and nothing from other shapes', () => {
    expect(
      allowedValues("CHECK ((status = ANY (ARRAY['running'::text, 'finished'::text])))", 'status'),
    ).toEqual(['running', 'finished']);
    expect(
      allowedValues(
        "CHECK (((outcome IS NULL) OR (outcome = ANY (ARRAY['ok'::text, 'e''x'::text]))))",
        'outcome',
      ),
    ).toEqual(['ok', "e'x"]);
    expect(allowedValues(`CHECK (("errorCode" = 'x'::text))`, 'errorCode')).toEqual(['x']);
    expect(allowedValues("CHECK (((kind = 'a'::text) OR (kind = 'b'::text)))", 'kind')).toEqual(['a', 'b']);
    expect(allowedValues('CHECK ((length(outcome) < 10))', 'outcome')).toBeNull();
    expect(allowedValues("CHECK ((status <> ALL (ARRAY['x'::text])))", 'status')).toBeNull();
    expect(allowedValues("CHECK (((status = 'a'::text) AND (other = 'b'::text)))", 'status')).toBeNull();
    expect(allowedValues('CHECK ((attempts >= 0))', 'attempts')).toBeNull();
  });
});

describe('schema.prisma and the generated table types', () => {
  it('agree on every model and its scalar fields (the types are not stale, the parser misses nothing)', async () => {
    const schema = parsePrismaSchema(await readFile(schemaPath, 'utf8'));
    const generated = generatedTables(await readFile(generatedPath, 'utf8'));
    expect(schema.models.map((model) => model.table).sort()).toEqual([...generated.keys()].sort());
    for (const model of schema.models) {
      expect(model.fields.map((field) => field.name).sort(), model.name).toEqual(generated.get(model.table));
    }
  });
});

/** The tables of the generated `DB` type and the sorted columns of each (read from the file's text). */
function generatedTables(text: string): Map<string, string[]> {
  const types = new Map<string, string[]>();
  for (const block of text.matchAll(/^export type (\w+) = \{\n([\s\S]*?)^\};/gm)) {
    const columns = [...(block[2] ?? '').matchAll(/^ {2}(\w+)\??:/gm)].map((field) => field[1] ?? '');
    types.set(block[1] ?? '', columns.sort());
  }
  const tables = new Map<string, string[]>();
  for (const [table, typeName] of (types.get('DB') ?? []).map(
    (name) => [name, tableType(text, name)] as const,
  )) {
    tables.set(table, types.get(typeName) ?? []);
  }
  return tables;
}

/** The type name the `DB` type gives a table (`Agent: Agent;`). */
function tableType(text: string, table: string): string {
  return (
    new RegExp(`^ {2}${table}: (\\w+);`, 'm').exec(text.slice(text.indexOf('export type DB = {')))?.[1] ?? ''
  );
}
