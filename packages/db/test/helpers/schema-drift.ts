// Compares what schema.prisma says the database must look like with what a migrated database looks
// like, and lists every difference as a readable line.
import type pg from 'pg';
import {
  columnOf,
  constraintName,
  indexesOf,
  literalUnion,
  primaryKeyOf,
  uniqueIndexesOf,
  type PrismaSchema,
  type SchemaField,
  type SchemaModel,
} from './prisma-schema.js';

/** One column as compared: type (`text`, `uuid`, `int4`, `timestamp(3)`, `text[]`...), nullability, default. */
export interface ColumnShape {
  type: string;
  nullable: boolean;
  /** The default expression as Postgres prints it; `autoincrement()` for any sequence default. */
  defaultValue: string | null;
}

/** A named index or constraint over ordered columns. */
export interface KeyShape {
  name: string;
  columns: string[];
}

/** A foreign key. */
export interface ForeignKeyShape extends KeyShape {
  referencedTable: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
}

/**
 * A CHECK constraint on one column that allows a list of values (`"c" IN ('a', 'b')`, with or without
 * `"c" IS NULL OR`); `values` is null for a CHECK of any other shape (read from its definition).
 */
export interface CheckShape {
  name: string;
  column: string;
  values: string[] | null;
  /** As Postgres prints it (`pg_get_constraintdef`), for messages. */
  definition: string;
}

/** The parts of a table the drift test compares. */
export interface TableShape {
  columns: Map<string, ColumnShape>;
  primaryKey: KeyShape | null;
  uniqueIndexes: KeyShape[];
  indexes: KeyShape[];
  foreignKeys: ForeignKeyShape[];
  /**
   * CHECK constraints on one column. Expected: one per column whose `/// @kyselyType(...)` is a union of
   * string literals, named `<Table>_<column>_check`, allowing exactly those values.
   */
  checks: CheckShape[];
}

/** Tables that exist in a migrated database without a model. */
const BOOKKEEPING_TABLES = new Set(['_prisma_migrations']);

/** The shape schema.prisma asks for, by table name. */
export function expectedShape(schema: PrismaSchema): Map<string, TableShape> {
  const enums = new Set(schema.enums);
  const tables = new Map<string, TableShape>();
  for (const model of schema.models) {
    const columns = new Map<string, ColumnShape>();
    for (const field of model.fields) {
      columns.set(field.column, {
        type: expectedType(model, field, enums),
        // Prisma emits scalar lists without NOT NULL (`"tags" TEXT[]`).
        nullable: field.optional || field.list,
        defaultValue: expectedDefault(model, field, enums),
      });
    }
    const primaryKeyColumns = primaryKeyOf(model).map((field) => columnOf(model, field));
    const checks: CheckShape[] = [];
    for (const field of model.fields) {
      const values = field.kyselyType === null ? null : literalUnion(field.kyselyType);
      if (values === null) continue;
      checks.push({
        name: `${model.table}_${field.column}_check`,
        column: field.column,
        values,
        definition: `@kyselyType(${field.kyselyType ?? ''})`,
      });
    }
    tables.set(model.table, {
      columns,
      checks,
      primaryKey:
        primaryKeyColumns.length === 0 ? null : { name: `${model.table}_pkey`, columns: primaryKeyColumns },
      uniqueIndexes: uniqueIndexesOf(model),
      indexes: indexesOf(model),
      foreignKeys: model.relations.map((relation) => {
        const target = schema.models.find((candidate) => candidate.name === relation.target);
        if (target === undefined)
          throw new Error(`${model.name}.${relation.name}: unknown model ${relation.target}`);
        const columnsOfKey = relation.fields.map((field) => columnOf(model, field));
        const optional = relation.fields.some(
          (field) => model.fields.find((f) => f.name === field)?.optional === true,
        );
        return {
          name: constraintName(model.table, columnsOfKey, 'fkey'),
          columns: columnsOfKey,
          referencedTable: target.table,
          referencedColumns: relation.references.map((field) => columnOf(target, field)),
          // Prisma's defaults: Restrict for a required relation, SetNull for an optional one; Cascade on update.
          onDelete: relation.onDelete ?? (optional ? 'SetNull' : 'Restrict'),
          onUpdate: relation.onUpdate ?? 'Cascade',
        };
      }),
    });
  }
  return tables;
}

