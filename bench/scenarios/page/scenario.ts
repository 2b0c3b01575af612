// Issue 10, reproduced: the overview page of ./app.py (20 sequential API calls, a new
// connection each) against the fake world of ./world.ts, rendered `pages` times in each mode:
//   direct     the app resolves every name at the slow nameserver and connects to each origin;
//   intercept  HTTPS_PROXY at sidecache, which intercepts TLS (its own CA) and serves each call
//              from its cache or a warm pool, resolving with `--dns` at the same slow nameserver;
//   routes     the app's base URLs on sidecache's reverse routes (plain HTTP on loopback).
//   intercept-flags  as intercept, with sidecache started from flags only (`--intercept HOST:PORT`
//              per API, no routes, no cache policies): keep-warm of intercepted hosts; keep-warm on only.
//   advised    the policy advisor's loop (issue 22): `pages` pages through reverse routes given as
//              flags only (`--route NAME=ORIGIN`, no cache policies), then `sidecache report
//              --suggest-config FILE`, then a sidecache serving FILE: its first page and `pages` warm
//              pages. Keep-warm on only.
// Each proxied mode starts its own sidecache, once per keep-warm setting (`keepWarm`: on = the
// defaults of upstream.warm, off = no connection opened ahead of need), waits for /readyz (as an
// orchestrator would), and measures the first page (cache cold; connections and DNS cold unless
// kept warm), pages after a purge of the cache (pools and DNS warm), pages on a warm cache, and
// pages after an idle period (`idleMs`) longer than the origins' keep-alive idle timeout
// (`originIdleMs`) and the DNS TTL (`dnsTtlS`, raised to sidecache's dns.minTtlMs), cache purged
// first: a scaled-down "page after 5 minutes idle". What reached the origins is counted there, per
// page. See docs/BENCHMARKS.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from '../../../test/helpers/ports.js';
import { runCli, type SidecacheProcess, spawnSidecache } from '../../../test/helpers/sidecache.js';
import { API_NAMES, CREDENTIALS, HOSTNAMES, type OriginRequest, startWorld, type World } from './world.js';

export const PYTHON = '/usr/bin/python3';
const APP = fileURLToPath(new URL('./app.py', import.meta.url));

export const MODES = ['direct', 'intercept', 'routes', 'intercept-flags', 'advised'] as const;
export type Mode = (typeof MODES)[number];
export const KEEP_WARM = ['off', 'on'] as const;
export type KeepWarm = (typeof KEEP_WARM)[number];

export interface ScenarioOptions {
  readonly pages: number;
  readonly dnsDelayMs: number;
  readonly handshakeDelayMs: number;
  readonly thinkMinMs: number;
  readonly thinkMaxMs: number;
  readonly modes: readonly Mode[];
  /** Keep-warm settings to run each proxied mode with. */
  readonly keepWarm: readonly KeepWarm[];
  /** Idle time before each "after idle" page; 0: no such pages. */
  readonly idleMs: number;
  readonly idlePages: number;
  readonly originIdleMs: number;
  readonly dnsTtlS: number;
}

export const DEFAULT_OPTIONS: ScenarioOptions = {
  pages: 5,
  dnsDelayMs: 250,
  handshakeDelayMs: 20,
  thinkMinMs: 30,
  thinkMaxMs: 80,
  modes: MODES,
  keepWarm: KEEP_WARM,
  idleMs: 7_000,
  idlePages: 2,
  originIdleMs: 5_000,
  dnsTtlS: 1,
};

type Phase = 'direct' | 'flags' | 'first' | 'purged' | 'warm' | 'idle';

export interface Page {
  readonly mode: Mode;
  readonly keepWarm: KeepWarm | null;
  readonly phase: Phase;
  readonly ms: number;
  readonly sha256: string;
  readonly apiCalls: number;
  readonly originRequests: readonly OriginRequest[];
  readonly handshakes: number;
  readonly dnsQueries: number;
  readonly githubUnits: number;
  readonly posts: number;
  /** Σ (think time + one warm round trip) over the requests that reached an origin. */
  readonly floorMs: number;
}

export interface Row {
  readonly label: string;
  readonly mode: Mode;
  readonly keepWarm: KeepWarm | null;
  readonly phase: Phase;
  readonly pages: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly speedup: number;
  readonly originRequests: number;
  readonly handshakes: number;
  readonly githubUnits: number;
  readonly dnsQueries: number;
  readonly floorMs: number;
  readonly xFloor: number;
}

