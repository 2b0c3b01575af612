// `npm run bench:scenario`: issue 10's page, direct and through sidecache (./scenario.ts).
//   npm run bench:scenario -- --pages 5 --modes direct,intercept,routes --json PATH
// Exit status: 0 when every check passed (targets are reported, not enforced: the machine is
// shared and noisy), 1 when a check failed or the run broke, 2 for a bad option.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hasFlask } from '../../../test/helpers/python.js';
import {
  DEFAULT_OPTIONS,
  formatScenario,
  KEEP_WARM,
  type KeepWarm,
  MODES,
  type Mode,
  runScenario,
} from './scenario.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function usage(message: string): never {
  console.error(`bench:scenario: ${message}
usage: npm run bench:scenario -- [--pages N] [--modes direct,intercept,routes,intercept-flags,advised] [--dns-delay-ms MS]
       [--handshake-delay-ms MS] [--think-min-ms MS] [--think-max-ms MS] [--keep-warm off,on]
       [--idle-ms MS] [--idle-pages N] [--origin-idle-ms MS] [--dns-ttl-s S] [--json PATH]`);
  process.exit(2);
}

let values: Record<string, string | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      pages: { type: 'string' },
      modes: { type: 'string' },
      'dns-delay-ms': { type: 'string' },
      'handshake-delay-ms': { type: 'string' },
      'think-min-ms': { type: 'string' },
      'think-max-ms': { type: 'string' },
      'keep-warm': { type: 'string' },
      'idle-ms': { type: 'string' },
      'idle-pages': { type: 'string' },
      'origin-idle-ms': { type: 'string' },
      'dns-ttl-s': { type: 'string' },
      json: { type: 'string' },
    },
  }) as { values: Record<string, string | undefined> });
} catch (err) {
  usage((err as Error).message);
}

function int(name: string, fallback: number, min: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usage(`--${name}: "${raw}" is not an integer >= ${min}`);
  return n;
}

const modes = (values.modes?.split(',') ?? [...MODES]) as Mode[];
for (const m of modes) if (!MODES.includes(m)) usage(`--modes: "${m}" is not one of ${MODES.join(', ')}`);
const keepWarm = (values['keep-warm']?.split(',') ?? [...KEEP_WARM]) as KeepWarm[];
for (const k of keepWarm)
  if (!KEEP_WARM.includes(k)) usage(`--keep-warm: "${k}" is not one of ${KEEP_WARM.join(', ')}`);
const options = {
  pages: int('pages', DEFAULT_OPTIONS.pages, 1),
  dnsDelayMs: int('dns-delay-ms', DEFAULT_OPTIONS.dnsDelayMs, 0),
  handshakeDelayMs: int('handshake-delay-ms', DEFAULT_OPTIONS.handshakeDelayMs, 0),
  thinkMinMs: int('think-min-ms', DEFAULT_OPTIONS.thinkMinMs, 0),
  thinkMaxMs: int('think-max-ms', DEFAULT_OPTIONS.thinkMaxMs, 0),
  modes,
  keepWarm,
  idleMs: int('idle-ms', DEFAULT_OPTIONS.idleMs, 0),
  idlePages: int('idle-pages', DEFAULT_OPTIONS.idlePages, 0),
  originIdleMs: int('origin-idle-ms', DEFAULT_OPTIONS.originIdleMs, 1),
  dnsTtlS: int('dns-ttl-s', DEFAULT_OPTIONS.dnsTtlS, 0),
};
if (options.thinkMaxMs < options.thinkMinMs) usage('--think-max-ms must be >= --think-min-ms');

if (!(await hasFlask())) {
  console.error(
    'bench:scenario: /usr/bin/python3 with flask and requests is required (apt-get install python3-flask python3-requests)',
  );
  process.exit(1);
}
try {
  const result = await runScenario(options, (line) => console.error(line));
  console.log(formatScenario(result));
  const jsonPath = values.json ?? resolve(repoRoot, 'bench/results/scenario-latest.json');
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(result.failures.length === 0 ? 0 : 1);
} catch (err) {
  console.error(`bench:scenario failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
