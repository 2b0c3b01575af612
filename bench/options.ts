// Command line and environment of `npm run bench`, checked once. Flags win over environment.
import { parseArgs } from 'node:util';
import { integer, seconds, UsageError } from './harness/harness.js';
import { SCENARIOS, type Scenario } from './scenarios/requests.js';
import { TARGETS, type TargetSpec } from './targets/index.js';

export interface BenchOptions {
  readonly quick: boolean;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly connections: number;
  readonly targets: readonly TargetSpec[];
  /** Targets named with --target: a skip is then a failure, not a note. */
  readonly targetsExplicit: boolean;
  readonly scenarios: readonly Scenario[];
  readonly pin: boolean;
  readonly jsonPath: string;
  /** Also run the HTTPS new-connection-per-request comparison (scenarios/https.ts). */
  readonly https: boolean;
  /** The peer table (bench/peers.ts): after the main table, instead of it (`--peers`), or not at all. */
  readonly peers: 'include' | 'only' | 'skip';
  /** Interleaved rounds per target in the peer table: default 3, quick 2. */
  readonly peerRounds: number;
  readonly help: boolean;
}

export { UsageError };

export const USAGE = `Usage: npm run bench -- [options]

  --quick               CI mode: 1 s per run, 0.3 s warm-up          (BENCH_QUICK=1)
  --duration SECONDS    measured window per run, default 5 (quick 1)  (BENCH_DURATION)
  --warmup SECONDS      warm-up before each run, default 1 (quick 0.3) (BENCH_WARMUP)
  --connections N       concurrent connections, default 32             (BENCH_CONNECTIONS)
  --target a,b          targets: ${TARGETS.map((t) => t.name).join(', ')} (BENCH_TARGETS)
  --scenario a,b        scenarios (default: those marked default)       (BENCH_SCENARIOS)
  --no-pin              do not pin processes to CPUs with taskset       (BENCH_PIN=0)
  --json PATH           where to write results, default bench/results/latest.json
  --https               also: 200 HTTPS GETs, new connection each, direct vs sidecache interception
                        (origin handshake +20 ms per round trip; ~10 s)  (BENCH_HTTPS=1)
  --peers               only the peer table: cache-hit and pass-through through sidecache, nginx,
                        Varnish, Squid and the Node limit, interleaved rounds (BENCH_PEERS=only)
  --no-peers            skip the peer table (it runs after the main table unless --target is given)
  --rounds N            interleaved rounds per target in the peer table, default 3 (quick 2)
  --help

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(20)}${s.byDefault ? '' : '(opt-in) '}${s.description}`).join('\n')}
`;

function pick<T extends { name: string }>(
  name: string,
  raw: string | undefined,
  all: readonly T[],
): T[] | null {
  if (raw === undefined || raw === '') return null;
  return raw.split(',').map((wanted) => {
    const found = all.find((item) => item.name === wanted.trim());
    if (!found)
      throw new UsageError(`${name}: "${wanted}" is not one of ${all.map((i) => i.name).join(', ')}`);
    return found;
  });
}

function truthy(raw: string | undefined): boolean {
  return raw !== undefined && raw !== '' && raw !== '0' && raw.toLowerCase() !== 'false';
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    values = parseFlags(argv).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const quick = values.quick === true || truthy(env['BENCH_QUICK']);
  const durationMs = seconds('--duration', values.duration ?? env['BENCH_DURATION'], quick ? 1 : 5, 0.1, 600);
  const warmupMs = seconds('--warmup', values.warmup ?? env['BENCH_WARMUP'], quick ? 0.3 : 1, 0, 60);
  const connections = integer('--connections', values.connections ?? env['BENCH_CONNECTIONS'], 32, 1, 10_000);
  const targetsRaw = values.target ?? env['BENCH_TARGETS'];
  const targets = pick('--target', targetsRaw, TARGETS);
  const scenarios = pick('--scenario', values.scenario ?? env['BENCH_SCENARIOS'], SCENARIOS);
  const pinEnv = env['BENCH_PIN'];
  return {
    quick,
    durationMs,
    warmupMs,
    connections,
    targets: targets ?? TARGETS,
    targetsExplicit: targets !== null,
    scenarios: scenarios ?? SCENARIOS.filter((s) => s.byDefault),
    pin: values['no-pin'] !== true && (pinEnv === undefined || truthy(pinEnv)),
    jsonPath: values.json ?? 'bench/results/latest.json',
    https: values.https === true || truthy(env['BENCH_HTTPS']),
    peers:
      values['no-peers'] === true
        ? 'skip'
        : values.peers === true || env['BENCH_PEERS'] === 'only'
          ? 'only'
          : targets !== null
            ? 'skip'
            : 'include',
    peerRounds: integer('--rounds', values.rounds ?? env['BENCH_ROUNDS'], quick ? 2 : 3, 1, 20),
    help: values.help === true,
  };
}

function parseFlags(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      target: { type: 'string' },
      scenario: { type: 'string' },
      'no-pin': { type: 'boolean' },
      json: { type: 'string' },
      https: { type: 'boolean' },
      peers: { type: 'boolean' },
      'no-peers': { type: 'boolean' },
      rounds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
