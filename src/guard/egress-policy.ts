/**
 * The egress policy: where sidecache may open connections, judged on the **address** connected to,
 * not on the name asked for (smokescreen's rule). Private (RFC 1918, fc00::/7), loopback,
 * link-local (169.254.169.254 metadata, fe80::/10), CGNAT, multicast, unspecified, documentation
 * and other reserved addresses are refused unless an `allow` entry names the address or a block
 * holding it (`10.0.0.0/8`, `127.0.0.1`, `::1/128`). A host name in `allow` admits the *name*;
 * it never admits a private address.
 *
 * The check lives in the lookup handed to every connector (upstream pools, CONNECT tunnels,
 * upgrades): the address that passed is the one the socket connects to, so DNS rebinding has no
 * window. IP literals skip lookup, so `checkLiteral` judges them before anything is dispatched.
 * A route origin written as an IP literal is the operator's explicit choice: that address and port
 * are allowed. A route origin written as a name is resolved and judged like any other name (a
 * private service by name needs its address block in `allow`).
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { Route } from '../config/runtime.js';
import { ConfigError, PrivateAddressError } from '../errors.js';
import { type Cidr, cidrContains, parseAddress, parseCidr, rangeOf } from './address-ranges.js';

export interface EgressPolicyOptions {
  /** The `allow` entries; those that are addresses or CIDR blocks allow addresses. */
  readonly allow: readonly string[];
  readonly routes: readonly Pick<Route, 'origin'>[];
}

export interface EgressPolicy {
  /** The refusal for connecting to `address` on behalf of `host`, or null when allowed. */
  refusal(host: string, address: string): PrivateAddressError | null;
  /** Throws PrivateAddressError when `host` is an IP literal that may not be reached on `port`. */
  checkLiteral(host: string, port: number): void;
  /** The `allow` block holding `host` when it is an IP literal, else null (name-level admission). */
  allowsLiteral(host: string): string | null;
  /** Wraps a lookup so that refused addresses are filtered out, and a name left with none fails. */
  wrapLookup(lookup: LookupFunction): LookupFunction;
  explain(): string;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

export function createEgressPolicy(opts: EgressPolicyOptions): EgressPolicy {
  const blocks: Cidr[] = [];
  for (const entry of opts.allow) {
    const looksLikeAddress = entry.includes('/') || parseAddress(entry) !== null;
    if (!looksLikeAddress) continue;
    const cidr = parseCidr(stripBrackets(entry));
    if (cidr === null) throw new ConfigError([`allow: "${entry}" is not a valid address or CIDR block`]);
    blocks.push(cidr);
  }
  /** `address port` of route origins written as IP literals. */
  const literalOrigins = new Set<string>();
  for (const route of opts.routes) {
    const url = new URL(route.origin);
    const host = stripBrackets(url.hostname);
    const addr = parseAddress(host);
    if (addr === null) continue;
    literalOrigins.add(`${addr.bytes.join('.')} ${url.port === '' ? defaultPort(url.protocol) : url.port}`);
  }

  function blockFor(address: string): string | null {
    const addr = parseAddress(address);
    if (addr === null) return null;
    for (const b of blocks) if (cidrContains(b, addr)) return b.text;
    return null;
  }

  function refusal(host: string, address: string): PrivateAddressError | null {
    const addr = parseAddress(address);
    const range = addr === null ? 'reserved' : rangeOf(addr);
    if (range === 'public' || blockFor(address) !== null) return null;
    return new PrivateAddressError(
      `${host} resolved to ${address} (${range}), which sidecache does not connect to; ` +
        `add the address or its block to "allow" (e.g. "${address.includes(':') ? `${address}/128` : `${address}/32`}") if it is meant to be reached`,
      { detail: { host, address, range } },
    );
  }

  return {
    refusal,
    checkLiteral(host, port) {
      const bare = stripBrackets(host);
      const addr = parseAddress(bare);
      if (addr === null) return;
      if (literalOrigins.has(`${addr.bytes.join('.')} ${port}`)) return;
      const refused = refusal(bare, bare);
      if (refused) throw refused;
    },
    allowsLiteral(host) {
      return blockFor(stripBrackets(host));
    },
    wrapLookup(lookup) {
      return ((hostname: string, options: LookupOptions, callback: LookupCallback) => {
        const wantAll = options.all === true;
        lookup(hostname, { ...options, all: true }, ((
          err: NodeJS.ErrnoException | null,
          addresses: string | LookupAddress[],
        ) => {
          if (err) {
            callback(err, wantAll ? [] : '', 0);
            return;
          }
          const list = Array.isArray(addresses) ? addresses : [{ address: addresses, family: 4 }];
          const kept = list.filter((a) => refusal(hostname, a.address) === null);
          if (kept.length === 0) {
            const first = list[0];
            const error =
              first === undefined
                ? Object.assign(new Error(`lookup of ${hostname} gave no address`), { code: 'ENOTFOUND' })
                : (refusal(hostname, first.address) as PrivateAddressError);
            callback(error as NodeJS.ErrnoException, wantAll ? [] : '', 0);
            return;
          }
          if (wantAll) callback(null, kept);
          else callback(null, (kept[0] as LookupAddress).address, (kept[0] as LookupAddress).family);
        }) as LookupCallback);
      }) as LookupFunction;
    },
    explain() {
      return blocks.length > 0
        ? `connections to private, loopback, link-local and reserved addresses are refused, except ${blocks.map((b) => b.text).join(', ')}`
        : 'connections to private, loopback, link-local and reserved addresses are refused';
    },
  };
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;
