// What the bench scripts (run.ts and the stand-alone sweep.ts, entries.ts) share: one ChildGroup that
// is stopped on exit and on SIGINT/SIGTERM, CPU pinning, the /proc CPU clock, the load generator,
// and a sidecache config file in a throw-away directory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildGroup, createChildGroup } from './children.js';
import { chooseLoadGenerator, type LoadGenerator, type LoadGeneratorName } from './load.js';
import { createPinning, type Pinning } from './pinning.js';
import { type CpuClock, createCpuClock } from './proc.js';
import { writeJson } from './report.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const READY_TIMEOUT_MS = 15_000;

export interface Harness {
  readonly children: ChildGroup;
  readonly pinning: Pinning;
  readonly cpu: CpuClock | null;
  readonly load: LoadGenerator;
  /** CPUs available to this process before pinning. */
  readonly cpuCount: number;
  /** Why the load generator is not the one asked for (wrk missing), or null. */
  readonly loadNote: string | null;
  /** Header lines: machine, load generator, pinning. */
  readonly header: readonly string[];
}

export interface HarnessSetup {
  /** Pin the measured process and the load generator to CPUs of their own (taskset). */
  readonly pin: boolean;
  /** Default `auto`: wrk when installed, else autocannon. */
  readonly loadgen?: LoadGeneratorName | 'auto';
}

/** Runs `body` with a harness and stops every process it started, whatever happens. */
export async function withHarness<T>(setup: HarnessSetup, body: (h: Harness) => Promise<T>): Promise<T> {
  const cpuCount = availableParallelism(); // before pinning: it follows this process's affinity
  const children = createChildGroup(repoRoot);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${signal}: stopping every process the bench started\n`);
    void children.stopAll(1000).finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => children.killAllNow());
  try {
    const pinning = createPinning(setup.pin);
    const cpu = createCpuClock();
    const { generator: load, note } = chooseLoadGenerator(setup.loadgen ?? 'auto', {
      children,
      pinning,
      benchDir: join(repoRoot, 'bench'),
    });
    const header = [
      `node ${process.version}, ${cpuCount} CPUs, load generator ${load.name}, load average ${loadAverage()}`,
      `CPU: ${pinning.description}`,
      ...(note ? [`note: ${note}`] : []),
    ];
    return await body({ children, pinning, cpu, load, cpuCount, loadNote: note, header });
  } finally {
    await children.stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The main of a stand-alone sweep script (sweep.ts, entries.ts): runs `sweep` in a harness, prints
 * its table, writes `{ generatedAt, header, ...opts, ...results }` to `opts.json` (relative to the
 * repository) and exits 1 when the sweep `failed`, else 0.
 */
export async function runSweepScript(
  opts: { readonly pin: boolean; readonly json: string },
  sweep: (h: Harness) => Promise<{ table: string; results: Record<string, unknown>; failed: boolean }>,
): Promise<never> {
  const code = await withHarness({ pin: opts.pin }, async (h) => {
    const { table, results, failed } = await sweep(h);
    console.log(table);
    writeJson(`${repoRoot}/${opts.json}`, {
      generatedAt: new Date().toISOString(),
      header: h.header,
      ...opts,
      ...results,
    });
    console.log(`\nwritten: ${opts.json}`);
    return failed ? 1 : 0;
  });
  process.exit(code);
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

/** Writes a sidecache YAML config into a fresh temp directory; `remove()` deletes it. */
export function sidecacheConfigFile(yaml: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-config-'));
  const path = join(dir, 'sidecache.yaml');
  writeFileSync(path, yaml);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Reads one unlabelled sample (`name value`) from a Prometheus text page, or null. */
export async function metricValue(adminUrl: string, name: string): Promise<number | null> {
  const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

/** Sum of every sample of `name` (all label sets) on a Prometheus text page. */
export async function metricSum(adminUrl: string, name: string): Promise<number> {
  const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm')))
    sum += Number(m[1]);
  return sum;
}
