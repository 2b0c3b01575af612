/**
 * X.509 Name Constraints (RFC 5280 §4.2.1.10) for the interception CA: made from the intercept
 * list when `tls.caNameConstraints` is on, read back from an existing CA, and checked against the
 * intercept list so that a host the CA may not sign for is reported (clients reject such leaves).
 *
 * A DNS constraint names a domain and every name under it (`api.example.com` also permits
 * `x.api.example.com`; `*.example.com` becomes `example.com`); a leading dot permits only names
 * under it. An IP literal becomes a single-address iPAddress constraint. A list without IP
 * literals excludes every address (0.0.0.0/0, ::/0) and a list without names excludes every name,
 * since a constraint limits only the name forms it lists. Pure (no X.509 code): the extension itself
 * is written and read in ca.ts.
 */
import { BlockList, isIP } from 'node:net';
import { interceptEntries } from '../config/intercept-entry.js';
import { ConfigError } from '../errors.js';

/** What a CA's Name Constraints permit and exclude: DNS names and IP blocks (CIDR text). */
export interface CaNameConstraints {
  readonly permittedDns: readonly string[];
  readonly excludedDns: readonly string[];
  readonly permittedIp: readonly string[];
  readonly excludedIp: readonly string[];
}

/** The constraints that permit exactly the intercept list's hosts (and the names under them). */
export function constraintsFor(intercept: readonly string[]): CaNameConstraints {
  const dns = new Set<string>();
  const ips = new Set<string>();
  // Ports play no part: a certificate names hosts.
  for (const { host } of interceptEntries(intercept)) {
    if (host === '*') {
      throw new ConfigError([
        'tls.caNameConstraints: "intercept" lists "*"; a CA constrained to every name constrains nothing. ' +
          'List the intercepted hosts, or turn tls.caNameConstraints off',
      ]);
    }
    const family = isIP(host);
    if (family !== 0) ips.add(`${host}/${family === 4 ? 32 : 128}`);
    else dns.add(host.startsWith('*.') ? host.slice(2) : host);
  }
  if (dns.size === 0 && ips.size === 0) {
    throw new ConfigError([
      'tls.caNameConstraints: "intercept" is empty; there is nothing to constrain the CA to',
    ]);
  }
  return {
    permittedDns: [...dns],
    excludedDns: dns.size === 0 ? [''] : [],
    permittedIp: [...ips],
    excludedIp: ips.size === 0 ? ['0.0.0.0/0', '::/0'] : [],
  };
}

/** Whether `name` is `constraint` or under it (a leading dot: only under it; empty: any name). */
function dnsWithin(name: string, constraint: string): boolean {
  const c = constraint.endsWith('.') ? constraint.slice(0, -1) : constraint;
  if (c === '') return true;
  if (c.startsWith('.')) return name.endsWith(c);
  return name === c || name.endsWith(`.${c}`);
}

function blockOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr = '', prefix = ''] = cidr.split('/');
    const family = isIP(addr);
    if (family === 0) continue;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === '') list.addAddress(addr, type);
    else list.addSubnet(addr, Number(prefix), type);
  }
  return list;
}

/**
 * The entries of the intercept list that `c` does not cover: a client that checks Name
 * Constraints (every current browser, OpenSSL, Go, Node) rejects leaves for them. `*` is never
 * covered by a constrained CA.
 */
export function outsideConstraints(c: CaNameConstraints, intercept: readonly string[]): string[] {
  const permittedIp = blockOf(c.permittedIp);
  const excludedIp = blockOf(c.excludedIp);
  const dnsOk = (name: string): boolean =>
    (c.permittedDns.length === 0 || c.permittedDns.some((p) => dnsWithin(name, p))) &&
    !c.excludedDns.some((e) => dnsWithin(name, e));
  const outside: string[] = [];
  for (const { pattern, host } of interceptEntries(intercept)) {
    let ok: boolean;
    if (host === '*') ok = false;
    else if (host.startsWith('*.')) {
      // Every name under the domain: a name one label below stands for all of them, and no
      // excluded name may lie under the domain.
      const base = host.slice(2);
      ok = dnsOk(`x.${base}`) && !c.excludedDns.some((e) => dnsWithin(e.replace(/^\./, ''), base));
    } else {
      const family = isIP(host);
      if (family === 0) ok = dnsOk(host);
      else {
        const type = family === 4 ? 'ipv4' : 'ipv6';
        ok = (c.permittedIp.length === 0 || permittedIp.check(host, type)) && !excludedIp.check(host, type);
      }
    }
    if (!ok) outside.push(pattern);
  }
  return outside;
}

/** One line for logs and `check-config`. */
export function describeConstraints(c: CaNameConstraints): string {
  const part = (label: string, items: readonly string[]): string[] =>
    items.length > 0 ? [`${label} ${items.map((i) => (i === '' ? '(every name)' : i)).join(', ')}`] : [];
  return [
    ...part('permits', [...c.permittedDns, ...c.permittedIp]),
    ...part('excludes', [...c.excludedDns, ...c.excludedIp]),
  ].join('; ');
}
