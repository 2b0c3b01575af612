// The shipped program: src/ bundled by esbuild into dist/ (`npm run build`; `node build.mjs OUTDIR`).
//
// Why a bundle (docs/ARCHITECTURE.md, "Memory"): Node keeps the source text and module record of every
// module it loads for the life of the process. Loaded file by file, zod alone brings 95 modules
// (all its locales and JSON-schema code) and the program's own files their comments; bundled with
// tree shaking, idle RSS is about 3 MiB lower. `keepNames` keeps function and class names (error
// names come from them); `splitting` keeps the commands and features loaded on demand in chunks of
// their own, each directly in dist/ (src/version.ts resolves package files from there).
//
// Left external, loaded from node_modules as their packages ship them: undici (its internal files
// are required one by one, src/undici-parts.ts), and what only an optional feature loads: tangerine
// (DNS nameservers), OpenTelemetry (tracing), @peculiar and reflect-metadata (the interception
// CA). The tiers' clients are bundled into their chunks: loaded file by file, ioredis cost 1.3 MiB
// more idle RSS with the Redis tier on (68.3-68.8 against 67.2-67.4 MiB), memjs 0.5 MiB with the
// memcached tier (65.9-66.1 against 65.4-65.6).
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('.', import.meta.url));
const outdir = resolve(process.argv[2] ?? resolve(root, 'dist'));
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: [resolve(root, 'src/cli.ts')],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.18',
  minify: true,
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  external: ['undici', 'tangerine', '@opentelemetry/*', '@peculiar/*', 'reflect-metadata'],
  // CommonJS packages in the bundle (prom-client, pino) call require() for Node's modules.
  banner: {
    js: "import { createRequire as __sidecacheCreateRequire } from 'node:module'; const require = __sidecacheCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
