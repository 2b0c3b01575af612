// `npm run cache-tests -- CHECKOUT [--forward] [--id TEST] [--json FILE] [--from FILE] [--log FILE]
// [--compare] [--min-scored N] [--min-required N]`: the public HTTP caching test suite (github:
// http-tests/cache-tests, behind cache-tests.fyi) against sidecache as a reverse proxy, or with
// `--forward` as a forward proxy (./cache-tests-forward.mjs, preloaded into the client, sends its
// requests in absolute form): the suite's own handlers (CHECKOUT/test-engine/server) behind a
// node:http server of ours on 127.0.0.1, sidecache in this process with one route `/origin/` to it
// (no prefix with `--forward`), and the suite's CLI in a child process. CHECKOUT is a copy of the
// suite with `npm install` run there; options and output: bench/README.md. Exit 0 when the run
// completed (and reached `--min-scored` / `--min-required`), 1 when not, 2 for a bad option.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger } from '../src/log.js';
import { startOrigin, type TestOrigin } from '../test/helpers/origin.js';
import { startTestSidecache } from '../test/helpers/sidecache.js';

const USAGE =
  'usage: npm run cache-tests -- CHECKOUT [--forward] [--id TEST] [--json FILE] [--from FILE] [--log FILE] [--compare] [--min-scored N] [--min-required N]';
const FORWARD_PRELOAD = fileURLToPath(new URL('./cache-tests-forward.mjs', import.meta.url));
/** The whole suite takes about a minute; a run that takes this long is stuck. */
const CLIENT_TIMEOUT_MS = 10 * 60_000;
/** Published reverse-proxy results worth comparing with (file names in CHECKOUT/results). */
const REFERENCES = ['nginx', 'squid', 'trafficserver', 'varnish', 'apache', 'fastly'] as const;

interface Options {
  readonly checkout: string;
  readonly id: string;
  readonly json: string | null;
  readonly compare: boolean;
  /** Tally a saved `--json` file instead of running the suite. */
  readonly from: string | null;
  /** Write sidecache's log (one access line per exchange) to this file. */
  readonly log: string | null;
  /** Forward-proxy mode instead of reverse. */
  readonly forward: boolean;
  /** Fail (exit 1) below these counts. */
  readonly minScored: number;
  readonly minRequired: number;
}

