/**
 * `intercept` entries: `HOST[:PORT]`. HOST is a name, `*.example.com`, `*` or an IP address (an
 * IPv6 address with a port in brackets: `[::1]:8443`).
 *
 * - An entry without a port intercepts CONNECTs to its host on any allowed port, as `intercept`
 *   always did; keep-warm warms port 443 (DEFAULT_INTERCEPT_PORT) for it.
 * - An entry with a port intercepts CONNECTs to that port only, makes that port reachable by CONNECT
 *   for the host (as a route origin's own port is), and is warmed on it.
 * - Wildcard entries (`*`, `*.example.com`) name no host to connect to: they are never warmed.
 *
 * Pure functions; the schema (validation), the tunnels (matching) and the runtime (keep-warm
 * targets, check-config) read entries through them.
 */
import { isIP } from 'node:net';

/** A host name, "*.example.com", "*" or an IP address: the host patterns of `allow`, `hosts` and `intercept`. */
export const HOST_PATTERN =
  /^(\*|(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?|\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]+)$/;

/** The port an intercept entry without one is warmed on. */
export const DEFAULT_INTERCEPT_PORT = 443;

export interface InterceptEntry {
  /** As written in the config. */
  readonly pattern: string;
  /** The host pattern: lower-case, no brackets, no trailing dot. */
  readonly host: string;
  /** The port written, or null: then every allowed port is intercepted and 443 is warmed. */
  readonly port: number | null;
}

const EXPECTED =
  'expected HOST or HOST:PORT, HOST a host name, "*.example.com", "*" or an IP address ("[::1]:8443" for an IPv6 address with a port)';

/** Parses one entry; a string is the reason it is not one (for a config error). */
export function parseInterceptEntry(pattern: string): InterceptEntry | string {
  if (pattern.includes('/')) return `a host, not a URL or path; ${EXPECTED}`;
  let hostPart = pattern;
  let portPart: string | null = null;
  if (pattern.startsWith('[')) {
    const close = pattern.indexOf(']');
    if (close < 0) return `no closing "]"; ${EXPECTED}`;
    hostPart = pattern.slice(0, close + 1);
    const rest = pattern.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return `unexpected "${rest}" after "]"; ${EXPECTED}`;
      portPart = rest.slice(1);
    }
    if (isIP(hostPart.slice(1, -1)) !== 6) {
      return `brackets hold an IPv6 address only; ${EXPECTED}`;
    }
  } else {
    const colons = pattern.split(':').length - 1;
    // Two or more colons: an IPv6 address without brackets (and so without a port).
    if (colons === 1) {
      const colon = pattern.indexOf(':');
      hostPart = pattern.slice(0, colon);
      portPart = pattern.slice(colon + 1);
    } else if (colons > 1 && isIP(pattern) !== 6) {
      return `not an IPv6 address (write "[ADDRESS]:PORT" for one with a port); ${EXPECTED}`;
    }
  }
  if (hostPart === '') return `the host is empty; ${EXPECTED}`;
  if (!HOST_PATTERN.test(hostPart)) return EXPECTED;
  let port: number | null = null;
  if (portPart !== null) {
    if (portPart === '') return `the port after ":" is empty (leave out ":" for port 443)`;
    if (!/^[0-9]{1,5}$/.test(portPart)) return `port "${portPart}" is not a number 1-65535`;
    port = Number(portPart);
    if (port < 1 || port > 65_535) return `port ${port} is out of range (1-65535)`;
  }
  let host = hostPart.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return { pattern, host, port };
}

/** Parses validated entries (the schema refused any other). */
export function interceptEntries(patterns: readonly string[]): InterceptEntry[] {
  return patterns.map((p) => {
    const entry = parseInterceptEntry(p);
    if (typeof entry === 'string') throw new Error(`intercept entry not validated: ${entry}`);
    return entry;
  });
}

/** The host patterns of the entries, ports left out (leaf certificates, CA name constraints, allow checks). */
export function interceptHosts(patterns: readonly string[]): string[] {
  return [...new Set(interceptEntries(patterns).map((e) => e.host))];
}

export function isWildcard(entry: InterceptEntry): boolean {
  return entry.host === '*' || entry.host.startsWith('*.');
}

/** The origin keep-warm connects to for an entry (`https://host[:port]`), or null for a wildcard. */
export function interceptOrigin(entry: InterceptEntry): string | null {
  if (isWildcard(entry)) return null;
  const host = isIP(entry.host) === 6 ? `[${entry.host}]` : entry.host;
  return new URL(`https://${host}:${entry.port ?? DEFAULT_INTERCEPT_PORT}`).origin;
}
