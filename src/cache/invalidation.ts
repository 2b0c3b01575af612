/**
 * Invalidation by unsafe methods (RFC 9111 §4.4). Pure: says which URLs to invalidate.
 */
import { firstValue, type HeaderSource } from './headers.js';

/** Safe methods (RFC 9110 §9.2.1): they never invalidate. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * The URLs whose stored responses a response to an unsafe request invalidates: the target URI,
 * and the Location and Content-Location URIs when they share the target's origin. Only after a
 * non-error (2xx or 3xx) status.
 */
export function invalidatedUrls(
  method: string,
  target: URL,
  status: number,
  resHeaders: HeaderSource,
): URL[] {
  if (SAFE_METHODS.has(method) || status < 200 || status >= 400) return [];
  const out = [target];
  for (const name of ['location', 'content-location']) {
    const v = firstValue(resHeaders, name);
    if (v === undefined) continue;
    try {
      const u = new URL(v, target);
      if (u.origin === target.origin && !out.some((o) => o.href === u.href)) out.push(u);
    } catch {
      // An unparsable Location invalidates nothing; the target itself is still invalidated.
    }
  }
  return out;
}
