// `npm run bench`: starts the origin and every target as separate processes, sends each scenario to
// each target with the same load generator, reads the measured process's CPU from /proc, and prints
// one table (also written as JSON), then the peer table, the HTTPS comparison (--https) and the slow
// DNS scenario. Exits non-zero when a target fails to start or serves any error. See bench/README.md.
import { resolve } from 'node:path';
import { type Harness, repoRoot, withHarness } from './harness/harness.js';
import { measureRun } from './harness/measure.js';
import { clockTicks } from './harness/proc.js';
import { deriveRows, formatTable, type RunRecord, writeJson } from './harness/report.js';
import { type BenchOptions, parseOptions, USAGE, UsageError } from './options.js';
import { runSlowDnsBench } from './scenarios/dns-slow.js';
import { formatHttpsResult, runHttpsNewConnection } from './scenarios/https.js';
import { runPeerTable } from './scenarios/peers.js';
import { requestFor } from './scenarios/requests.js';
import { BODY_BYTES } from './targets/body.js';
import { type RunningTarget, startOrigin } from './targets/index.js';

/** Runs one part after the main table; its failure is printed and fails the run, the rest goes on. */
async function part<T>(
  what: string,
  run: () => Promise<T>,
  failures: string[],
): Promise<T | { failure: string }> {
  try {
    return await run();
  } catch (err) {
    failures.push(`${what}: ${(err as Error).message}`);
    return { failure: (err as Error).message };
  }
}

async function peerTable(h: Harness, options: BenchOptions) {
  const opts = {
    rounds: options.peerRounds,
    warmupMs: options.quick ? 200 : options.warmupMs,
    durationMs: options.quick ? 500 : options.durationMs,
    connections: options.connections,
  };
  console.log(
    `\npeer table: ${opts.rounds} round(s) × (${opts.warmupMs / 1000} + ${opts.durationMs / 1000} s) per target and workload`,
  );
  const result = await runPeerTable(h, opts);
  console.log(`\n${result.table}`);
  const failed = result.rows.filter((r) => r.failure).length;
  if (failed > 0) throw new Error(`${failed} failed peer row(s)`);
  return result;
}

async function mainTable(h: Harness, options: BenchOptions) {
  const records: RunRecord[] = [];
  const skipped: { target: string; reason: string }[] = [];
  const origin = await startOrigin(h.children);
  const targets: RunningTarget[] = [];
  for (const spec of options.targets) {
    const skip = spec.skipReason();
    if (skip !== null) {
      console.log(`${spec.name} ${skip}`);
      skipped.push({ target: spec.name, reason: skip });
      continue;
    }
    try {
      targets.push(await spec.start({ children: h.children, origin }));
    } catch (err) {
      console.log(`${spec.name} did not start: ${(err as Error).message}`);
      for (const scenario of options.scenarios) {
        const connections = scenario.connections ?? options.connections;
        const failure = `did not start: ${(err as Error).message}`;
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
      const connections = scenario.connections ?? options.connections;
      const run = await measureRun(h, {
        request: requestFor(scenario, target, origin.url),
        expectedBytes: BODY_BYTES,
        connections,
        warmupMs: options.warmupMs,
        durationMs: options.durationMs,
        target: target.child,
        others: [origin.child.pid, process.pid, ...targets.map((t) => t.child.pid)],
        ...(target.role === 'origin' ? {} : { alsoCpu: origin.child }),
      });
      const record = {
        scenario: scenario.name,
        target: target.name,
        connections,
        ...run,
        originCpuUsPerReq: run.alsoCpuUsPerReq,
      };
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
  await h.children.stopAll();
  const order = options.scenarios.map((s) => s.name);
  records.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario));
  return { rows: deriveRows(records), skipped };
}

async function main(options: BenchOptions): Promise<number> {
  return withHarness({ pin: options.pin }, async (h) => {
    const failures: string[] = [];
    const json = {
      generatedAt: new Date().toISOString(),
      node: process.version,
      cpus: h.cpuCount,
      quick: options.quick,
      loadGenerator: h.load.name,
      pinning: h.pinning.description,
      clockTicksPerSecond: clockTicks(),
    };
    const write = (document: Record<string, unknown>): void => {
      writeJson(resolve(repoRoot, options.jsonPath), { ...json, ...document });
      console.log(`\nwritten: ${options.jsonPath}`);
    };
    if (options.peers === 'only') {
      write({ peers: await part('peer table', () => peerTable(h, options), failures) });
      for (const f of failures) console.error(`bench failed: ${f}`);
      return failures.length > 0 ? 1 : 0;
    }

    const { rows, skipped } = await mainTable(h, options);
    const https = options.https
      ? await part(
          'https-new-connection',
          () => runHttpsNewConnection(h.children, { requests: 200, delayMs: 20 }),
          failures,
        )
      : null;
    const peers =
      options.peers === 'include' ? await part('peer table', () => peerTable(h, options), failures) : null;
    const header = [
      `sidecache bench: node ${process.version}, ${h.cpuCount} CPUs, load generator ${h.load.name}` +
        `${options.quick ? ', quick mode' : ''}`,
      `each run: ${options.warmupMs / 1000} s warm-up, then ${options.durationMs / 1000} s measured; ` +
        `${BODY_BYTES}-byte JSON body; conns = concurrent keep-alive connections`,
      `CPU: ${h.pinning.description}`,
      `CPU µs/req: utime+stime of the measured process (/proc/PID/stat, ${clockTicks()} ticks/s) / responses; direct = the origin`,
      ...(options.quick
        ? [
            'quick mode: a smoke test (starts, serves 2xx, no errors); runs are under-warmed, do not compare numbers',
          ]
        : []),
      ...skipped.map((s) => `${s.target} ${s.reason}`),
    ];
    console.log(`\n${formatTable(rows, header)}`);
    if (https && 'series' in https) console.log(`\n${formatHttpsResult(https)}`);
    write({
      durationMs: options.durationMs,
      warmupMs: options.warmupMs,
      bodyBytes: BODY_BYTES,
      skipped,
      rows,
      ...(https ? { httpsNewConnection: https } : {}),
      ...(peers ? { peers } : {}),
    });
    // A latency scenario measured by a sequential client rather than the load generator.
    if (!options.targetsExplicit) {
      const dns = await part(
        'slow-DNS scenario',
        () => runSlowDnsBench(h.children, { requests: options.quick ? 5 : 20 }),
        failures,
      );
      if ('table' in dns) console.log(`\n${dns.table}`);
    }
    const failed = rows.filter((r) => r.failure).length;
    if (failed > 0) failures.push(`${failed} failed run(s)`);
    if (options.targetsExplicit && skipped.length > 0)
      failures.push(`${skipped.length} requested target(s) skipped`);
    if (rows.length === 0) failures.push('nothing measured');
    for (const f of failures) console.error(`bench failed: ${f}`);
    return failures.length > 0 ? 1 : 0;
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