function expectedType(model: SchemaModel, field: SchemaField, enums: Set<string>): string {
  const base = expectedBaseType(model, field, enums);
  return field.list ? `${base.replace(/\(.*\)$/, '')}[]` : base;
}

function expectedBaseType(model: SchemaModel, field: SchemaField, enums: Set<string>): string {
  const native = field.nativeType;
  const where = `${model.name}.${field.name}`;
  if (enums.has(field.type)) return field.type;
  switch (field.type) {
    case 'String':
      if (native === null || native === 'Text') return 'text';
      if (native === 'Uuid') return 'uuid';
      if (/^VarChar\(\d+\)$/.test(native)) return `varchar${native.slice('VarChar'.length)}`;
      if (/^Char\(\d+\)$/.test(native)) return `bpchar${native.slice('Char'.length)}`;
      break;
    case 'Int':
      if (native === null || native === 'Integer') return 'int4';
      if (native === 'SmallInt') return 'int2';
      break;
    case 'BigInt':
      if (native === null || native === 'BigInt') return 'int8';
      break;
    case 'Float':
      if (native === null || native === 'DoublePrecision') return 'float8';
      if (native === 'Real') return 'float4';
      break;
    case 'Boolean':
      if (native === null) return 'bool';
      break;
    case 'DateTime':
      if (native === null) return 'timestamp(3)';
      if (/^Timestamp\(\d+\)$/.test(native)) return `timestamp${native.slice('Timestamp'.length)}`;
      if (/^Timestamptz\(\d+\)$/.test(native)) return `timestamptz${native.slice('Timestamptz'.length)}`;
      if (native === 'Date') return 'date';
      break;
    case 'Json':
      if (native === null || native === 'JsonB') return 'jsonb';
      if (native === 'Json') return 'json';
      break;
    case 'Decimal':
      if (native === null) return 'numeric(65,30)';
      break;
    case 'Bytes':
      if (native === null || native === 'ByteA') return 'bytea';
      break;
  }
  throw new Error(
    `${where}: the drift test does not know the type ${field.type}${native === null ? '' : ` @db.${native}`}`,
  );
}

function expectedDefault(model: SchemaModel, field: SchemaField, enums: Set<string>): string | null {
  const value = field.defaultValue;
  if (value === null) return null;
  if (value === 'autoincrement()') return 'autoincrement()';
  if (value === 'now()') return 'CURRENT_TIMESTAMP';
  // Generated by the client, not the database.
  if (/^(uuid|cuid|nanoid|ulid)\(.*\)$/.test(value)) return null;
  if (/^dbgenerated\(/.test(value)) return value;
  if (/^-?\d+(\.\d+)?$/.test(value) || value === 'true' || value === 'false') return value;
  const text = /^"((?:[^"\\]|\\.)*)"$/.exec(value)?.[1];
  if (text !== undefined) {
    const cast = enums.has(field.type)
      ? `"${field.type}"`
      : expectedBaseType(model, field, enums) === 'uuid'
        ? 'uuid'
        : 'text';
    return `'${text.replaceAll("'", "''")}'::${cast}`;
  }
  if (enums.has(field.type)) return `'${value}'::"${field.type}"`;
  throw new Error(`${model.name}.${field.name}: the drift test does not understand @default(${value})`);
}

