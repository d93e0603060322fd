// A small parser for the parts of schema.prisma that decide the database shape: models, their scalar
// fields (type, optional, list, native type, default, @id, @unique, @map), @@id, @@unique, @@index,
// @@map and relations. It knows Prisma's naming rules for constraints and indexes, so the drift test
// can say what the migrated database must contain.

/** A scalar field: one column. */
export interface SchemaField {
  name: string;
  column: string;
  type: string;
  optional: boolean;
  list: boolean;
  /** `@db.X(args)` without the `@db.` prefix, e.g. `Uuid` or `VarChar(255)`. */
  nativeType: string | null;
  /** The argument of `@default(...)`, e.g. `now()`, `0`, `"general"`. */
  defaultValue: string | null;
  id: boolean;
  unique: boolean;
  updatedAt: boolean;
  /** The type inside `@kyselyType(...)` in the field's `///` doc comment, e.g. `'a' | 'b'`. */
  kyselyType: string | null;
}

/** A relation field that holds the foreign key (`@relation(fields: [...], references: [...])`). */
export interface SchemaRelation {
  name: string;
  target: string;
  fields: string[];
  references: string[];
  onDelete: string | null;
  onUpdate: string | null;
}

/** A model as far as the database is concerned. */
export interface SchemaModel {
  name: string;
  table: string;
  fields: SchemaField[];
  relations: SchemaRelation[];
  /** Field names of `@@id([...])`, if any. */
  compoundId: string[] | null;
  compoundUniques: string[][];
  indexes: string[][];
}

/** The parsed schema. */
export interface PrismaSchema {
  models: SchemaModel[];
  enums: string[];
}

const BLOCK_START = /^(model|enum|view|type|generator|datasource)\s+(\w+)\s*\{$/;
const FIELD_LINE = /^(\w+)\s+(\w+)(\[\])?(\?)?(?:\s+(.*))?$/;

/** Parses the text of a schema.prisma file. */
export function parsePrismaSchema(text: string): PrismaSchema {
  const blocks: { kind: string; name: string; lines: BlockLine[] }[] = [];
  let current: { kind: string; name: string; lines: BlockLine[] } | null = null;
  // `///` doc comments belong to the next line of the block (Prisma's documentation of that field).
  let docs: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const trimmed = rawLine.trim();
    if (trimmed.startsWith('///')) {
      docs.push(trimmed.slice(3).trim());
      continue;
    }
    const line = stripComment(rawLine).trim();
    if (line === '') continue;
    if (current === null) {
      const start = BLOCK_START.exec(line);
      if (start === null) throw new Error(`unexpected line outside a block: ${line}`);
      current = { kind: start[1] ?? '', name: start[2] ?? '', lines: [] };
    } else if (line === '}') {
      blocks.push(current);
      current = null;
    } else {
      current.lines.push({ text: line, docs });
    }
    docs = [];
  }
  if (current !== null) throw new Error(`block ${current.name} is not closed`);

  const modelNames = new Set(blocks.filter((block) => block.kind === 'model').map((block) => block.name));
  const enums = blocks.filter((block) => block.kind === 'enum').map((block) => block.name);
  const models = blocks
    .filter((block) => block.kind === 'model')
    .map((block) => parseModel(block.name, block.lines, modelNames));
  return { models, enums };
}

/** A line inside a block, with the `///` doc comment lines above it. */
interface BlockLine {
  text: string;
  docs: string[];
}

