#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --optimize-for-size --liftoff-only --no-allocation-site-pretenuring --no-concurrent-recompilation
/**
 * sidecache's command line: `serve` (the default), `check-config`, `report` and `ca`.
 * Flags, environment (SIDECACHE_*) and the YAML file are merged by config/load.ts.
 */
import process from 'node:process';
import type { Argv } from 'yargs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { runCacheLs } from './commands/cache-ls.js';
import { adminBaseUrl, reportCommand, reportCommandOptions, reportOnlyOptions } from './commands/report.js';
import { type CliOverrides, DEFAULT_CONFIG_FILE, loadConfig } from './config/load.js';
import { checkMemoryFit, explainMemory, memoryLimitFile, readMemoryLimit } from './config/memory-limit.js';
import { compileRuntime, type Runtime } from './config/runtime.js';
import { createDnsCache } from './dns/index.js';
import { SidecacheError } from './errors.js';
import { explainReachability } from './guard/reachability.js';
import { createLogger, readableLogs } from './log.js';
import { startSidecache } from './server.js';
import { constraintsFor, describeConstraints } from './tls/name-constraints.js';
import { caDirOf, caOptionsOf, caWarnings } from './tunnel/setup.js';
import { SIDECACHE_VERSION } from './version.js';

interface CommonArgs {
  config?: string | undefined;
  listen?: string | undefined;
  'admin-listen'?: string | undefined;
  route?: string[] | undefined;
  allow?: string[] | undefined;
  'ca-file'?: string | undefined;
  'log-level'?: string | undefined;
  dns?: string[] | undefined;
  'dns-mode'?: string | undefined;
  cache?: boolean | undefined;
  intercept?: string[] | undefined;
  'ca-dir'?: string | undefined;
  redis?: string | undefined;
  memcached?: string[] | undefined;
  acceptors?: number | undefined;
  advisor?: boolean | undefined;
}

const CONFIG_OPTION = {
  alias: 'c',
  type: 'string',
  describe: 'YAML config file (default: SIDECACHE_CONFIG, else the embedded config/default.yaml)',
} as const;

const CA_DIR_OPTION = {
  type: 'string',
  describe: 'Directory of the interception CA (default .sidecache/ca)',
} as const;

/** The options of `serve` and `check-config`: every config source a flag can set. */
function withCommonOptions<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y
    .option('config', CONFIG_OPTION)
    .option('listen', { type: 'string', describe: 'Proxy listener HOST:PORT (default 127.0.0.1:8080)' })
    .option('admin-listen', { type: 'string', describe: 'Admin listener HOST:PORT (default 127.0.0.1:9090)' })
    .option('route', {
      type: 'string',
      array: true,
      describe: 'NAME=ORIGIN: serve ORIGIN under /NAME/ (repeatable)',
    })
    .option('allow', {
      type: 'string',
      array: true,
      describe:
        'Host the forward proxy may reach, or an address block it may connect to (10.0.0.0/8) (repeatable)',
    })
    .option('ca-file', { type: 'string', describe: 'Extra CA (PEM) trusted for upstream TLS' })
    .option('dns', {
      type: 'string',
      array: true,
      describe: 'Nameserver HOST[:PORT] for upstream names (repeatable; implies --dns-mode udp)',
    })
    .option('dns-mode', { type: 'string', describe: 'system | udp | doh (default system)' })
    .option('intercept', {
      type: 'string',
      array: true,
      describe:
        "Decrypt CONNECT tunnels to HOST[:PORT] with sidecache's CA and keep HOST warm (repeatable; HOST must be allowed; port 443 is warmed when none is given)",
    })
    .option('ca-dir', CA_DIR_OPTION)
    .option('log-level', {
      type: 'string',
      describe: 'fatal | error | warn | info | debug | trace | silent',
    })
    .option('cache', {
      type: 'boolean',
      describe: 'Cache responses (--no-cache turns the cache off; env SIDECACHE_CACHE=off)',
    })
    .option('redis', {
      type: 'string',
      describe: 'Redis shared cache tier, redis[s]://[:password@]host:port (env SIDECACHE_REDIS_URL)',
    })
    .option('memcached', {
      type: 'string',
      array: true,
      describe:
        'memcached shared cache tier HOST:PORT, repeatable (env SIDECACHE_MEMCACHED, comma-separated)',
    })
    .option('acceptors', {
      type: 'number',
      describe:
        'Listening handles for the proxy listener, 1 to 64 (proxy.acceptors; env SIDECACHE_ACCEPTORS)',
    })
    .option('advisor', {
      type: 'boolean',
      describe: 'Run the policy advisor (--no-advisor turns it off; advisor.enabled)',
    }) as Argv<T & CommonArgs>;
}