/** Reads the shape of every table in the connection's current schema. */
export async function actualShape(client: pg.Client): Promise<Map<string, TableShape>> {
  const tables = new Map<string, TableShape>();
  const tableRows = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
  );
  for (const row of tableRows.rows) {
    tables.set(row.table_name, {
      columns: new Map(),
      primaryKey: null,
      uniqueIndexes: [],
      indexes: [],
      foreignKeys: [],
      checks: [],
    });
  }
  const table = (name: string): TableShape => {
    const shape = tables.get(name);
    if (shape === undefined) throw new Error(`catalog mentions unknown table ${name}`);
    return shape;
  };

  const columnRows = await client.query<{
    table_name: string;
    column_name: string;
    data_type: string;
    udt_name: string;
    is_nullable: 'YES' | 'NO';
    column_default: string | null;
    character_maximum_length: number | null;
    datetime_precision: number | null;
    numeric_precision: number | null;
    numeric_scale: number | null;
  }>(
    `SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
            character_maximum_length, datetime_precision, numeric_precision, numeric_scale
     FROM information_schema.columns WHERE table_schema = current_schema()`,
  );
  for (const row of columnRows.rows) {
    let type = row.udt_name;
    if (row.data_type === 'ARRAY') type = `${row.udt_name.replace(/^_/, '')}[]`;
    else if ((type === 'timestamp' || type === 'timestamptz') && row.datetime_precision !== null) {
      type = `${type}(${row.datetime_precision})`;
    } else if ((type === 'varchar' || type === 'bpchar') && row.character_maximum_length !== null) {
      type = `${type}(${row.character_maximum_length})`;
    } else if (type === 'numeric' && row.numeric_precision !== null) {
      type = `numeric(${row.numeric_precision},${row.numeric_scale ?? 0})`;
    }
    const defaultValue =
      row.column_default?.startsWith('nextval(') === true ? 'autoincrement()' : row.column_default;
    table(row.table_name).columns.set(row.column_name, {
      type,
      nullable: row.is_nullable === 'YES',
      defaultValue,
    });
  }

  const primaryKeyRows = await client.query<{
    table_name: string;
    constraint_name: string;
    column_name: string;
  }>(
    `SELECT tc.table_name, tc.constraint_name, kcu.column_name
     FROM information_schema.table_constraints tc
     JOIN information_schema.key_column_usage kcu
       ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name
      AND kcu.table_name = tc.table_name
     WHERE tc.table_schema = current_schema() AND tc.constraint_type = 'PRIMARY KEY'
     ORDER BY tc.table_name, kcu.ordinal_position`,
  );
  for (const row of primaryKeyRows.rows) {
    const shape = table(row.table_name);
    shape.primaryKey ??= { name: row.constraint_name, columns: [] };
    shape.primaryKey.columns.push(row.column_name);
  }

  // Prisma makes @unique and @@unique unique indexes, not constraints, so they are only in pg_catalog.
  const indexRows = await client.query<{
    table_name: string;
    index_name: string;
    is_unique: boolean;
    columns: string[];
  }>(
    `SELECT t.relname AS table_name, i.relname AS index_name, ix.indisunique AS is_unique,
            array(SELECT a.attname::text
                  FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
                  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                  ORDER BY k.position) AS columns
     FROM pg_index ix
     JOIN pg_class t ON t.oid = ix.indrelid
     JOIN pg_class i ON i.oid = ix.indexrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND NOT ix.indisprimary`,
  );
  for (const row of indexRows.rows) {
    const key = { name: row.index_name, columns: row.columns };
    (row.is_unique ? table(row.table_name).uniqueIndexes : table(row.table_name).indexes).push(key);
  }

  const foreignKeyRows = await client.query<{
    table_name: string;
    constraint_name: string;
    columns: string[];
    referenced_table: string;
    referenced_columns: string[];
    on_delete: string;
    on_update: string;
  }>(
    `SELECT t.relname AS table_name, c.conname AS constraint_name, r.relname AS referenced_table,
            array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.position) AS columns,
            array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, position)
                  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.position) AS referenced_columns,
            c.confdeltype::text AS on_delete, c.confupdtype::text AS on_update
     FROM pg_constraint c
     JOIN pg_class t ON t.oid = c.conrelid
     JOIN pg_class r ON r.oid = c.confrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND c.contype = 'f'`,
  );
  for (const row of foreignKeyRows.rows) {
    table(row.table_name).foreignKeys.push({
      name: row.constraint_name,
      columns: row.columns,
      referencedTable: row.referenced_table,
      referencedColumns: row.referenced_columns,
      onDelete: referentialAction(row.on_delete),
      onUpdate: referentialAction(row.on_update),
    });
  }

  const checkRows = await client.query<{
    table_name: string;
    constraint_name: string;
    columns: string[];
    definition: string;
  }>(
    `SELECT t.relname AS table_name, c.conname AS constraint_name, pg_get_constraintdef(c.oid) AS definition,
            array(SELECT a.attname::text FROM unnest(c.conkey) AS k(attnum)
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum) AS columns
     FROM pg_constraint c
     JOIN pg_class t ON t.oid = c.conrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema() AND c.contype = 'c'`,
  );
  for (const row of checkRows.rows) {
    // A CHECK over several columns is no column's list of values: the schema cannot say it either.
    const [column] = row.columns;
    if (row.columns.length !== 1 || column === undefined) continue;
    table(row.table_name).checks.push({
      name: row.constraint_name,
      column,
      values: allowedValues(row.definition, column),
      definition: row.definition,
    });
  }
  return tables;
}

