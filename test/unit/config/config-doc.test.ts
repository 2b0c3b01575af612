/**
 * docs/CONFIGURATION.md is generated from the config schema (scripts/gen-config-doc.ts): it must
 * be what the generator makes now, and the generator must follow whatever the schema holds.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { CONFIG_DOC, generateConfigDoc, renderConfigReference } from '../../../scripts/gen-config-doc.js';
import { configSchema } from '../../../src/config/schema.js';

describe('docs/CONFIGURATION.md', () => {
  it('is up to date with src/config/schema.ts (run `npm run docs:config` when this fails)', () => {
    const committed = readFileSync(CONFIG_DOC, 'utf8');
    const fresh = generateConfigDoc();
    if (committed !== fresh) {
      const a = committed.split('\n');
      const b = fresh.split('\n');
      const line = a.findIndex((l, i) => l !== b[i]);
      assert.fail(
        `docs/CONFIGURATION.md is stale: run npm run docs:config\n` +
          `first difference at line ${line + 1}:\n  committed: ${a[line]}\n  generated: ${b[line]}`,
      );
    }
  });

  it('lists every key path with its type and default', () => {
    const doc = renderConfigReference();
    for (const row of [
      '| `listen` | string | `"127.0.0.1:8080"` |',
      '| `upstream.connectionsPerOrigin` | integer 1..1024 | `32` |',
      '| `shutdown.graceMs` | integer >= 0 | `10000` (10 s) |',
      '| `dns.mode` | "system" \\| "udp" \\| "doh" | `"system"` |',
      '| `upstream.caFile` | string \\| null | `null` |',
      '| `routes[].origin` | string | (required) |',
      '| `routes[].prefix` | string \\| false | (unset) |',
    ]) {
      assert.ok(doc.includes(row), `missing row start: ${row}`);
    }
    assert.match(doc, /\| `dns\.doh\.servers` \| list of string \| `\["1\.1\.1\.1","1\.0\.0\.1"\]` \|/);
    assert.match(doc, /\| `dns\.hosts` \| map of string to \(?string/);
  });

  it('picks up keys added to the schema, nested ones and lists of mappings included', () => {
    const extended = configSchema.extend({
      tls: z
        .object({ caDir: z.string().default('.sidecache/ca').describe('Where the CA lives.') })
        .strict()
        .default({ caDir: '.sidecache/ca' })
        .describe('TLS interception.'),
      intercept: z.array(z.object({ host: z.string().describe('A host.') })).default([]),
    });
    const doc = renderConfigReference(extended);
    assert.ok(doc.includes('| [`tls`](#tls) | TLS interception. |'));
    assert.ok(doc.includes('## tls'));
    assert.ok(doc.includes('| `tls.caDir` | string | `".sidecache/ca"` | Where the CA lives. |'));
    assert.ok(doc.includes('| `intercept[].host` | string | (required) | A host. |'));
  });
});
