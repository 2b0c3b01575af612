/**
 * Generates docs/CONFIGURATION.md from the one config schema (src/config/schema.ts): every key
 * path with its type, default and description, walked from the zod schema itself, so a key added
 * anywhere in the schema appears here at the next `npm run docs:config`.
 *
 *   npm run docs:config               # rewrite docs/CONFIGURATION.md
 *   npm run docs:config -- --check    # exit 1 when the committed file is stale
 *
 * The Markdown goes through Biome's formatter (which pads tables), so the file passes `npm run lint`.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CONFIG_DOC = fileURLToPath(new URL('../docs/CONFIGURATION.md', import.meta.url));
const DOC_PATH = 'docs/CONFIGURATION.md';

type Schema = z.core.$ZodType;
interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  defaultValue?: unknown;
  shape?: Record<string, Schema>;
  element?: Schema;
  options?: Schema[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  keyType?: Schema;
  valueType?: Schema;
  checks?: Array<{ _zod: { def: { check: string; format?: string; value?: unknown } } }>;
}

/** What wrappers (default, optional, nullable, transform) say about a key, and the schema inside. */
interface Unwrapped {
  readonly core: Schema;
  readonly description: string | undefined;
  readonly hasDefault: boolean;
  readonly defaultValue: unknown;
  readonly optional: boolean;
  readonly nullable: boolean;
}

function defOf(s: Schema): Def {
  return s._zod.def as unknown as Def;
}

function descriptionOf(s: Schema): string | undefined {
  return (s as unknown as { description?: string }).description;
}

function unwrap(schema: Schema): Unwrapped {
  let s = schema;
  let description = descriptionOf(s);
  let hasDefault = false;
  let defaultValue: unknown;
  let optional = false;
  let nullable = false;
  for (let i = 0; i < 20; i++) {
    const def = defOf(s);
    if (def.type === 'default' || def.type === 'prefault') {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = def.defaultValue;
      }
    } else if (def.type === 'optional') optional = true;
    else if (def.type === 'nullable') nullable = true;
    else if (def.type !== 'readonly' && def.type !== 'pipe') break;
    s = (def.type === 'pipe' ? def.in : def.innerType) as Schema;
    description ??= descriptionOf(s);
  }
  return { core: s, description, hasDefault, defaultValue, optional, nullable };
}

function typeOf(schema: Schema): string {
  const u = unwrap(schema);
  const def = defOf(u.core);
  let t: string;
  switch (def.type) {
    case 'string':
      t = 'string';
      break;
    case 'boolean':
      t = 'boolean';
      break;
    case 'number': {
      const checks = (def.checks ?? []).map((c) => c._zod.def);
      const int = checks.some((c) => c.check === 'number_format' && /int/.test(c.format ?? ''));
      const min = checks.find((c) => c.check === 'greater_than')?.value;
      const max = checks.find((c) => c.check === 'less_than')?.value;
      t = int ? 'integer' : 'number';
      if (min !== undefined && max !== undefined) t += ` ${min}..${max}`;
      else if (min !== undefined) t += ` >= ${min}`;
      else if (max !== undefined) t += ` <= ${max}`;
      break;
    }
    case 'enum':
      t = Object.values(def.entries ?? {})
        .map((v) => JSON.stringify(v))
        .join(' | ');
      break;
    case 'literal':
      t = (def.values ?? []).map((v) => JSON.stringify(v)).join(' | ');
      break;
    case 'union':
      t = (def.options ?? []).map(typeOf).join(' | ');
      break;
    case 'array': {
      const element = typeOf(def.element as Schema);
      t = `list of ${element.includes(' ') ? `(${element})` : element}`;
      break;
    }
    case 'record':
      t = `map of ${typeOf(def.keyType as Schema)} to ${typeOf(def.valueType as Schema)}`;
      break;
    case 'object':
      t = 'mapping';
      break;
    default:
      t = def.type;
  }
  return u.nullable ? `${t} | null` : t;
}

const MiB = 1024 * 1024;

/** A default as YAML would write it, with a human reading of durations and sizes. */
function formatDefault(key: string, u: Unwrapped): string {
  if (!u.hasDefault) return u.optional ? '(unset)' : '(required)';
  const v = u.defaultValue;
  let text = `\`${JSON.stringify(v)}\``;
  if (typeof v === 'number' && v > 0) {
    if (/Ms$/.test(key) && v >= 1000) text += ` (${humanMs(v)})`;
    if (/Bytes$/.test(key) && v >= 1024) text += ` (${v % MiB === 0 ? `${v / MiB} MiB` : `${v / 1024} KiB`})`;
  }
  return text;
}