function parseModel(name: string, lines: BlockLine[], modelNames: Set<string>): SchemaModel {
  const model: SchemaModel = {
    name,
    table: name,
    fields: [],
    relations: [],
    compoundId: null,
    compoundUniques: [],
    indexes: [],
  };
  for (const { text: line, docs } of lines) {
    if (line.startsWith('@@')) {
      const attribute = /^@@(\w+)\s*\((.*)\)$/.exec(line);
      if (attribute === null) throw new Error(`${name}: cannot read ${line}`);
      const [, kind, args = ''] = attribute;
      if (kind === 'map') model.table = firstString(args, `${name}: @@map`);
      else if (kind === 'id') model.compoundId = fieldList(args, `${name}: ${line}`);
      else if (kind === 'unique') model.compoundUniques.push(fieldList(args, `${name}: ${line}`));
      else if (kind === 'index') model.indexes.push(fieldList(args, `${name}: ${line}`));
      else throw new Error(`${name}: the drift test does not understand ${line}`);
      continue;
    }
    const field = FIELD_LINE.exec(line);
    if (field === null) throw new Error(`${name}: cannot read field line ${line}`);
    const [, fieldName = '', type = '', list, optional, rest = ''] = field;
    const attributes = parseAttributes(rest);
    if (modelNames.has(type)) {
      const relation = attributes.get('relation');
      if (relation !== undefined && /\bfields\s*:/.test(relation)) {
        model.relations.push({
          name: fieldName,
          target: type,
          fields: namedList(relation, 'fields', `${name}.${fieldName}`),
          references: namedList(relation, 'references', `${name}.${fieldName}`),
          onDelete: namedValue(relation, 'onDelete'),
          onUpdate: namedValue(relation, 'onUpdate'),
        });
      }
      continue;
    }
    const nativeTypes = [...attributes.entries()].filter(([key]) => key.startsWith('db.'));
    const [native] = nativeTypes;
    const map = attributes.get('map');
    model.fields.push({
      name: fieldName,
      column: map === undefined ? fieldName : firstString(map, `${name}.${fieldName} @map`),
      type,
      optional: optional === '?',
      list: list === '[]',
      nativeType:
        native === undefined ? null : `${native[0].slice(3)}${native[1] === '' ? '' : `(${native[1]})`}`,
      defaultValue: attributes.get('default') ?? null,
      id: attributes.has('id'),
      unique: attributes.has('unique'),
      updatedAt: attributes.has('updatedAt'),
      kyselyType: kyselyTypeOf(docs.join('\n')),
    });
  }
  return model;
}

/** Field names of the primary key. */
export function primaryKeyOf(model: SchemaModel): string[] {
  if (model.compoundId !== null) return model.compoundId;
  return model.fields.filter((field) => field.id).map((field) => field.name);
}

/** The column of a field name (honours @map). */
export function columnOf(model: SchemaModel, fieldName: string): string {
  const field = model.fields.find((candidate) => candidate.name === fieldName);
  if (field === undefined) throw new Error(`${model.name} has no scalar field ${fieldName}`);
  return field.column;
}

/** Every unique index Prisma creates for the model, with Prisma's default names. */
export function uniqueIndexesOf(model: SchemaModel): { name: string; columns: string[] }[] {
  const fieldLists = [
    ...model.fields.filter((field) => field.unique).map((field) => [field.name]),
    ...model.compoundUniques,
  ];
  return fieldLists.map((fields) => {
    const columns = fields.map((field) => columnOf(model, field));
    return { name: constraintName(model.table, columns, 'key'), columns };
  });
}

/** Every non-unique index Prisma creates for the model, with Prisma's default names. */
export function indexesOf(model: SchemaModel): { name: string; columns: string[] }[] {
  return model.indexes.map((fields) => {
    const columns = fields.map((field) => columnOf(model, field));
    return { name: constraintName(model.table, columns, 'idx'), columns };
  });
}

/** Prisma's default constraint name: `Table_col1_col2_suffix`, cut to Postgres' 63 bytes. */
export function constraintName(table: string, columns: string[], suffix: 'key' | 'idx' | 'fkey'): string {
  const full = `${table}_${columns.join('_')}_${suffix}`;
  if (full.length <= 63) return full;
  const tail = `_${suffix}`;
  return `${full.slice(0, 63 - tail.length)}${tail}`;
}

