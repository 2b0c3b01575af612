#!/usr/bin/env node
/**
 * Folder-level import check for src/: fails when two folders import each other (either way, type
 * imports and dynamic imports included). madge (`npm run cycles`) finds file-level cycles; this
 * finds rooms that know each other even when no single file chain loops. Each file at the root of
 * src/ counts as a folder of its own; the composition roots (src/server.ts, src/cli.ts) may import everything and
 * are left out. `--graph` prints every folder's imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const COMPOSITION_ROOTS = new Set(['server.ts', 'cli.ts']);
/** Two-way pairs still being untangled elsewhere, as "a<->b" with a < b. */
const ALLOWED = new Set([]);

/** Every `from '...'`, `import '...'`, `import('...')` and `require('...')` specifier in `text`. */
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;

function tsFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The folder of a file under src/, by its first path segment; a file at the root is a room of its own. */
function folderOf(file) {
  const parts = relative(SRC, file).split(sep);
  return parts.length === 1 ? parts[0].replace(/\.js$/, '.ts') : parts[0];
}

const edges = new Map(); // folder -> Map(folder -> first "file -> target" seen)
for (const file of tsFiles(SRC)) {
  const rel = relative(SRC, file);
  if (COMPOSITION_ROOTS.has(rel)) continue;
  const from = folderOf(file);
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(SPECIFIER)) {
    const spec = match[1];
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(SRC + sep)) continue;
    const to = folderOf(target);
    if (to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const seen = edges.get(from);
    if (!seen.has(to)) seen.set(to, `${rel} -> ${relative(SRC, target)}`);
  }
}

if (process.argv.includes('--graph')) {
  for (const [from, tos] of [...edges].sort(([a], [b]) => a.localeCompare(b))) {
    console.log(`${from} -> ${[...tos.keys()].sort().join(', ')}`);
  }
}

const twoWay = [];
for (const [a, tos] of edges) {
  for (const [b, why] of tos) {
    if (a >= b) continue;
    const back = edges.get(b)?.get(a);
    if (!back) continue;
    const pair = `${a}<->${b}`;
    twoWay.push({ pair, allowed: ALLOWED.has(pair), why: `${why}; ${back}` });
  }
}
twoWay.sort((x, y) => x.pair.localeCompare(y.pair));
const failing = twoWay.filter((t) => !t.allowed);
for (const t of twoWay) {
  console.log(`${t.allowed ? 'allowed (being fixed)' : 'TWO-WAY'}: ${t.pair} (${t.why})`);
}
if (failing.length > 0) {
  console.error(`${failing.length} pair(s) of folders in src/ import each other`);
  process.exit(1);
}
console.log(`folders in src/: no two-way imports${twoWay.length > 0 ? ' beyond the allowed pairs' : ''}`);