/**
 * The values a CHECK definition allows for `column`, as Postgres prints it: `CHECK ((c = ANY
 * (ARRAY['a'::text, 'b'::text])))`, `CHECK ((c = 'a'::text))`, an OR of those, each optionally after
 * `(c IS NULL) OR` (a NULL passes a CHECK anyway); null for any other shape.
 */
export function allowedValues(definition: string, column: string): string[] | null {
  const values: string[] = [];
  const withPlaceholders = definition.replace(
    /'((?:[^']|'')*)'::(?:text|character varying)/g,
    (_literal, value: string) => {
      values.push(value.replaceAll("''", "'"));
      return 'L';
    },
  );
  if (values.length === 0) return null;
  const quoted = `"${column.replaceAll('"', '""')}"`;
  const compact = withPlaceholders.replace(/[\s()]/g, '');
  for (const name of new Set([column, quoted])) {
    const value = `(?:${escapeRegExp(name)}=(?:L|ANYARRAY\\[L(?:,L)*\\]))`;
    const shape = new RegExp(`^CHECK(?:${escapeRegExp(name)}ISNULLOR)?${value}(?:OR${value})*$`);
    if (shape.test(compact)) return values;
  }
  return null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function referentialAction(code: string): string {
  const actions: Record<string, string> = {
    a: 'NoAction',
    r: 'Restrict',
    c: 'Cascade',
    n: 'SetNull',
    d: 'SetDefault',
  };
  return actions[code] ?? `unknown(${code})`;
}