// Splits `@name(args) @other @db.Uuid` into name -> args ('' without parentheses), with nested parentheses.
function parseAttributes(text: string): Map<string, string> {
  const attributes = new Map<string, string>();
  let position = 0;
  while (position < text.length) {
    const char = text[position];
    if (char === ' ' || char === '\t') {
      position += 1;
      continue;
    }
    if (char !== '@') throw new Error(`unexpected text in attributes: ${text.slice(position)}`);
    const nameMatch = /^@([\w.]+)/.exec(text.slice(position));
    if (nameMatch === null) throw new Error(`unexpected text in attributes: ${text.slice(position)}`);
    const attributeName = nameMatch[1] ?? '';
    position += nameMatch[0].length;
    let args = '';
    if (text[position] === '(') {
      const end = closingParenthesis(text, position);
      args = text.slice(position + 1, end);
      position = end + 1;
    }
    attributes.set(attributeName, args);
  }
  return attributes;
}

function closingParenthesis(text: string, open: number): number {
  let depth = 0;
  let inString = false;
  for (let index = open; index < text.length; index += 1) {
    const char = text[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '(') depth += 1;
    else if (char === ')') {
      depth -= 1;
      if (depth === 0) return index;
    }
  }
  throw new Error(`unbalanced parentheses in ${text}`);
}

function stripComment(line: string): string {
  let inString = false;
  for (let index = 0; index < line.length; index += 1) {
    const char = line[index];
    if (inString) {
      if (char === '\\') index += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') inString = true;
    else if (char === '/' && line[index + 1] === '/') return line.slice(0, index);
  }
  return line;
}

// `[a, b(sort: Desc)], map: "x"` -> ['a', 'b']; a custom `map:` or `name:` changes nothing we check
// except the constraint name, which we refuse to guess.
function fieldList(args: string, where: string): string[] {
  if (/\bmap\s*:/.test(args))
    throw new Error(`${where}: custom map names are not supported by the drift test`);
  const list = /^\s*(?:fields\s*:\s*)?\[([^\]]*)\]/.exec(args);
  if (list === null) throw new Error(`${where}: expected a field list`);
  return splitList(list[1] ?? '');
}

function namedList(args: string, key: string, where: string): string[] {
  const list = new RegExp(`\\b${key}\\s*:\\s*\\[([^\\]]*)\\]`).exec(args);
  if (list === null) throw new Error(`${where}: @relation without ${key}`);
  return splitList(list[1] ?? '');
}

function namedValue(args: string, key: string): string | null {
  return new RegExp(`\\b${key}\\s*:\\s*(\\w+)`).exec(args)?.[1] ?? null;
}

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim().replace(/\(.*\)$/, ''))
    .filter((item) => item !== '');
}

function firstString(args: string, where: string): string {
  const value = /"((?:[^"\\]|\\.)*)"/.exec(args)?.[1];
  if (value === undefined) throw new Error(`${where}: expected a string`);
  return value;
}

/** The type inside `@kyselyType(...)` of a doc comment (parentheses inside it balanced), or null. */
function kyselyTypeOf(documentation: string): string | null {
  const start = documentation.indexOf('@kyselyType(');
  if (start === -1) return null;
  let depth = 0;
  const from = start + '@kyselyType('.length;
  for (let index = from; index < documentation.length; index += 1) {
    const char = documentation[index];
    if (char === '(') depth += 1;
    else if (char === ')') {
      if (depth === 0) return documentation.slice(from, index).trim();
      depth -= 1;
    }
  }
  throw new Error(`an unclosed @kyselyType( in: ${documentation}`);
}

/**
 * The values of a string-literal union (`'a' | 'b'`), or null when the type is anything else (a type
 * name, a number union...). Single quotes only, as the schema writes them.
 */
export function literalUnion(type: string): string[] | null {
  const values: string[] = [];
  const literal = /\s*'((?:[^'\\]|\\.)*)'\s*(\||$)/y;
  let index = 0;
  while (index < type.length) {
    literal.lastIndex = index;
    const match = literal.exec(type);
    if (match === null) return null;
    values.push((match[1] ?? '').replace(/\\(.)/g, '$1'));
    index = literal.lastIndex;
    // A trailing `|` with nothing after it is not a union.
    if (match[2] === '|' && index >= type.length) return null;
  }
  return values.length === 0 ? null : values;
}
