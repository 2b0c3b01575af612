/**
 * `sidecache cache ls`: reads `GET /cache` from a running instance's admin listener
 * (cache-list.ts) and prints one line per cached URL, or the listing as JSON.
 */

import type { CacheListing, CacheListRow } from '../admin/cache-list.js';
import { readAdmin } from './report.js';

export interface CacheLsOptions {
  /** Base URL of the admin listener, e.g. http://127.0.0.1:9090. */
  readonly admin: string;
  readonly token?: string | undefined;
  readonly route?: string | undefined;
  readonly prefix?: string | undefined;
  readonly limit?: number | undefined;
  readonly json: boolean;
  readonly timeoutMs?: number;
}

/** The listing as text (or JSON); rejects with ReportError when the instance cannot be read. */
export async function runCacheLs(opts: CacheLsOptions): Promise<string> {
  const query = new URLSearchParams();
  if (opts.route !== undefined) query.set('route', opts.route);
  if (opts.prefix !== undefined) query.set('prefix', opts.prefix);
  if (opts.limit !== undefined) query.set('limit', String(opts.limit));
  const q = query.toString();
  const text = await readAdmin(opts.admin, `/cache${q === '' ? '' : `?${q}`}`, opts.timeoutMs, opts.token);
  const listing = JSON.parse(text) as CacheListing;
  return opts.json ? `${JSON.stringify(listing, null, 2)}\n` : formatCacheListing(listing);
}

export function formatCacheListing(l: CacheListing): string {
  const head = ['URL', 'ROUTE', 'VARIANTS', 'CREDENTIAL', 'SIZE', 'AGE', 'TTL', 'HITS'];
  const rows = l.entries.map((e) => [
    e.url,
    e.route ?? '-',
    String(e.variants),
    credentialColumn(e),
    size(e.bytes),
    duration(e.ageS),
    e.ttlS < 0 ? `stale ${duration(-e.ttlS)}` : duration(e.ttlS),
    String(e.hits),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const out = l.entries.length > 0 ? [line(head), ...rows.map(line)] : ['nothing cached matches'];
  out.push(
    `${l.entries.length} of ${l.total} URL${l.total === 1 ? '' : 's'} shown${l.truncated ? ' (--limit to see more)' : ''}; ` +
      `${l.storedResponses} stored response${l.storedResponses === 1 ? '' : 's'} in this process's memory (a shared tier is not listed)`,
  );
  return `${out.join('\n')}\n`;
}

/** Whether the URL's responses are keyed by a credential; never which one. */
function credentialColumn(e: CacheListRow): string {
  if (e.perCredential === 0) return '-';
  if (e.perCredential === e.variants) return 'per-credential';
  return `${e.perCredential} per-credential`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function duration(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}
