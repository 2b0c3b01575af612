// What every benchmark shares: one ChildGroup that is stopped on exit and on SIGINT/SIGTERM, CPU
// pinning, the load generator, a sidecache config file in a throw-away directory, /metrics reads,
// and the main of the stand-alone scripts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ChildGroup, createChildGroup } from './children.js';
import { type LoadGenerator, loadGenerator } from './load.js';
import { createPinning, type Pinning } from './pinning.js';
import { writeJson } from './report.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface Harness {
  readonly children: ChildGroup;
  readonly pinning: Pinning;
  readonly load: LoadGenerator;
  /** CPUs available to this process before pinning. */
  readonly cpuCount: number;
  /** Header lines: machine, load generator, pinning. */
  readonly header: readonly string[];
}

export interface HarnessSetup {
  /** Pin the measured process and the load generator to CPUs of their own (taskset). */
  readonly pin: boolean;
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
    const load = loadGenerator({ children, pinning });
    const header = [
      `node ${process.version}, ${cpuCount} CPUs, load generator ${load.name}, load average ${loadAverage()}`,
      `CPU: ${pinning.description}`,
    ];
    return await body({ children, pinning, load, cpuCount, header });
  } finally {
    await children.stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * The main of a stand-alone script: runs `script` in a harness, prints its table, writes
 * `{ generatedAt, header, ...opts, ...results }` to `opts.json` (relative to the repository) and
 * exits 1 when it `failed`, else 0.
 */
export async function runScript(
  opts: { readonly pin: boolean; readonly json: string },
  script: (h: Harness) => Promise<{ table: string; results: Record<string, unknown>; failed: boolean }>,
): Promise<never> {
  const code = await withHarness({ pin: opts.pin }, async (h) => {
    const { table, results, failed } = await script(h);
    console.log(table);
    writeJson(resolve(repoRoot, opts.json), {
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

/** Runs `body` with a sidecache YAML config in a fresh temp directory, removed afterwards. */
export async function withConfigFile<T>(yaml: string, body: (path: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-config-'));
  try {
    writeFileSync(join(dir, 'sidecache.yaml'), yaml);
    return await body(join(dir, 'sidecache.yaml'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The sum of every sample of `name` (a regular expression; all label sets) on a /metrics page, or null. */
export async function metric(adminUrl: string, name: string): Promise<number | null> {
  const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const samples = [
    ...(await res.text()).matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm')),
  ];
  return samples.length === 0 ? null : samples.reduce((sum, m) => sum + Number(m[1]), 0);
}

/** A bad command line: the scripts print it with their usage and exit 2. */
export class UsageError extends Error {}

/** `raw` seconds (or `fallback` when absent) in [min, max], as milliseconds. */
export function seconds(
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`${name}: "${raw}" is not a number of seconds in [${min}, ${max}]`);
  }
  return Math.round(value * 1000);
}

/** The integers of `raw` (comma-separated; `fallback` when absent), each in [min, max]. */
export function integers(
  name: string,
  raw: string | undefined,
  fallback: string,
  min: number,
  max: number,
): number[] {
  const values = (raw || fallback).split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < min || v > max)) {
    throw new UsageError(
      `${name}: "${raw}" is not ${values.length > 1 ? 'a list of integers' : 'an integer'} in [${min}, ${max}]`,
    );
  }
  return values;
}

export const integer = (
  name: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max: number,
): number => integers(name, raw, String(fallback), min, max)[0] as number;
