/**
 * What `sidecache check-config` can say about where the config's names lead, resolved from here
 * through the configured DNS (`dns.hosts` included), each lookup bounded by a short timeout. A name
 * that does not resolve here is said so and never fails the check: sidecache may run elsewhere.
 *
 * - A route origin is reachable at whatever its name resolves to (egress-policy.ts): the line says
 *   so when that is a private address, the case users meet in pods and Compose networks.
 * - An `allow` name or pattern admits names, never private addresses: a name resolving to one, or
 *   a pattern whose names evidently do (a private-use suffix such as `.internal`, or a route
 *   origin under it resolving privately), is refused unless the address block is in `allow`.
 */

import { parseAddress, rangeOfText, stripBrackets } from '../address-ranges.js';
import type { Runtime } from '../config/runtime.js';
import { dnsCodeOf } from '../dns/dns-failure.js';
import { createEgressPolicy } from './egress-policy.js';

/** Resolves a name to its addresses; rejects with an error carrying a DNS `code` when it cannot. */
export type ResolveAll = (host: string) => Promise<readonly string[]>;

/**
 * Suffixes whose names live on private networks (RFC 6761/6762/8375, ICANN's `.internal`, the
 * Kubernetes cluster domain, common in-house ones); longest first, so the most specific is named.
 */
const PRIVATE_USE_SUFFIXES = [
  'cluster.local',
  'home.arpa',
  'localhost',
  'internal',
  'intranet',
  'private',
  'local',
  'corp',
  'lan',
];

type Resolution =
  | { readonly ok: true; readonly addresses: readonly string[] }
  | { readonly ok: false; readonly why: string };

async function resolveBounded(resolve: ResolveAll, host: string, timeoutMs: number): Promise<Resolution> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Resolution>((done) => {
    timer = setTimeout(() => done({ ok: false, why: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const lookup = resolve(host).then(
    (addresses): Resolution =>
      addresses.length > 0 ? { ok: true, addresses } : { ok: false, why: 'no address' },
    (err: unknown): Resolution => ({ ok: false, why: dnsCodeOf(err) }),
  );
  try {
    return await Promise.race([lookup, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(addresses: readonly string[]): string {
  const shown = addresses.slice(0, 4).map((a) => `${a} (${rangeOfText(a)})`);
  if (addresses.length > 4) shown.push(`and ${addresses.length - 4} more`);
  return shown.join(', ');
}

/** The lines check-config prints about reachability; resolves every name at most once. */
export async function explainReachability(
  runtime: Runtime,
  resolve: ResolveAll,
  timeoutMs: number,
): Promise<string[]> {
  const policy = createEgressPolicy({ allow: runtime.config.allow, routes: runtime.routes });
  const cache = new Map<string, Promise<Resolution>>();
  const lookup = (host: string): Promise<Resolution> => {
    let pending = cache.get(host);
    if (pending === undefined) {
      pending = resolveBounded(resolve, host, timeoutMs);
      cache.set(host, pending);
    }
    return pending;
  };
  const allowedBlocks = runtime.config.allow.filter((e) => e.includes('/') || parseAddress(e) !== null);
  const refused = (host: string, addresses: readonly string[]): string[] =>
    addresses.filter((a) => policy.refusal(host, a) !== null);
  /** Route origin names and their ports: reached there whatever they resolve to. */
  const routePorts = new Map<string, string[]>();
  for (const route of runtime.routes) {
    const url = new URL(route.origin);
    const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
    routePorts.set(url.hostname, [...(routePorts.get(url.hostname) ?? []), port]);
  }

  const routeLines = runtime.routes.map(async (route) => {
    const url = new URL(route.origin);
    const host = stripBrackets(url.hostname);
    if (parseAddress(host) !== null) {
      const range = rangeOfText(host);
      return range === 'public'
        ? null
        : `route "${route.name}": ${host} is a ${range} address: reachable because it is a route origin`;
    }
    const r = await lookup(host);
    if (!r.ok) {
      return (
        `route "${route.name}": ${host} does not resolve here (${r.why}); ` +
        'where sidecache runs it is reached at whatever it resolves to, private addresses included'
      );
    }
    const bad = refused(host, r.addresses);
    return bad.length > 0
      ? `route "${route.name}": ${host} resolves to ${describe(r.addresses)}: reachable because it is a route origin`
      : `route "${route.name}": ${host} resolves to ${describe(r.addresses)}`;
  });

  /** `unless ...`, suggesting the block of `address` when one is known. */
  const unless = (address?: string): string => {
    const example =
      address === undefined
        ? '"10.0.0.0/8"'
        : `"${address}${address.includes(':') ? '/128' : '/32'}" or its block`;
    return allowedBlocks.length > 0
      ? `unless the address is in an allowed block (allowed: ${allowedBlocks.join(', ')}; add ${example} to "allow")`
      : `unless the address block is allowed (add ${example} to "allow")`;
  };

  const allowLines = runtime.config.allow.map(async (entry) => {
    if (entry === '*' || allowedBlocks.includes(entry)) return null;
    if (entry.startsWith('*.')) {
      const suffix = entry.slice(2).toLowerCase();
      const evidence: string[] = [];
      let seen: string | undefined;
      const privateUse = PRIVATE_USE_SUFFIXES.find((s) => suffix === s || suffix.endsWith(`.${s}`));
      if (privateUse !== undefined) evidence.push(`names under .${privateUse} are for private networks`);
      for (const route of runtime.routes) {
        const host = stripBrackets(new URL(route.origin).hostname);
        if (!host.endsWith(`.${suffix}`)) continue;
        const r = await lookup(host);
        const bad = r.ok ? refused(host, r.addresses) : [];
        if (bad.length > 0) {
          seen ??= bad[0];
          evidence.push(`${host} resolves to ${bad[0] as string}`);
        }
      }
      if (evidence.length === 0) return null;
      return (
        `allow pattern "${entry}" matches names that resolve privately (${evidence.join('; ')}), ` +
        `so they will be refused ${unless(seen)}`
      );
    }
    const r = await lookup(entry);
    if (!r.ok) return `allow "${entry}": does not resolve here (${r.why})`;
    const bad = refused(entry, r.addresses);
    if (bad.length === 0) return `allow "${entry}": resolves to ${describe(r.addresses)}`;
    const ports = routePorts.get(entry.toLowerCase());
    return (
      `allow "${entry}": resolves to ${describe(r.addresses)}, so requests to it will be refused ` +
      unless(bad[0]) +
      (bad.length < r.addresses.length ? '; its public addresses are still reached' : '') +
      (ports ? `; as a route origin it is reached on port ${ports.join(', ')} regardless` : '')
    );
  });

  const lines = await Promise.all([...routeLines, ...allowLines]);
  return lines.filter((l): l is string => l !== null);
}