/** Every difference between the expected and the actual shape, one readable line each; empty when equal. */
export function diffShapes(expected: Map<string, TableShape>, actual: Map<string, TableShape>): string[] {
  const problems: string[] = [];
  for (const [tableName, want] of expected) {
    const have = actual.get(tableName);
    if (have === undefined) {
      problems.push(`table "${tableName}": missing in the database`);
      continue;
    }
    const at = `table "${tableName}"`;
    for (const [columnName, wantColumn] of want.columns) {
      const haveColumn = have.columns.get(columnName);
      if (haveColumn === undefined) {
        problems.push(`${at}: column "${columnName}" missing (schema: ${describeColumn(wantColumn)})`);
      } else if (describeColumn(haveColumn) !== describeColumn(wantColumn)) {
        problems.push(
          `${at}: column "${columnName}" is ${describeColumn(haveColumn)}, schema says ${describeColumn(wantColumn)}`,
        );
      }
    }
    for (const columnName of have.columns.keys()) {
      if (!want.columns.has(columnName)) problems.push(`${at}: column "${columnName}" is not in the schema`);
    }
    const wantKey = want.primaryKey === null ? 'none' : describeKey(want.primaryKey);
    const haveKey = have.primaryKey === null ? 'none' : describeKey(have.primaryKey);
    if (wantKey !== haveKey) problems.push(`${at}: primary key is ${haveKey}, schema says ${wantKey}`);
    compareKeys(
      problems,
      `${at}: unique index`,
      want.uniqueIndexes.map(describeKey),
      have.uniqueIndexes.map(describeKey),
    );
    compareKeys(problems, `${at}: index`, want.indexes.map(describeKey), have.indexes.map(describeKey));
    compareKeys(
      problems,
      `${at}: foreign key`,
      want.foreignKeys.map(describeForeignKey),
      have.foreignKeys.map(describeForeignKey),
    );
    compareChecks(problems, at, want.checks, have.checks);
  }
  for (const tableName of actual.keys()) {
    if (!expected.has(tableName) && !BOOKKEEPING_TABLES.has(tableName)) {
      problems.push(`table "${tableName}": in the database but not in the schema`);
    }
  }
  return problems;
}

function compareChecks(problems: string[], at: string, want: CheckShape[], have: CheckShape[]): void {
  for (const check of want) {
    const wanted = describeValues(check.values ?? []);
    const onColumn = have.filter((candidate) => candidate.column === check.column);
    if (onColumn.length === 0) {
      problems.push(`${at}: column "${check.column}" has no CHECK constraint, schema says ${wanted}`);
      continue;
    }
    for (const found of onColumn) {
      if (found.values === null) {
        problems.push(
          `${at}: column "${check.column}" has ${found.definition} ("${found.name}"), not a list of values; schema says ${wanted}`,
        );
      } else if (describeValues(found.values) !== wanted) {
        problems.push(
          `${at}: column "${check.column}" allows ${describeValues(found.values)} ("${found.name}"), schema says ${wanted}`,
        );
      } else if (found.name !== check.name) {
        problems.push(
          `${at}: column "${check.column}" has its CHECK named "${found.name}", not "${check.name}"`,
        );
      }
    }
  }
  // A list of values on a column the schema leaves open is drift too; CHECKs of other shapes (ranges,
  // several columns) are beyond what schema.prisma can say and are not compared.
  for (const found of have) {
    if (found.values === null || want.some((check) => check.column === found.column)) continue;
    problems.push(
      `${at}: column "${found.column}" allows ${describeValues(found.values)} ("${found.name}"), but the schema has no @kyselyType union on it`,
    );
  }
}

/** Values as a sorted literal union: `'a' | 'b'`. */
function describeValues(values: string[]): string {
  return [...new Set(values)]
    .sort()
    .map((value) => `'${value}'`)
    .join(' | ');
}

function compareKeys(problems: string[], label: string, want: string[], have: string[]): void {
  for (const key of want) if (!have.includes(key)) problems.push(`${label} ${key} missing`);
  for (const key of have) if (!want.includes(key)) problems.push(`${label} ${key} is not in the schema`);
}

function describeColumn(column: ColumnShape): string {
  const defaultValue = column.defaultValue === null ? '' : ` DEFAULT ${column.defaultValue}`;
  return `${column.type} ${column.nullable ? 'NULL' : 'NOT NULL'}${defaultValue}`;
}

function describeKey(key: KeyShape): string {
  return `"${key.name}" (${key.columns.join(', ')})`;
}

function describeForeignKey(key: ForeignKeyShape): string {
  return `${describeKey(key)} -> "${key.referencedTable}" (${key.referencedColumns.join(', ')}) ON DELETE ${key.onDelete} ON UPDATE ${key.onUpdate}`;
}
