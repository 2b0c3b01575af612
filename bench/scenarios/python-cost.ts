// `npm run bench:python`: where the ~18 ms of a Python `requests.get` through sidecache's
// interception goes. Starts the HTTPS origin (bench/targets/https-origin.ts, no handshake delay, answers
// cacheable) and sidecache from source with interception, optionally under `node --cpu-prof`; runs
// bench/scenarios/python-cost.py (Debian's /usr/bin/python3 with requests) and prints its timings, a
// by-hand breakdown of one intercepted call, the Python profile, and sidecache's own CPU profile
// summed by function. See docs/BENCHMARKS.md ("Python per-call cost").
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ChildGroup, createChildGroup } from '../harness/children.js';
import { loadAverage, metric, repoRoot } from '../harness/harness.js';
import { columnLines } from '../harness/report.js';
import { ROUTE_NAME } from '../targets/route-table.js';
import { HIT_LOOKUPS, startInterceptingSidecache } from '../targets/sidecache.js';

export const PYTHON = '/usr/bin/python3';

interface Stats {
  readonly calls: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
}

export interface PythonCostResult {
  readonly python: string;
  readonly requests: string;
  readonly openssl: string;
  readonly modes: Readonly<Record<string, Stats>>;
  readonly byHand: Readonly<Record<string, Stats>>;
  readonly sslContextWithCaFile: Stats;
  readonly sslContextSystemDefault: Stats;
  readonly sslContextCertifi: Stats | null;
  readonly profile: string | null;
  /** sidecache's /metrics after the run. */
  readonly sidecache: {
    readonly cacheHits: number;
    readonly upstreamRequests: number;
    readonly leafCertsIssued: number;
  };
  /** `node --cpu-prof` of sidecache while the intercepted requests.get loop ran, when profiled. */
  readonly cpuProfile: CpuProfileSummary | null;
  readonly interceptWindowUs: readonly [number, number];
}

export interface PythonCostOptions {
  readonly calls: number;
  readonly pythonProfile: boolean;
  readonly cpuProfile: boolean;
}

export interface CpuProfileSummary {
  /** Wall time covered by the samples kept, ms. */
  readonly windowMs: number;
  /** Samples kept that were not (idle), ms. */
  readonly busyMs: number;
  readonly top: readonly { readonly fn: string; readonly ms: number; readonly share: number }[];
}

/**
 * Self time per function (name, file, line) from a V8 .cpuprofile, largest first, counting only
 * samples whose timestamp (CLOCK_MONOTONIC µs) falls in `window` when one is given.
 */
export function summariseCpuProfile(
  path: string,
  window: readonly [number, number] | null,
  top = 15,
): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as {
    startTime: number;
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const label = new Map<number, string>();
  for (const n of profile.nodes) {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url ? `${basename(url.replace(/^file:\/\//, ''))}:${lineNumber + 1}` : '';
    label.set(n.id, `${functionName || '(anonymous)'}${file ? ` ${file}` : ''}`);
  }
  const selfUs = new Map<string, number>();
  let total = 0;
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window[0] || t > window[1])) return;
    total += dt;
    const key = label.get(id) ?? '?';
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  });
  const idle = selfUs.get('(idle)') ?? 0;
  return {
    windowMs: total / 1000,
    busyMs: (total - idle) / 1000,
    top: [...selfUs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, us]) => ({ fn, ms: us / 1000, share: total ? us / total : 0 })),
  };
}