function runtimeFrom(args: CommonArgs): Runtime {
  const argv: CliOverrides = {
    listen: args.listen,
    adminListen: args['admin-listen'],
    route: args.route,
    allow: args.allow,
    caFile: args['ca-file'],
    logLevel: args['log-level'],
    dns: args.dns,
    dnsMode: args['dns-mode'],
    cache: args.cache,
    intercept: args.intercept,
    caDir: args['ca-dir'],
    redis: args.redis,
    memcached: args.memcached,
    acceptors: args.acceptors,
    advisor: args.advisor,
  };
  const { config } = loadConfig({ file: args.config, env: process.env, argv });
  return compileRuntime(config);
}

function fail(err: unknown): never {
  if (err instanceof SidecacheError) {
    process.stderr.write(`sidecache: ${err.code}\n${err.message.replace(/^/gm, '  ')}\n`);
  } else {
    process.stderr.write(`sidecache: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(2);
}

/** How long past `shutdown.graceMs` the process waits for the shutdown to settle before exiting. */
const BACKSTOP_MS = 500;

async function serve(args: CommonArgs): Promise<void> {
  let runtime: Runtime;
  try {
    runtime = runtimeFrom(args);
    // Refuse to start when the cache cannot fit beside the process's own needs in the container.
    const limitFile = memoryLimitFile(process.env);
    checkMemoryFit(runtime.config, readMemoryLimit(limitFile), limitFile);
  } catch (err) {
    fail(err);
  }
  const logger = createLogger(
    runtime.config.log.level,
    undefined,
    undefined,
    readableLogs(runtime.config.log.format, process.stdout.isTTY === true),
  );
  let instance: Awaited<ReturnType<typeof startSidecache>>;
  try {
    instance = await startSidecache(runtime, { logger, loadRuntime: () => runtimeFrom(args) });
  } catch (err) {
    fail(err);
  }
  let signals = 0;
  const stop = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      logger.flush();
      process.exit(1);
    }
    const { graceMs } = instance.runtime().config.shutdown;
    logger.info({ signal, graceMs }, 'shutting down');
    // The deadline holds even if a step of the shutdown never settles: then the process just ends.
    setTimeout(() => {
      logger.error({ graceMs }, 'shutdown deadline passed: exiting now');
      logger.flush();
      process.exit(1);
    }, graceMs + BACKSTOP_MS).unref();
    instance.close(graceMs).then(
      ({ forced }) => {
        logger.flush();
        process.exit(forced ? 1 : 0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Zero-downtime reload: the same sources as at start (file < environment < flags), read again.
  process.on('SIGHUP', () => {
    logger.info({ signal: 'SIGHUP' }, 'reloading the config');
    instance.reload(() => runtimeFrom(args));
  });
}

/** Longest check-config waits for one name to resolve. */
const CHECK_RESOLVE_TIMEOUT_MS = 2_000;

/**
 * The interception CA as it is on disk (nothing is made here), against the intercept list: one
 * line for stdout; warnings go to stderr. Throws what the first start would refuse ("*" under
 * tls.caNameConstraints).
 */
async function explainCa(runtime: Runtime): Promise<string> {
  if (runtime.config.intercept.length === 0) return '';
  const { readCaCertificate } = await import('./tls/ca.js'); // x509 code: only when intercepting
  const ca = readCaCertificate(caDirOf(runtime));
  if (ca === null) {
    const { nameConstraints } = caOptionsOf(runtime);
    if (nameConstraints) constraintsFor(nameConstraints);
    return `\ninterception CA: none yet in ${caDirOf(runtime)} (made on the first start)`;
  }
  for (const warning of caWarnings(runtime, ca)) process.stderr.write(`warning: ${warning}\n`);
  return (
    `\ninterception CA: ${ca.certPath}, expires ${new Date(ca.notAfter).toISOString()}, ` +
    (ca.constraints ? `Name Constraints: ${describeConstraints(ca.constraints)}` : 'no Name Constraints')
  );
}

async function checkConfig(args: CommonArgs): Promise<void> {
  let runtime: Runtime;
  let caReport = '';
  let memory = '';
  try {
    runtime = runtimeFrom(args);
    caReport = await explainCa(runtime);
    const limitFile = memoryLimitFile(process.env);
    memory = `\n${explainMemory(runtime.config, readMemoryLimit(limitFile), limitFile)}`;
    checkMemoryFit(runtime.config, readMemoryLimit(limitFile), limitFile);
  } catch (err) {
    fail(err);
  }
  const dns = createDnsCache(runtime.config.dns);
  const reach = await explainReachability(
    runtime,
    async (host) => (await dns.resolve(host)).map((a) => a.address),
    CHECK_RESOLVE_TIMEOUT_MS,
  );
  await dns.close();
  const resolved = reach.length > 0 ? `\nresolved from here:\n${reach.map((l) => `  ${l}`).join('\n')}` : '';
  // A system lookup still running after its timeout must not hold the process.
  process.stdout.write(`config OK\n${runtime.explain()}${memory}${resolved}${caReport}\n`, () =>
    process.exit(0),
  );
}

/** Prints where the interception CA certificate is and its PEM, making the CA if there is none. */
async function printCa(args: CommonArgs): Promise<void> {
  try {
    const runtime = runtimeFrom(args);
    const { loadOrCreateCa } = await import('./tls/ca.js'); // x509 code: only for this command
    const ca = await loadOrCreateCa(caDirOf(runtime), caOptionsOf(runtime));
    process.stderr.write(
      `${ca.created ? 'created' : 'using'} the interception CA in ${caDirOf(runtime)}\n` +
        'trust it: curl --cacert, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE or SSL_CERT_FILE (docs/https.md)\n',
    );
    process.stdout.write(`${ca.certPath}\n${ca.certPem}`);
  } catch (err) {
    fail(err);
  }
}

interface AdminArgs {
  admin?: string | undefined;
  config?: string | undefined;
  'admin-listen'?: string | undefined;
  token?: string | undefined;
}

interface ReportArgs extends AdminArgs {
  json: boolean;
  'suggest-config'?: string | undefined;
  check?: boolean | undefined;
  'min-hit-ratio'?: number | undefined;
  'max-p99'?: number | undefined;
  'check-route'?: string[] | undefined;
}

/** The options of commands that read a running instance's admin listener (report, cache ls). */
function withAdminOptions<T>(y: Argv<T>) {
  return y
    .options(reportCommandOptions)
    .option('config', {
      ...CONFIG_OPTION,
      describe: `${CONFIG_OPTION.describe}; its admin.listen and admin.token are used without --admin`,
    })
    .option('admin-listen', {
      type: 'string',
      describe: 'The admin listener HOST:PORT, as given to serve (env SIDECACHE_ADMIN_LISTEN)',
    })
    .conflicts('admin', ['config', 'admin-listen']);
}

/**
 * The admin listener a command reads: `--admin URL` when given; else the one `serve` would use,
 * from the same sources (the config file, SIDECACHE_ADMIN_LISTEN, --admin-listen), and its token.
 */
function adminOf(args: AdminArgs, command: string): { admin: string; token: string | undefined } {
  let admin = args.admin;
  let token = args.token;
  if (admin === undefined) {
    let runtime: Runtime;
    try {
      runtime = runtimeFrom({ config: args.config, 'admin-listen': args['admin-listen'] });
    } catch (err) {
      fail(err);
    }
    if (runtime.adminListen === null) {
      process.stderr.write(
        `sidecache ${command}: the admin listener is off in this config (admin.enabled: false); give --admin URL\n`,
      );
      process.exit(1);
    }
    admin = adminBaseUrl(runtime.adminListen);
    token ??= runtime.config.admin.token ?? undefined;
  }
  return { admin, token };
}

async function report(args: ReportArgs): Promise<void> {
  const { admin, token } = adminOf(args, 'report');
  const suggest = args['suggest-config'];
  await reportCommand({
    admin,
    json: args.json,
    token,
    // The base of the suggested config is the file serve reads from the same sources.
    suggestConfig:
      suggest === undefined
        ? undefined
        : {
            file: suggest,
            baseFile: args.config ?? (process.env.SIDECACHE_CONFIG?.trim() || DEFAULT_CONFIG_FILE),
          },
    check: args.check
      ? { minHitRatio: args['min-hit-ratio'], maxP99Seconds: args['max-p99'], routes: args['check-route'] }
      : undefined,
  });
}

/** `sidecache cache ls`: prints the listing; exits 1 when the instance cannot be read. */
async function cacheLs(
  args: ReportArgs & { route?: string | undefined; prefix?: string | undefined; limit?: number | undefined },
): Promise<void> {
  const { admin, token } = adminOf(args, 'cache ls');
  try {
    process.stdout.write(
      await runCacheLs({
        admin,
        token: token ?? (process.env.SIDECACHE_ADMIN_TOKEN?.trim() || undefined),
        json: args.json,
        route: args.route,
        prefix: args.prefix,
        limit: args.limit,
      }),
    );
  } catch (err) {
    process.stderr.write(`sidecache cache ls: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}

await yargs(hideBin(process.argv))
  .scriptName('sidecache')
  .usage('$0 [command] [options]')
  .command(['serve', '$0'], 'Start the proxy (and the admin listener)', withCommonOptions, (args) =>
    serve(args as unknown as CommonArgs),
  )
  .command('check-config', 'Validate the configuration and explain it', withCommonOptions, (args) =>
    checkConfig(args as unknown as CommonArgs),
  )
  .command(
    'report',
    'Summarise a running instance: hits, time saved, slow origins, suggested cache policy',
    (y) => withAdminOptions(y).options(reportOnlyOptions),
    (args) => report(args as unknown as ReportArgs),
  )
  .command('cache', 'Inspect the cache of a running instance', (y) =>
    y
      .command(
        'ls',
        'List what is cached: URL, variants, size, age, freshness left, hits',
        (ls) =>
          withAdminOptions(ls)
            .option('json', { type: 'boolean', default: false, describe: 'Print the listing as JSON' })
            .option('route', { type: 'string', describe: "Only URLs under this route's origin" })
            .option('prefix', {
              type: 'string',
              describe: 'Only URLs starting with this, e.g. https://api.github.com/repos/',
            })
            .option('limit', { type: 'number', describe: 'At most this many URLs, 1 to 1000 (default 100)' }),
        (args) => cacheLs(args as unknown as Parameters<typeof cacheLs>[0]),
      )
      .demandCommand(1, 'say what to do: sidecache cache ls'),
  )
  .command(
    'ca',
    'Print the interception CA certificate path and PEM (made on first use)',
    (y) => y.option('config', CONFIG_OPTION).option('ca-dir', CA_DIR_OPTION),
    (args) => printCa(args as unknown as CommonArgs),
  )
  .env('SIDECACHE_NO_YARGS_ENV_')
  .strict()
  .help()
  .alias('help', 'h')
  .version(SIDECACHE_VERSION)
  .fail((msg, err) => {
    if (err) fail(err);
    process.stderr.write(`sidecache: ${msg}\nRun "sidecache --help" for usage.\n`);
    process.exit(2);
  })
  .parseAsync();
