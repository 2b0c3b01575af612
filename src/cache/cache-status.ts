/**
 * Response headers the cache adds: `Age` (RFC 9111 §5.1) and `Cache-Status` (RFC 9211). One small
 * function so that routes can switch either off.
 */
import type { OutgoingHttpHeaders } from 'node:http';

export type ForwardReason = 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'bypass';

/** One Cache-Status entry (RFC 9211 §2). */
export interface CacheStatusEntry {
  readonly hit?: boolean;
  readonly fwd?: ForwardReason;
  readonly fwdStatus?: number;
  /** Remaining freshness in seconds; negative when stale. */
  readonly ttlS?: number;
  readonly stored?: boolean;
  readonly collapsed?: boolean;
  readonly detail?: string;
}

/** Formats one Cache-Status list member: `name; hit; ttl=12` or `name; fwd=uri-miss; stored`. */
export function formatCacheStatus(name: string, e: CacheStatusEntry): string {
  const parts = [name];
  if (e.hit) parts.push('hit');
  if (e.fwd !== undefined) parts.push(`fwd=${e.fwd}`);
  if (e.fwdStatus !== undefined) parts.push(`fwd-status=${e.fwdStatus}`);
  if (e.ttlS !== undefined) parts.push(`ttl=${e.ttlS}`);
  if (e.stored) parts.push('stored');
  if (e.collapsed) parts.push('collapsed');
  if (e.detail !== undefined)
    parts.push(`detail=${/^[A-Za-z][A-Za-z0-9_.:-]*$/.test(e.detail) ? e.detail : JSON.stringify(e.detail)}`);
  return parts.join('; ');
}

export interface EmitOptions {
  readonly name: string;
  readonly emitAge: boolean;
  readonly emitCacheStatus: boolean;
}

/**
 * Returns `headers` with Age (when given) and our Cache-Status member appended after any from
 * caches closer to the origin (RFC 9211 §2: the list is in order from the origin).
 */
export function emitCacheHeaders(
  headers: OutgoingHttpHeaders,
  status: CacheStatusEntry,
  ageS: number | undefined,
  opts: EmitOptions,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ...headers };
  if (opts.emitAge && ageS !== undefined) out['age'] = String(Math.max(0, Math.floor(ageS)));
  if (opts.emitCacheStatus) {
    const member = formatCacheStatus(opts.name, status);
    const prior = out['cache-status'];
    const list = prior === undefined ? [] : Array.isArray(prior) ? prior : [String(prior)];
    out['cache-status'] = [...list, member].join(', ');
  }
  return out;
}
