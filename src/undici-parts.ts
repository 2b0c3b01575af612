/**
 * The parts of undici the proxy uses, loaded from their own files rather than undici's index: the
 * index loads all of undici (fetch, WebSocket, EventSource, the cache and mock layers), about 3 MiB
 * of V8 heap that a sidecar would keep for its whole life (idle RSS about 4 MiB lower;
 * docs/ARCHITECTURE.md, "Memory"). The files are undici's own CommonJS modules, each exporting its
 * one class or function (`module.exports = Pool`); the types are the index's.
 * test/unit/undici-parts.test.ts checks they are the very objects the index exports, so
 * an undici upgrade that moves them fails there, not in production.
 */
import { createRequire } from 'node:module';
import type * as undici from 'undici';

const requireUndici = createRequire(import.meta.url);

export const Pool = requireUndici('undici/lib/dispatcher/pool.js') as typeof undici.Pool;
export type Pool = undici.Pool;
export const Agent = requireUndici('undici/lib/dispatcher/agent.js') as typeof undici.Agent;
export type Agent = undici.Agent;
/** undici's `buildConnector` (its namespace of option types: `import type { buildConnector } from 'undici'`). */
export const connectorBuilder = requireUndici('undici/lib/core/connect.js') as typeof undici.buildConnector;
/** undici's `util.headerNameToString`: a header name (a Buffer from the parser) as a lower-case string, well-known names without a copy. */
export const headerNameToString = (
  requireUndici('undici/lib/core/util.js') as { headerNameToString: typeof undici.util.headerNameToString }
).headerNameToString;
