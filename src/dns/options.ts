/**
 * Options of the DNS cache. Their schema is config's (config/dns-schema.ts); here they are checked
 * once, when the cache is built.
 */

import { type DnsOptions, dnsSchema } from '../config/dns-schema.js';
import { ConfigError } from '../errors.js';

export * from '../config/dns-schema.js';

/**
 * Validates once, for `createDnsCache`; throws a `ConfigError` whose lines name the key path and value,
 * e.g. `dns.servers[0]: "nope:53": "nope" is not an IP address (nameservers must be IP literals)`.
 */
export function parseDnsOptions(input: unknown, origin = 'dns'): DnsOptions {
  const result = dnsSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const where = (path: readonly PropertyKey[]) =>
        [origin, ...path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('');
      if (issue.code === 'invalid_key') {
        // A bad key of `hosts`: name the key, not its value.
        const key = String(issue.path[issue.path.length - 1]);
        return `${where(issue.path.slice(0, -1))}: "${key}" is not a host name`;
      }
      const value = valueAt(input, issue.path);
      return value === undefined
        ? `${where(issue.path)}: ${issue.message}`
        : `${where(issue.path)}: ${JSON.stringify(value)}: ${issue.message}`;
    }),
  );
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}