function parseArgs(argv: readonly string[]): Options {
  let checkout: string | null = null;
  let id = '';
  let json: string | null = null;
  let compare = false;
  let from: string | null = null;
  let log: string | null = null;
  let forward = false;
  let minScored = 0;
  let minRequired = 0;
  const count = (flag: string, raw: string | undefined): number => {
    const n = Number(raw);
    if (raw === undefined || !Number.isInteger(n) || n < 0)
      throw new Error(`${flag}: expected a count, got "${raw}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--forward') {
      forward = true;
      continue;
    }
    if (a === '--min-scored') {
      minScored = count(a, argv[++i]);
      continue;
    }
    if (a === '--min-required') {
      minRequired = count(a, argv[++i]);
      continue;
    }
    if (a === '--id' && i + 1 < argv.length) id = argv[++i]!;
    else if (a === '--json' && i + 1 < argv.length) json = argv[++i]!;
    else if (a === '--from' && i + 1 < argv.length) from = argv[++i]!;
    else if (a === '--log' && i + 1 < argv.length) log = argv[++i]!;
    else if (a === '--compare') compare = true;
    else if (!a.startsWith('-') && checkout === null) checkout = resolve(a);
    else throw new Error(`unknown option ${a}`);
  }
  if (checkout === null) throw new Error('missing CHECKOUT');
  if (!existsSync(join(checkout, 'test-engine', 'cli.mjs'))) {
    throw new Error(`${checkout} does not look like a cache-tests checkout (no test-engine/cli.mjs)`);
  }
  if (from === null && !existsSync(join(checkout, 'node_modules', 'undici'))) {
    throw new Error(`${checkout}/node_modules/undici is missing: run npm install in the checkout first`);
  }
  return { checkout, id, json, compare, from, log, forward, minScored, minRequired };
}

// ------------------------------------------------------------------- the suite's own modules

interface SuiteTest {
  readonly id: string;
  readonly name: string;
  readonly kind?: 'required' | 'optimal' | 'check';
  readonly browser_only?: boolean;
  readonly depends_on?: readonly string[];
}
interface Suite {
  readonly id: string;
  readonly name: string;
  readonly tests: readonly SuiteTest[];
}
/** What the client reports per test: `true`, or `[errorName, message]`. */
type RawResults = Record<string, true | [string, string]>;
/** The suite's result symbol: `[fontAwesome, colour, emoji]`. */
type ResultType = readonly [string, string, string];

interface SuiteModules {
  readonly suites: readonly Suite[];
  readonly resultTypes: Record<string, ResultType>;
  readonly determineTestResult: (
    suites: readonly Suite[],
    id: string,
    results: RawResults,
    honorDependencies?: boolean,
  ) => ResultType;
}

async function importFrom<T>(checkout: string, path: string): Promise<T> {
  return (await import(pathToFileURL(join(checkout, path)).href)) as T;
}

async function loadSuite(checkout: string): Promise<SuiteModules> {
  const index = await importFrom<{ default: Suite[] }>(checkout, 'tests/index.mjs');
  const results = await importFrom<Omit<SuiteModules, 'suites'>>(checkout, 'test-engine/lib/results.mjs');
  return {
    suites: index.default,
    resultTypes: results.resultTypes,
    determineTestResult: results.determineTestResult,
  };
}

type Handler = (pathSegs: string[], req: IncomingMessage, res: ServerResponse) => void;

/** The suite's origin: its handlers behind our listener on 127.0.0.1 (same dispatch as server.mjs). */
async function startSuiteOrigin(checkout: string): Promise<TestOrigin> {
  const load = async (name: string) =>
    (await importFrom<{ default: Handler }>(checkout, `test-engine/server/handle-${name}.mjs`)).default;
  const handlers: Record<string, Handler> = {
    config: await load('config'),
    test: await load('test'),
    state: await load('state'),
  };
  return startOrigin((req, res) => {
    const segs = new URL(req.url ?? '/', 'http://127.0.0.1/').pathname.split('/');
    segs.shift();
    const handler = handlers[segs.shift() ?? ''];
    if (handler === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not a test path\n');
      return;
    }
    handler(segs, req, res);
  });
}

/** Runs the suite's CLI; resolves with its stdout (JSON results, or a dump with `--id`). */
function runClient(checkout: string, base: string, id: string, forwardProxy: string | null): Promise<string> {
  return new Promise((ok, fail) => {
    const preload = forwardProxy === null ? [] : ['--import', pathToFileURL(FORWARD_PRELOAD).href];
    const child = spawn(process.execPath, ['--no-warnings', ...preload, 'test-engine/cli.mjs'], {
      cwd: checkout,
      // cli.mjs reads npm's config variables: `npm_config_*`, falling back to `npm_package_config_*`.
      env: {
        ...process.env,
        npm_config_base: base,
        npm_config_id: id,
        npm_package_config_id: id,
        ...(forwardProxy === null ? {} : { SIDECACHE_PROXY: forwardProxy, SUITE_ORIGIN: base }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), CLIENT_TIMEOUT_MS);
    child.once('error', fail);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) ok(out);
      else fail(new Error(`cache-tests client exited with ${code ?? signal}\n${out.slice(-2000)}`));
    });
  });
}

// ------------------------------------------------------------------------------- tallying

interface Tally {
  required: number;
  requiredPass: number;
  optimal: number;
  optimalPass: number;
  check: number;
  checkYes: number;
  dep: number;
  setup: number;
  harness: number;
}

const emptyTally = (): Tally => ({
  required: 0,
  requiredPass: 0,
  optimal: 0,
  optimalPass: 0,
  check: 0,
  checkYes: 0,
  dep: 0,
  setup: 0,
  harness: 0,
});

function tally(m: SuiteModules, tests: readonly SuiteTest[], results: RawResults): Tally {
  const t = emptyTally();
  const rt = m.resultTypes;
  for (const test of tests) {
    if (test.browser_only) continue;
    const kind = test.kind ?? 'required';
    const r = m.determineTestResult(m.suites, test.id, results);
    if (kind === 'required') t.required++;
    else if (kind === 'optimal') t.optimal++;
    else t.check++;
    if (r === rt['pass'] || r === rt['yes']) {
      if (kind === 'required') t.requiredPass++;
      else if (kind === 'optimal') t.optimalPass++;
      else t.checkYes++;
    } else if (r === rt['dependency_fail']) t.dep++;
    else if (r === rt['setup_fail'] || r === rt['retry']) t.setup++;
    else if (r === rt['harness_fail']) t.harness++;
  }
  return t;
}

function pad(s: string | number, n: number): string {
  const v = String(s);
  return v.length >= n ? v : v + ' '.repeat(n - v.length);
}

/** Scored (required + optimal) and required passes over every section. */
function totals(m: SuiteModules, results: RawResults): { scored: number; required: number } {
  let scored = 0;
  let required = 0;
  for (const suite of m.suites) {
    const t = tally(m, suite.tests, results);
    scored += t.requiredPass + t.optimalPass;
    required += t.requiredPass;
  }
  return { scored, required };
}

function formatSections(m: SuiteModules, results: RawResults): string {
  const lines = [
    `${pad('section', 20)} ${pad('required', 10)} ${pad('optimal', 10)} ${pad('check(yes)', 11)} ${pad('dep', 4)} ${pad('setup', 6)} harness`,
  ];
  const total = emptyTally();
  for (const suite of m.suites) {
    const t = tally(m, suite.tests, results);
    for (const k of Object.keys(total) as (keyof Tally)[]) total[k] += t[k];
    if (t.required + t.optimal + t.check === 0) continue;
    lines.push(row(suite.id, t));
  }
  lines.push(row('TOTAL', total));
  lines.push(
    `scored (required + optimal) passed: ${total.requiredPass + total.optimalPass}/${total.required + total.optimal}; ` +
      `required passed: ${total.requiredPass}/${total.required}`,
  );
  return lines.join('\n');
}

function row(name: string, t: Tally): string {
  return (
    `${pad(name, 20)} ${pad(`${t.requiredPass}/${t.required}`, 10)} ${pad(`${t.optimalPass}/${t.optimal}`, 10)} ` +
    `${pad(`${t.checkYes}/${t.check}`, 11)} ${pad(t.dep, 4)} ${pad(t.setup, 6)} ${t.harness}`
  );
}

function formatFailures(m: SuiteModules, results: RawResults): string {
  const lines: string[] = [];
  for (const suite of m.suites) {
    for (const test of suite.tests) {
      if (test.browser_only || test.kind === 'check') continue;
      const r = m.determineTestResult(m.suites, test.id, results);
      if (r === m.resultTypes['pass']) continue;
      const raw = results[test.id];
      const why = raw === undefined ? 'not run' : raw === true ? 'dependency failed' : `${raw[0]}: ${raw[1]}`;
      lines.push(`${r[2]} ${suite.id} ${test.kind ?? 'required'} ${test.id}: ${why}`);
    }
  }
  return lines.join('\n');
}

function formatComparison(m: SuiteModules, checkout: string, results: RawResults): string {
  const lines = [`${pad('cache', 16)} ${pad('scored', 8)} required`];
  const line = (name: string, r: RawResults): string => {
    const { scored, required } = totals(m, r);
    return `${pad(name, 16)} ${pad(scored, 8)} ${required}`;
  };
  lines.push(line('sidecache', results));
  for (const ref of REFERENCES) {
    const file = join(checkout, 'results', `${ref}.json`);
    if (existsSync(file)) lines.push(line(ref, JSON.parse(readFileSync(file, 'utf8')) as RawResults));
  }
  return lines.join('\n');
}

function report(suite: SuiteModules, opts: Options, results: RawResults): void {
  process.stdout.write(`${formatSections(suite, results)}\n\nNot passed (required and optimal):\n`);
  process.stdout.write(`${formatFailures(suite, results)}\n`);
  if (opts.compare) process.stdout.write(`\n${formatComparison(suite, opts.checkout, results)}\n`);
}

// ------------------------------------------------------------------------------------ main

/** Whether the run reached `--min-scored` and `--min-required`; says so on stderr when not. */
function meetsMinimum(suite: SuiteModules, opts: Options, results: RawResults): boolean {
  const { scored, required } = totals(suite, results);
  if (scored >= opts.minScored && required >= opts.minRequired) return true;
  process.stderr.write(
    `cache-tests: scored ${scored} (at least ${opts.minScored} expected), required ${required} (at least ${opts.minRequired} expected)\n`,
  );
  return false;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`cache-tests: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const suite = await loadSuite(opts.checkout);
  if (opts.from !== null) {
    const saved = JSON.parse(readFileSync(opts.from, 'utf8')) as RawResults;
    report(suite, opts, saved);
    return meetsMinimum(suite, opts, saved) ? 0 : 1;
  }
  const origin = await startSuiteOrigin(opts.checkout);
  const originPort = origin.port;
  const sidecache = await startTestSidecache(
    {
      admin: { enabled: false },
      log: { level: opts.log === null ? 'silent' : 'info' },
      // Forward mode: the same route without a path prefix, reached by absolute-form requests.
      routes: [
        {
          name: 'origin',
          origin: `http://127.0.0.1:${originPort}`,
          ...(opts.forward ? { prefix: false } : {}),
        },
      ],
    },
    opts.log === null ? {} : { logger: createLogger('info', createWriteStream(opts.log)) },
  );
  const proxy = sidecache.url;
  const base = opts.forward ? `http://127.0.0.1:${originPort}` : `${proxy}/origin`;
  try {
    process.stdout.write(`mode: ${opts.forward ? 'forward proxy' : 'reverse proxy'}\n`);
    const out = await runClient(opts.checkout, base, opts.id, opts.forward ? proxy : null);
    if (opts.id !== '') {
      process.stdout.write(out);
      return 0;
    }
    const results = JSON.parse(out) as RawResults;
    if (opts.json !== null) writeFileSync(opts.json, `${JSON.stringify(results, null, 2)}\n`);
    report(suite, opts, results);
    return meetsMinimum(suite, opts, results) ? 0 : 1;
  } finally {
    await sidecache.close();
    await origin.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cache-tests: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
