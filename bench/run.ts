// `npm run bench`: starts the origin and every target as separate processes, sends each scenario
// to each target with the same load generator, reads the measured process's CPU from /proc, and
// prints one table (also written as JSON). Exits non-zero when a target fails to start or serves
// any error. See bench/README.md.
import { resolve } from 'node:path';
import type { Child } from './harness/children.js';
import { READY_TIMEOUT_MS, repoRoot, withHarness } from './harness/harness.js';
import type { LoadGenerator, LoadResult } from './harness/load.js';
import { probe } from './harness/measure.js';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './harness/options.js';
import type { Pinning } from './harness/pinning.js';
import type { CpuClock } from './harness/proc.js';
import { deriveRows, formatTable, type RunRecord, writeJson } from './harness/report.js';
import { runSlowDnsBench } from './scenarios/dns-slow.js';
import { formatHttpsResult, type HttpsBenchResult, runHttpsNewConnection } from './scenarios/https.js';
import { type PeerTableResult, runPeerTable } from './scenarios/peers.js';
import { requestFor, type Scenario } from './scenarios/requests.js';
import { BODY_BYTES } from './targets/body.js';
import { type RunningOrigin, type RunningTarget, startOrigin } from './targets/index.js';

interface MeasureDeps {
  readonly options: BenchOptions;
  readonly origin: RunningOrigin;
  readonly targets: readonly RunningTarget[];
  readonly load: LoadGenerator;
  readonly pinning: Pinning;
  readonly cpu: CpuClock | null;
}

function errorsServed(load: LoadResult): string | null {
  if (load.requests === 0) return 'no response completed';
  if (load.non2xx === 0 && load.socketErrors === 0) return null;
  return `${load.non2xx} non-2xx responses, ${load.socketErrors} socket errors/timeouts`;
}

function cpuSeconds(cpu: CpuClock | null, child: Child): number | null {
  return cpu && !child.hasExited() ? cpu.cpuSeconds(child.pid) : null;
}

async function measure(scenario: Scenario, target: RunningTarget, deps: MeasureDeps): Promise<RunRecord> {
  const connections = scenario.connections ?? deps.options.connections;
  const base = { scenario: scenario.name, target: target.name, connections };
  const request = requestFor(scenario, target, deps.origin.url);
  try {
    await probe(request, BODY_BYTES);
  } catch (err) {
    return {
      ...base,
      load: null,
      cpuUsPerReq: null,
      originCpuUsPerReq: null,
      failure: `probe: ${(err as Error).message}`,
    };
  }
  const others = [deps.origin.child.pid, process.pid, ...deps.targets.map((t) => t.child.pid)];
  deps.pinning.isolate(target.child.pid, others);
  if (deps.options.warmupMs > 0) {
    await deps.load.run({ request, connections, durationMs: deps.options.warmupMs });
  }
  const targetBefore = cpuSeconds(deps.cpu, target.child);
  const originBefore = cpuSeconds(deps.cpu, deps.origin.child);
  const load = await deps.load.run({ request, connections, durationMs: deps.options.durationMs });
  const targetAfter = cpuSeconds(deps.cpu, target.child);
  const originAfter = cpuSeconds(deps.cpu, deps.origin.child);
  const perRequestUs = (before: number | null, after: number | null) =>
    before === null || after === null || load.requests === 0
      ? null
      : ((after - before) * 1e6) / load.requests;
  const exited = target.child.hasExited()
    ? `${target.name} exited during the run: ${target.child.outputTail()}`
    : null;
  return {
    ...base,
    load,
    cpuUsPerReq: perRequestUs(targetBefore, targetAfter),
    originCpuUsPerReq: target.role === 'origin' ? null : perRequestUs(originBefore, originAfter),
    failure: exited ?? errorsServed(load),
  };
}

