/**
 * Answers that never touch a resolver: IP literals, and the static `hosts:` overrides from the config
 * (like /etc/hosts). Pure: compiled once from the options, then looked up.
 */
import { isIP } from 'node:net';
import type { ResolvedAddress } from './address-order.js';

export interface StaticHosts {
  /** The addresses configured for `name` (already normalised), in the order written; undefined if none. */
  get(name: string): readonly ResolvedAddress[] | undefined;
  readonly size: number;
}

export function compileStaticHosts(hosts: Readonly<Record<string, string | readonly string[]>>): StaticHosts {
  const table = new Map<string, readonly ResolvedAddress[]>();
  for (const [name, value] of Object.entries(hosts)) {
    const list = typeof value === 'string' ? [value] : value;
    const addresses = list.map(
      (address): ResolvedAddress => ({ address, family: isIP(address) === 6 ? 6 : 4 }),
    );
    table.set(normaliseHostName(name), Object.freeze(addresses));
  }
  return {
    get: (name) => table.get(name),
    get size() {
      return table.size;
    },
  };
}

/** Lower case, without the trailing dot of a fully qualified name. */
export function normaliseHostName(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** The address itself when `host` is an IP literal (brackets allowed around IPv6), else undefined. */
export function ipLiteral(host: string): ResolvedAddress | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(bare);
  if (family === 4 || family === 6) return { address: bare, family };
  return undefined;
}