function humanMs(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size} ${unit}`;
  }
  return `${ms / 1000} s`;
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly default: string;
  readonly description: string;
}

/** Rows for `schema` at `path`, then for what it contains (object keys, list elements). */
function rowsOf(path: string, schema: Schema): Row[] {
  const u = unwrap(schema);
  const def = defOf(u.core);
  const name = path.slice(path.lastIndexOf('.') + 1);
  const rows: Row[] = [];
  const isObject = def.type === 'object';
  const elementOf = def.type === 'array' ? unwrap(def.element as Schema) : null;
  const listOfObjects = elementOf !== null && defOf(elementOf.core).type === 'object';
  rows.push({
    key: path,
    type: listOfObjects ? 'list of mappings' : typeOf(schema),
    // An object's default is the sum of its keys' defaults, listed below.
    default: isObject ? (u.hasDefault ? '(below)' : formatDefault(name, u)) : formatDefault(name, u),
    description: describe(schema),
  });
  if (isObject) {
    for (const [key, child] of Object.entries(def.shape ?? {})) rows.push(...rowsOf(`${path}.${key}`, child));
  } else if (listOfObjects && elementOf) {
    for (const [key, child] of Object.entries(defOf(elementOf.core).shape ?? {})) {
      rows.push(...rowsOf(`${path}[].${key}`, child));
    }
  }
  return rows;
}

/** Text safe in Markdown: `*` would become emphasis (and Biome rewrites it to `_`). */
function text(s: string): string {
  return s.replace(/\*/g, '\\*').replace(/\n/g, ' ');
}

function cell(s: string): string {
  return text(s).replace(/\|/g, '\\|');
}

/** A key's description; a mapping without one is summarised by the keys it holds. */
function describe(schema: Schema): string {
  const u = unwrap(schema);
  if (u.description) return u.description;
  const shape = defOf(u.core).shape;
  return shape ? `Settings: ${Object.keys(shape).join(', ')}.` : '';
}

/** The whole reference as Markdown (not yet formatted). */
export function renderConfigReference(schema: Schema = configSchema): string {
  const top = defOf(unwrap(schema).core).shape ?? {};
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by scripts/gen-config-doc.ts: do not edit by hand;',
    '     run `npm run docs:config` after changing the schema (a test fails when this file is stale). -->',
    '',
    'Every key sidecache accepts, with its type, default and meaning, generated from the one config',
    'schema. Sources merge in this order, later wins: built-in defaults < YAML file (`--config FILE`',
    'or `SIDECACHE_CONFIG`; without either, the embedded `config/default.yaml`) < `SIDECACHE_*`',
    'environment variables < command-line flags (`sidecache --help`; the README lists which key each',
    'flag and variable sets). Unknown keys are refused. Durations are in milliseconds (`…Ms`), sizes',
    'in bytes (`…Bytes`). `sidecache check-config --config FILE` validates a file and explains it.',
    '',
    'In key paths, `routes[]` stands for every entry of the `routes` list. "(unset)" means the key is',
    'optional and has no default of its own (a route-level override inherits the global value).',
    '',
    '## Top-level keys',
    '',
    '| key | description |',
    '| --- | --- |',
    ...Object.entries(top).map(
      ([key, s]) => `| [\`${key}\`](#${key.toLowerCase()}) | ${cell(describe(s))} |`,
    ),
    '',
  ];
  const sections = Object.entries(top).map(([key, s]) => ({ key, s, rows: rowsOf(key, s) }));
  // A route-level key without a description of its own overrides the global key of the same name.
  const global = new Map(sections.flatMap((sec) => sec.rows.map((r) => [r.key, r] as const)));
  for (const { key, s, rows } of sections) {
    out.push(`## ${key}`, '');
    out.push(text(describe(s)), '');
    out.push('| key | type | default | description |', '| --- | --- | --- | --- |');
    for (const found of rows) {
      const same = found.description === '' ? global.get(found.key.replace(/^routes\[\]\./, '')) : undefined;
      const row =
        same && same !== found
          ? { ...found, description: `This route's \`${same.key}\`: ${same.description}` }
          : found;
      out.push(
        `| \`${cell(row.key)}\` | ${cell(row.type)} | ${cell(row.default)} | ${cell(row.description)} |`,
      );
    }
    out.push('');
  }
  return out.join('\n');
}

/** Biome's Markdown formatting (table padding), so the generated file is what `npm run lint` wants. */
export function formatMarkdown(markdown: string): string {
  return execFileSync(
    process.execPath,
    [
      fileURLToPath(new URL('../node_modules/@biomejs/biome/bin/biome', import.meta.url)),
      'format',
      `--stdin-file-path=${DOC_PATH}`,
    ],
    { cwd: ROOT, input: markdown, encoding: 'utf8' },
  );
}

export function generateConfigDoc(schema: Schema = configSchema): string {
  return formatMarkdown(renderConfigReference(schema));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const doc = generateConfigDoc();
  if (process.argv.includes('--check')) {
    const current = readFileSync(CONFIG_DOC, 'utf8');
    if (current !== doc) {
      process.stderr.write(`${DOC_PATH} is stale: run npm run docs:config\n`);
      process.exit(1);
    }
    process.stdout.write(`${DOC_PATH} is up to date\n`);
  } else {
    writeFileSync(CONFIG_DOC, doc);
    process.stdout.write(`wrote ${DOC_PATH}\n`);
  }
}