export async function runPythonCost(
  children: ChildGroup,
  opts: PythonCostOptions,
): Promise<PythonCostResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-pycost-'));
  try {
    const profDir = join(dir, 'cpu-prof');
    const { origin, sidecache: sc } = await startInterceptingSidecache(children, {
      dir,
      handshakeDelayMs: 0,
      label: 'sidecache',
      nodeArgs: opts.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [],
    });
    const py = children.spawn({
      label: 'python',
      command: PYTHON,
      args: [
        join(repoRoot, 'bench/scenarios/python-cost.py'),
        JSON.stringify({
          origin: `https://${origin.authority}`,
          originCa: origin.caFile,
          proxy: sc.url,
          proxyCa: sc.caFile,
          route: `${sc.url}/${ROUTE_NAME}`,
          calls: opts.calls,
          profile: opts.pythonProfile,
        }),
      ],
    });
    const killer = setTimeout(() => py.process.kill('SIGKILL'), 120_000 + opts.calls * 500);
    const exit = await py.exited;
    clearTimeout(killer);
    const line = py
      .stdout()
      .split('\n')
      .find((l) => l.startsWith('PYCOST '));
    if (exit.code !== 0 || !line)
      throw new Error(`python-cost.py failed (code ${exit.code}): ${py.outputTail()}`);
    const measured = JSON.parse(line.slice('PYCOST '.length)) as Omit<
      PythonCostResult,
      'sidecache' | 'cpuProfile'
    >;
    const count = async (name: string) => (await metric(sc.adminUrl, name)) ?? 0;
    const sidecache = {
      cacheHits: await count(HIT_LOOKUPS),
      upstreamRequests: await count('sidecache_upstream_requests_total'),
      leafCertsIssued: await count('sidecache_tls_leaf_certificates_issued_total'),
    };
    await sc.child.stop(10_000);
    await origin.child.stop();
    let cpuProfile: PythonCostResult['cpuProfile'] = null;
    if (opts.cpuProfile && existsSync(profDir)) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) cpuProfile = summariseCpuProfile(join(profDir, file), measured.interceptWindowUs);
    }
    return { ...measured, sidecache, cpuProfile };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatPythonCost(r: PythonCostResult): string {
  const row = (name: string, s: Stats | null) =>
    s ? [name, s.mean.toFixed(2), s.p50.toFixed(2), s.p90.toFixed(2)] : [name, '-', '-', '-'];
  const calls = r.modes['requests.get via HTTPS_PROXY (intercept)']?.calls ?? 1;
  const table = columnLines(
    ['', 'mean ms', 'p50 ms', 'p90 ms'],
    [
      ...Object.entries(r.modes).map(([k, v]) => row(k, v)),
      ['one intercepted call by hand (socket + ssl, no requests):', '', '', ''],
      ...Object.entries(r.byHand).map(([k, v]) => row(`  ${k}`, v)),
      ['ssl.create_default_context():', '', '', ''],
      row('  cafile = sidecache CA (1 certificate)', r.sslContextWithCaFile),
      row('  system default store', r.sslContextSystemDefault),
      row('  cafile = certifi / system bundle file', r.sslContextCertifi),
    ],
    1,
  );
  return [
    `python interception per-call cost: Python ${r.python}, requests ${r.requests}, ${r.openssl}; load average ${loadAverage()}`,
    `origin: HTTPS on loopback, no added delay, Cache-Control: public, max-age=60 (sidecache answers from its cache)`,
    ...table.map((line) => `  ${line}`),
    `  sidecache: ${r.sidecache.cacheHits} cache hits, ${r.sidecache.upstreamRequests} upstream requests, ` +
      `${r.sidecache.leafCertsIssued} leaf certificate(s) issued`,
    ...(r.cpuProfile
      ? [
          `  sidecache CPU profile (node --cpu-prof) while the intercepted requests.get loop ran: ` +
            `${r.cpuProfile.busyMs.toFixed(0)} ms busy of ${r.cpuProfile.windowMs.toFixed(0)} ms, ` +
            `${(r.cpuProfile.busyMs / calls).toFixed(2)} ms CPU per call; self time by function:`,
          ...r.cpuProfile.top.map(
            (p) =>
              `    ${(p.share * 100).toFixed(1).padStart(5)}%  ${p.ms.toFixed(0).padStart(6)} ms  ${p.fn}`,
          ),
        ]
      : []),
    ...(r.profile ? ['  Python cProfile of the intercepted requests.get loop (by tottime):', r.profile] : []),
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string' },
      quick: { type: 'boolean' },
      'no-profile': { type: 'boolean' },
    },
  });
  if (!existsSync(PYTHON)) {
    console.log(`skipped: ${PYTHON} not found (apt-get install -y python3-requests)`);
    process.exit(0);
  }
  const calls = Number(values.calls ?? (values.quick ? 10 : 100));
  const children = createChildGroup(repoRoot);
  process.on('exit', () => children.killAllNow());
  try {
    const result = await runPythonCost(children, {
      calls,
      pythonProfile: values['no-profile'] !== true,
      cpuProfile: values['no-profile'] !== true,
    });
    console.log(formatPythonCost(result));
  } finally {
    await children.stopAll();
  }
}
