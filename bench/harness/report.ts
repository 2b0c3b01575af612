// Turns measured runs into the table printed at the end and the JSON in bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LoadResult } from './load.js';

export interface RunRecord {
  readonly scenario: string;
  readonly target: string;
  readonly connections: number;
  /** Absent when the run failed before it measured anything. */
  readonly load: LoadResult | null;
  /** CPU µs per completed request of the measured process (the proxy; the origin for direct). */
  readonly cpuUsPerReq: number | null;
  /** CPU µs per completed request of the origin during the same window. */
  readonly originCpuUsPerReq: number | null;
  /** Why the run failed: start, probe, load generator, errors served. */
  readonly failure: string | null;
}

export interface ReportRow extends RunRecord {
  /** Throughput divided by http-proxy's in the same scenario. */
  readonly ratioVsHttpProxy: number | null;
  /** Throughput divided by bare-node's (a node:http server writing the bytes from memory). */
  readonly ratioVsBareNode: number | null;
  /** p50 minus direct's p50 in the same scenario, in ms. */
  readonly p50OverheadVsDirectMs: number | null;
}

export function deriveRows(records: readonly RunRecord[]): ReportRow[] {
  return records.map((record) => {
    const peer = (target: string) =>
      records.find((r) => r.scenario === record.scenario && r.target === target && r.load && !r.failure)
        ?.load;
    const httpProxy = peer('http-proxy');
    const direct = peer('direct');
    const bareNode = peer('bare-node');
    const ok = record.load && !record.failure ? record.load : null;
    return {
      ...record,
      ratioVsHttpProxy: ok && httpProxy ? ok.rps / httpProxy.rps : null,
      ratioVsBareNode: ok && bareNode ? ok.rps / bareNode.rps : null,
      p50OverheadVsDirectMs: ok && direct ? ok.p50Ms - direct.p50Ms : null,
    };
  });
}

const COLUMNS = [
  'scenario',
  'target',
  'conns',
  'req/s',
  'p50 ms',
  'p99 ms',
  'CPU µs/req',
  'x http-proxy',
  'x bare-node',
  'p50 +direct ms',
  'errors',
] as const;

/** `value` with `digits` decimals, or `-` when there is none. */
export function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined ? '-' : value.toFixed(digits);
}

/**
 * A plain-text table: the column titles, a rule and the rows, each column as wide as its widest
 * cell, two spaces apart; the first `leftAligned` columns are padded on the right, the rest on the left.
 */
export function columnLines(
  columns: readonly string[],
  body: readonly (readonly string[])[],
  leftAligned: number,
): string[] {
  const widths = columns.map((title, i) =>
    Math.max(title.length, ...body.map((r) => (r[i] as string).length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i < leftAligned ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number)))
      .join('  ');
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

function cells(row: ReportRow): string[] {
  const load = row.load;
  const errors = load ? load.non2xx + load.socketErrors : null;
  return [
    row.scenario,
    row.target,
    String(row.connections),
    fixed(load?.rps, 0),
    fixed(load?.p50Ms, 3),
    fixed(load?.p99Ms, 3),
    fixed(row.cpuUsPerReq, 1),
    fixed(row.ratioVsHttpProxy, 2),
    fixed(row.ratioVsBareNode, 2),
    row.p50OverheadVsDirectMs === null
      ? '-'
      : `${row.p50OverheadVsDirectMs >= 0 ? '+' : ''}${fixed(row.p50OverheadVsDirectMs, 3)}`,
    row.failure ? 'FAILED' : String(errors ?? '-'),
  ];
}

export function formatTable(rows: readonly ReportRow[], headerLines: readonly string[]): string {
  const failures = rows
    .filter((r) => r.failure)
    .map((r) => `FAILED ${r.scenario} / ${r.target}: ${r.failure}`);
  return [
    ...headerLines,
    '',
    ...columnLines(COLUMNS, rows.map(cells), 2),
    ...(failures.length ? ['', ...failures] : []),
  ].join('\n');
}

export function writeJson(path: string, document: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(document, null, 2)}\n`);
}