export interface ScenarioResult {
  readonly options: ScenarioOptions;
  readonly warmRoundTripMs: number;
  readonly rows: readonly Row[];
  readonly pages: readonly Page[];
  /** Correctness failures (empty when every check passed). */
  readonly failures: readonly string[];
}

interface RunningApp {
  readonly url: string;
  stop(): Promise<void>;
}

async function startApp(env: Record<string, string>): Promise<RunningApp> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON, [APP], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      HOST: '127.0.0.1',
      PORT: String(port),
      GITHUB_TOKEN: CREDENTIALS.githubToken,
      STRIPE_API_KEY: CREDENTIALS.stripeKey,
      USERS_API_KEY: CREDENTIALS.usersApiKey,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`app.py exited with ${child.exitCode}:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`app.py did not answer in 20 s:\n${output}`);
    await sleep(50);
  }
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/**
 * The sidecache config of the scenario: one route per API with the cache policy that is right for
 * it, interception of the three names, DNS at the slow nameserver, the origins' CA trusted upstream.
 */
export function sidecacheConfig(
  world: World,
  caDir: string,
  keepWarm: KeepWarm = 'on',
): Record<string, unknown> {
  return {
    log: { level: 'info', access: false },
    routes: [
      {
        name: 'github',
        origin: world.urls.github,
        // `private, max-age=60` + ETag to a token: stored per token, revalidated by ETag (a 304
        // costs no rate limit). Accept picks the media type, so it is part of the key.
        cache: { storePrivate: true, keyHeaders: ['accept'] },
      },
      {
        name: 'stripe',
        origin: world.urls.stripe,
        // `no-cache, no-store` on everything: opt in for the catalogue only, keyed by the secret
        // key (Authorization); the balance stays live.
        cache: {
          storePrivate: true,
          keyHeaders: ['stripe-account', 'stripe-version'],
          paths: ['/v1/plans', '/v1/products', '/v1/prices'].map((prefix) => ({
            prefix,
            ttlMs: 300_000,
            ignoreNoStore: true,
          })),
        },
      },
      {
        name: 'users',
        origin: world.urls.users,
        // No cache headers: a short lifetime, keyed by the API key. The POST is never cached and
        // invalidates the custom data it saves.
        cache: { ttlMs: 10_000, credentialHeaders: ['x-api-key'] },
      },
    ],
    intercept: API_NAMES.map((api) => HOSTNAMES[api]),
    // The origins resolve to 127.0.0.1: listed explicitly so that a guard refusing loopback and
    // private resolved addresses (unless allowed by address) still admits them.
    allow: ['127.0.0.1'],
    dns: { mode: 'udp', servers: [world.dns.address] },
    upstream: {
      caFile: world.caFile,
      // on: upstream.warm's defaults; off: nothing opened before a request needs it.
      ...(keepWarm === 'off' ? { warm: { connections: 0, minIdle: 0 } } : {}),
    },
    tls: { caDir },
  };
}

/** `intercept-flags`: sidecache from flags only, interception of the three hosts on their ports, no routes. */
export function sidecacheFlags(world: World, caDir: string): string[] {
  return [
    ...API_NAMES.flatMap((api) => [
      '--intercept',
      `${world.hosts[api].name}:${world.hosts[api].port}`,
      '--allow',
      world.hosts[api].name,
    ]),
    ...['--allow', '127.0.0.1', '--dns', world.dns.address, '--ca-file', world.caFile, '--ca-dir', caDir],
  ];
}

/** `advised`, before the advice: one reverse route per API from flags, no cache policy, no config file. */
export function sidecacheRouteFlags(world: World): string[] {
  return [
    ...API_NAMES.flatMap((api) => ['--route', `${api}=${world.urls[api]}`]),
    ...advisedCommonFlags(world),
  ];
}

/** What `advised` gives `serve` besides its routes (a suggested config does not carry flags). */
function advisedCommonFlags(world: World): string[] {
  return ['--allow', '127.0.0.1', '--dns', world.dns.address, '--ca-file', world.caFile];
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
/** Nearest-rank p90 (with 5 pages, the slowest). */
const p90 = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(0.9 * s.length) - 1)] ?? Number.NaN;
};

export async function runScenario(
  opts: ScenarioOptions,
  progress: (line: string) => void = () => {},
): Promise<ScenarioResult> {
  const world = await startWorld(opts);
  const work = mkdtempSync(join(tmpdir(), 'sidecache-scenario-'));
  const pages: Page[] = [];
  const failures: string[] = [];
  let sc: SidecacheProcess | null = null;
  let app: RunningApp | null = null;
  try {
    const rtt = await world.warmRoundTripMs(20);

    const renderPage = async (mode: Mode, phase: Phase, keepWarm: KeepWarm | null): Promise<void> => {
      if (!app) throw new Error('no app');
      const before = world.counts();
      const t0 = performance.now();
      const res = await fetch(`${app.url}/overview`);
      const body = await res.text();
      const ms = performance.now() - t0;
      const after = world.counts();
      if (res.status !== 200) {
        failures.push(`${mode}/${phase}: the page answered ${res.status}: ${body.slice(0, 500)}`);
      }
      const originRequests = world.log.slice(before.requests, after.requests);
      const page: Page = {
        mode,
        keepWarm,
        phase,
        ms,
        sha256: createHash('sha256').update(body).digest('hex'),
        apiCalls: Number(res.headers.get('x-api-calls') ?? 0),
        originRequests,
        handshakes: after.handshakes - before.handshakes,
        dnsQueries: after.dnsQueries - before.dnsQueries,
        githubUnits: after.githubUnits - before.githubUnits,
        posts: after.posts - before.posts,
        floorMs: originRequests.reduce((sum, r) => sum + r.thinkMs + rtt, 0),
      };
      pages.push(page);
      progress(
        `  ${mode.padEnd(9)} ${(keepWarm ?? '').padEnd(3)} ${phase.padEnd(6)} ${ms.toFixed(0).padStart(6)} ms  ` +
          `${originRequests.length} origin requests, ${page.handshakes} handshakes`,
      );
    };

    const purgeCache = async (mode: Mode): Promise<void> => {
      if (!sc) throw new Error('no sidecache');
      for (const api of API_NAMES) {
        // Without routes (intercept-flags), by the origin's URL prefix.
        const what =
          mode === 'intercept-flags' ? `prefix=${encodeURIComponent(`${world.urls[api]}/`)}` : `route=${api}`;
        const res = await fetch(`${sc.adminUrl}/purge?${what}`, { method: 'POST' });
        if (!res.ok) throw new Error(`purge ${api}: ${res.status} ${await res.text()}`);
      }
    };

    const waitReady = async (): Promise<void> => {
      if (!sc) throw new Error('no sidecache');
      for (let i = 0; i < 400; i++) {
        if ((await fetch(`${sc.adminUrl}/readyz`)).ok) return;
        await sleep(50);
      }
      throw new Error('sidecache not ready in 20 s');
    };

    for (const mode of opts.modes) {
      if (mode === 'direct') {
        app = await startApp({
          GITHUB_API: world.urls.github,
          STRIPE_API: world.urls.stripe,
          USERS_API: `${world.urls.users}/api`,
          REQUESTS_CA_BUNDLE: world.caFile,
          DNS_SERVER: world.dns.address,
        });
        for (let i = 0; i < opts.pages; i++) await renderPage(mode, 'direct', null);
        await app.stop();
        app = null;
        continue;
      }
      if (mode === 'advised') {
        const routeEnv = (base: string) => ({
          DNS_SERVER: world.dns.address,
          GITHUB_API: `${base}/github`,
          STRIPE_API: `${base}/stripe`,
          USERS_API: `${base}/users/api`,
        });
        sc = await spawnSidecache(sidecacheRouteFlags(world));
        app = await startApp(routeEnv(sc.url));
        await waitReady();
        for (let i = 0; i < opts.pages; i++) await renderPage(mode, 'flags', 'on');
        const suggested = join(work, 'suggested.yaml');
        const wrote = await runCli(['report', '--admin', sc.adminUrl, '--suggest-config', suggested], {
          timeoutMs: 30_000,
        });
        if (wrote.code !== 0) throw new Error(`report --suggest-config failed:\n${wrote.stderr}`);
        progress(wrote.stdout.trimEnd().replace(/^/gm, '    '));
        await app.stop();
        app = null;
        await sc.stop();
        sc = null;
        sc = await spawnSidecache(['--config', suggested, ...advisedCommonFlags(world)]);
        app = await startApp(routeEnv(sc.url));
        await waitReady();
        await renderPage(mode, 'first', 'on');
        for (let i = 0; i < opts.pages; i++) await renderPage(mode, 'warm', 'on');
        await app.stop();
        app = null;
        await sc.stop();
        sc = null;
        continue;
      }
      // Flags only: keep-warm has its defaults (on).
      for (const keepWarm of mode === 'intercept-flags'
        ? opts.keepWarm.filter((k) => k === 'on')
        : opts.keepWarm) {
        const caDir = join(work, `ca-${mode}-${keepWarm}`);
        const configFile = join(work, `sidecache-${mode}-${keepWarm}.yaml`);
        writeFileSync(configFile, stringify(sidecacheConfig(world, caDir, keepWarm)));
        sc = await spawnSidecache(
          mode === 'intercept-flags' ? sidecacheFlags(world, caDir) : ['--config', configFile],
        );
        const common = { REQUESTS_CA_BUNDLE: join(caDir, 'ca.pem'), DNS_SERVER: world.dns.address };
        app = await startApp(
          mode !== 'routes'
            ? {
                ...common,
                GITHUB_API: world.urls.github,
                STRIPE_API: world.urls.stripe,
                USERS_API: `${world.urls.users}/api`,
                HTTPS_PROXY: sc.url,
              }
            : {
                ...common,
                GITHUB_API: `${sc.url}/github`,
                STRIPE_API: `${sc.url}/stripe`,
                USERS_API: `${sc.url}/users/api`,
              },
        );
        await waitReady();
        await renderPage(mode, 'first', keepWarm);
        for (let i = 0; i < opts.pages; i++) {
          await purgeCache(mode);
          await renderPage(mode, 'purged', keepWarm);
        }
        for (let i = 0; i < opts.pages; i++) await renderPage(mode, 'warm', keepWarm);
        for (let i = 0; opts.idleMs > 0 && i < opts.idlePages; i++) {
          await purgeCache(mode);
          await sleep(opts.idleMs);
          await renderPage(mode, 'idle', keepWarm);
        }
        await app.stop();
        app = null;
        await sc.stop();
        sc = null;
      }
    }

    // Correctness: one page content everywhere, 20 calls, the POST reached the origin on every
    // page, and every origin request of a proxied page came through sidecache.
    const reference = pages[0]?.sha256;
    for (const [i, p] of pages.entries()) {
      const where = `${p.mode}/${p.phase} page ${i + 1}`;
      if (p.sha256 !== reference) failures.push(`${where}: content differs from the first page`);
      if (p.apiCalls !== 20) failures.push(`${where}: ${p.apiCalls} API calls, expected 20`);
      if (p.posts !== 1) failures.push(`${where}: ${p.posts} POSTs reached the user service, expected 1`);
      const proxied = p.mode !== 'direct';
      for (const r of p.originRequests) {
        if (proxied !== /sidecache/.test(r.via ?? '')) {
          failures.push(`${where}: ${r.method} ${r.path} ${proxied ? 'bypassed' : 'went through'} sidecache`);
        }
      }
    }

    const directMedian = median(pages.filter((p) => p.mode === 'direct').map((p) => p.ms));
    const rows: Row[] = [];
    const labels: Record<Phase, string> = {
      direct: 'direct (new connection + DNS per call)',
      flags: 'flags-only routes, advisor watching',
      first: 'first page after start',
      purged: 'cache purged (pools, DNS warm)',
      warm: 'warm cache',
      idle: 'page after idle (cache purged)',
    };
    for (const mode of opts.modes) {
      for (const keepWarm of mode === 'direct' ? [null] : opts.keepWarm) {
        for (const phase of ['direct', 'flags', 'first', 'purged', 'warm', 'idle'] as const) {
          const ps = pages.filter((p) => p.mode === mode && p.phase === phase && p.keepWarm === keepWarm);
          if (ps.length === 0) continue;
          const per = (f: (p: Page) => number) => ps.reduce((s, p) => s + f(p), 0) / ps.length;
          const medianMs = median(ps.map((p) => p.ms));
          const floorMs = median(ps.map((p) => p.floorMs));
          rows.push({
            label:
              mode === 'direct'
                ? labels.direct
                : mode === 'advised' && phase !== 'flags'
                  ? `advised, suggested config: ${labels[phase]}`
                  : `${mode}, keep-warm ${keepWarm}: ${labels[phase]}`,
            mode,
            keepWarm,
            phase,
            pages: ps.length,
            medianMs,
            p90Ms: p90(ps.map((p) => p.ms)),
            speedup: directMedian / medianMs,
            originRequests: per((p) => p.originRequests.length),
            handshakes: per((p) => p.handshakes),
            githubUnits: per((p) => p.githubUnits),
            dnsQueries: per((p) => p.dnsQueries),
            floorMs,
            xFloor: medianMs / floorMs,
          });
        }
      }
    }
    return { options: opts, warmRoundTripMs: rtt, rows, pages, failures };
  } finally {
    await app?.stop();
    await sc?.stop();
    await world.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const fmtNum = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '-');

export function formatScenario(result: ScenarioResult): string {
  const o = result.options;
  const head = [
    'page',
    'pages',
    'median ms',
    'p90 ms',
    'speedup',
    'origin req/page',
    'TLS hs/page',
    'GitHub units/page',
    'DNS q/page',
    'floor ms',
    'x floor',
  ];
  const body = result.rows.map((r) => [
    r.label,
    String(r.pages),
    fmtNum(r.medianMs),
    fmtNum(r.p90Ms),
    r.mode === 'direct' ? '1.0x' : `${fmtNum(r.speedup, 1)}x`,
    fmtNum(r.originRequests, 1),
    fmtNum(r.handshakes, 1),
    fmtNum(r.githubUnits, 1),
    fmtNum(r.dnsQueries, 1),
    fmtNum(r.floorMs),
    `${fmtNum(r.xFloor, 2)}x`,
  ]);
  const rows = [head, ...body];
  const widths = head.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const fmt = (r: string[]) =>
    r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  const lines = [
    `issue 10 scenario: 20 sequential API calls per page (GitHub 7, Stripe 4, user service 9 incl. 1 POST); ` +
      `DNS ${o.dnsDelayMs} ms (TTL ${o.dnsTtlS} s), TLS handshake round trip ${o.handshakeDelayMs} ms, think ${o.thinkMinMs}-${o.thinkMaxMs} ms; ` +
      `origins close connections idle ${o.originIdleMs} ms; idle ${o.idleMs} ms before an after-idle page; ` +
      `warm round trip ${result.warmRoundTripMs.toFixed(2)} ms`,
    fmt(head),
    fmt(head.map((_, c) => '-'.repeat(widths[c] ?? 0))),
    ...body.map(fmt),
  ];
  const find = (mode: Mode, phase: Phase, keepWarm: KeepWarm | null = null) =>
    result.rows.find(
      (r) => r.mode === mode && r.phase === phase && (keepWarm === null || r.keepWarm === keepWarm),
    );
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  for (const mode of ['intercept', 'routes', 'intercept-flags'] as const) {
    const warm = find(mode, 'warm');
    const purged = find(mode, 'purged');
    const first = find(mode, 'first');
    if (!warm || !purged || !first || !find('direct', 'direct')) continue;
    lines.push(
      `targets (${mode}): warm ${fmtNum(warm.xFloor, 2)}x floor (<= 1.3x: ${verdict(warm.xFloor <= 1.3)}), ` +
        `warm ${fmtNum(warm.speedup, 1)}x faster (> 10x: ${verdict(warm.speedup > 10)}), ` +
        `cold cache ${fmtNum(purged.speedup, 1)}x / first page ${fmtNum(first.speedup, 1)}x (>= 3x: ${verdict(purged.speedup >= 3)} / ${verdict(first.speedup >= 3)})`,
    );
  }
  // Issue 11: the first page (and the page after idle) within 1.5x of a page on warm connections
  // and DNS with the same cold cache (the "cache purged" page of the same run).
  for (const mode of ['intercept', 'routes', 'intercept-flags'] as const) {
    for (const keepWarm of KEEP_WARM) {
      const purged = find(mode, 'purged', keepWarm);
      const first = find(mode, 'first', keepWarm);
      if (!purged || !first) continue;
      const idle = find(mode, 'idle', keepWarm);
      const r1 = first.medianMs / purged.medianMs;
      const r2 = idle ? idle.medianMs / purged.medianMs : Number.NaN;
      lines.push(
        `keep-warm ${keepWarm} (${mode}): first page ${fmtNum(r1, 2)}x a warm-connection page (<= 1.5x: ${verdict(r1 <= 1.5)})` +
          (idle ? `, page after idle ${fmtNum(r2, 2)}x (<= 1.5x: ${verdict(r2 <= 1.5)})` : ''),
      );
    }
  }
  // Issue 22: the policy advisor's loop, flags-only pages against pages served with its suggestions.
  const flags = find('advised', 'flags');
  const advised = find('advised', 'warm');
  if (flags && advised) {
    lines.push(
      `advisor loop: flags-only page ${fmtNum(flags.medianMs)} ms (${fmtNum(flags.speedup, 1)}x direct), ` +
        `with the suggested config ${fmtNum(advised.medianMs)} ms (${fmtNum(advised.speedup, 1)}x direct, ` +
        `${fmtNum(flags.medianMs / advised.medianMs, 1)}x faster than flags only)`,
    );
  }
  lines.push(
    result.failures.length === 0
      ? `checks: every page identical (${result.pages.length} pages), 20 API calls each, the POST reached the origin on every page, proxied requests all via sidecache: ok`
      : `checks FAILED:\n  ${result.failures.join('\n  ')}`,
  );
  return lines.join('\n');
}