async function main(options: BenchOptions): Promise<number> {
  return withHarness({ pin: options.pin, loadgen: options.loadgen }, async (h) => {
    const { children, pinning, cpu, load, loadNote: note } = h;
    if (note) console.log(`note: ${note}`);

    const runPeers = async (): Promise<PeerTableResult> => {
      const peerOptions = {
        rounds: options.peerRounds,
        warmupMs: options.quick ? 200 : options.warmupMs,
        durationMs: options.quick ? 500 : options.durationMs,
        connections: options.connections,
      };
      console.log(
        `\npeer table: ${peerOptions.rounds} round(s) × (${peerOptions.warmupMs / 1000} + ${peerOptions.durationMs / 1000} s) per target and workload`,
      );
      const result = await runPeerTable(
        { children, repoRoot, load, pinning, cpu, readyTimeoutMs: READY_TIMEOUT_MS },
        peerOptions,
      );
      console.log(`\n${result.table}`);
      return result;
    };
    if (options.peers === 'only') {
      const peers = await runPeers();
      writeJson(resolve(repoRoot, options.jsonPath), {
        generatedAt: new Date().toISOString(),
        node: process.version,
        cpus: h.cpuCount,
        quick: options.quick,
        loadGenerator: load.name,
        pinning: pinning.description,
        peers,
      });
      console.log(`\nwritten: ${options.jsonPath}`);
      const failedPeers = peers.rows.filter((r) => r.failure).length;
      if (failedPeers > 0) console.error(`bench failed: ${failedPeers} failed peer row(s)`);
      return failedPeers > 0 ? 1 : 0;
    }

    const records: RunRecord[] = [];
    const skipped: { target: string; reason: string }[] = [];
    const origin = await startOrigin(children, repoRoot, READY_TIMEOUT_MS);
    const targets: RunningTarget[] = [];
    for (const spec of options.targets) {
      const skip = spec.skipReason(repoRoot);
      if (skip !== null) {
        console.log(`${spec.name} ${skip}`);
        skipped.push({ target: spec.name, reason: skip });
        continue;
      }
      try {
        targets.push(await spec.start({ children, repoRoot, origin, readyTimeoutMs: READY_TIMEOUT_MS }));
      } catch (err) {
        const failure = `did not start: ${(err as Error).message}`;
        console.log(`${spec.name} ${failure}`);
        for (const scenario of options.scenarios) {
          const connections = scenario.connections ?? options.connections;
          records.push({
            scenario: scenario.name,
            target: spec.name,
            connections,
            load: null,
            cpuUsPerReq: null,
            originCpuUsPerReq: null,
            failure,
          });
        }
      }
    }

    for (const scenario of options.scenarios) {
      for (const target of targets) {
        const only = options.targets.find((t) => t.name === target.name)?.scenarios;
        if (only && !only.includes(scenario.name)) continue;
        const record = await measure(scenario, target, { options, origin, targets, load, pinning, cpu });
        records.push(record);
        const l = record.load;
        console.log(
          `  ${scenario.name} / ${target.name}: ` +
            (l ? `${l.rps.toFixed(0)} req/s, p50 ${l.p50Ms.toFixed(3)} ms` : 'not measured') +
            (record.cpuUsPerReq === null ? '' : `, CPU ${record.cpuUsPerReq.toFixed(1)} µs/req`) +
            (record.failure ? `  FAILED: ${record.failure}` : ''),
        );
      }
    }
    await children.stopAll();

    let httpsResult: HttpsBenchResult | null = null;
    let httpsFailure: string | null = null;
    if (options.https) {
      try {
        httpsResult = await runHttpsNewConnection({
          children,
          repoRoot,
          requests: 200,
          delayMs: 20,
          readyTimeoutMs: READY_TIMEOUT_MS,
        });
      } catch (err) {
        httpsFailure = (err as Error).message;
      }
    }

    let peers: PeerTableResult | null = null;
    let peersFailure: string | null = null;
    if (options.peers === 'include') {
      try {
        peers = await runPeers();
      } catch (err) {
        peersFailure = (err as Error).message;
      }
    }

    const order = options.scenarios.map((s) => s.name);
    records.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
    const rows = deriveRows(records);
    const header = [
      `sidecache bench: node ${process.version}, ${h.cpuCount} CPUs, load generator ${load.name}` +
        `${options.quick ? ', quick mode' : ''}`,
      `each run: ${options.warmupMs / 1000} s warm-up, then ${options.durationMs / 1000} s measured; ` +
        `${BODY_BYTES}-byte JSON body; conns = concurrent keep-alive connections`,
      `CPU: ${pinning.description}`,
      cpu
        ? `CPU µs/req: utime+stime of the measured process (/proc/PID/stat, ${cpu.ticksPerSecond} ticks/s) / responses; direct = the origin`
        : 'CPU µs/req: not available (/proc not readable)',
      ...(note ? [`note: ${note}`] : []),
      ...(options.quick
        ? [
            'quick mode: a smoke test (starts, serves 2xx, no errors); runs are under-warmed, do not compare numbers',
          ]
        : []),
      ...skipped.map((s) => `${s.target} ${s.reason}`),
    ];
    console.log(`\n${formatTable(rows, header)}`);
    if (httpsResult) console.log(`\n${formatHttpsResult(httpsResult)}`);
    if (httpsFailure) console.log(`\nhttps-new-connection FAILED: ${httpsFailure}`);
    if (peers) console.log(`\n${peers.table}`);
    if (peersFailure) console.log(`\npeer table FAILED: ${peersFailure}`);
    const jsonPath = resolve(repoRoot, options.jsonPath);
    writeJson(jsonPath, {
      generatedAt: new Date().toISOString(),
      node: process.version,
      cpus: h.cpuCount,
      quick: options.quick,
      loadGenerator: load.name,
      loadGeneratorNote: note,
      pinning: pinning.description,
      clockTicksPerSecond: cpu?.ticksPerSecond ?? null,
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      bodyBytes: BODY_BYTES,
      skipped,
      rows,
      ...(options.https ? { httpsNewConnection: httpsResult ?? { failure: httpsFailure } } : {}),
      ...(options.peers === 'include' ? { peers: peers ?? { failure: peersFailure } } : {}),
    });
    console.log(`\nwritten: ${options.jsonPath}`);

    // Latency scenarios measured by a sequential client rather than the load generator.
    let dnsFailed = false;
    if (!options.targetsExplicit) {
      try {
        const dns = await runSlowDnsBench({ requests: options.quick ? 5 : 20 });
        console.log(`\n${dns.table}`);
      } catch (err) {
        dnsFailed = true;
        console.error(`slow-DNS scenario failed: ${(err as Error).message}`);
      }
    }

    const failed = rows.filter((r) => r.failure).length;
    const explicitSkips = options.targetsExplicit ? skipped.length : 0;
    if (httpsFailure) {
      console.error('bench failed: https-new-connection did not complete');
      return 1;
    }
    const failedPeers = peers ? peers.rows.filter((r) => r.failure).length : 0;
    if (peersFailure || failedPeers > 0) {
      console.error(`bench failed: peer table ${peersFailure ?? `${failedPeers} failed row(s)`}`);
      return 1;
    }
    if (failed > 0 || explicitSkips > 0 || rows.length === 0 || dnsFailed) {
      console.error(
        `bench failed: ${failed} failed run(s)` +
          (explicitSkips ? `, ${explicitSkips} requested target(s) skipped` : '') +
          (rows.length === 0 ? ', nothing measured' : ''),
      );
      return 1;
    }
    return 0;
  });
}

let options: BenchOptions;
try {
  options = parseOptions(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  console.error(`${err.message}\n\n${USAGE}`);
  process.exit(2);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
main(options).then(
  (code) => process.exit(code),
  (err: Error) => {
    // Expected failures (a target that cannot start, a missing wrk) read best as one line.
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
  },
);
