import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/errors.js';
import { REASONS } from '../../src/reasons.js';

const doc = readFileSync(new URL('../../docs/ERRORS.md', import.meta.url), 'utf8');

describe('docs/ERRORS.md stays in sync with src/errors.ts', () => {
  it('documents every error code, and no code that does not exist', () => {
    const documented = new Set([...doc.matchAll(/^\| `(SC_ERR_[A-Z_]+)`\s*\|/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), [...ERROR_CODES].sort());
  });

  it('names only reasons from the closed list', () => {
    for (const m of doc.matchAll(/^\| `SC_ERR_[A-Z_]+`\s*\|[^|]+\|\s*`([a-z_]+)`\s*\|/gm)) {
      assert.ok((REASONS as readonly string[]).includes(m[1] as string), `${m[1]} is not in REASONS`);
    }
  });
});
