/**
 * The egress policy: where sidecache may open connections, judged on the **address** connected to,
 * not on the name asked for (smokescreen's rule). Private (RFC 1918, fc00::/7), loopback,
 * link-local (169.254.169.254 metadata, fe80::/10), CGNAT, multicast, unspecified, documentation
 * and other reserved addresses are refused unless an `allow` entry names the address or a block
 * holding it (`10.0.0.0/8`, `127.0.0.1`, `::1/128`). A host name in `allow` admits the *name*;
 * it never admits a private address.
 *
 * The check lives in the lookup handed to every connector (upstream pools, CONNECT tunnels,
 * upgrades), which knows the port it connects to: the address that passed is the one the socket
 * connects to, so DNS rebinding has no window. IP literals skip lookup, so `checkLiteral` judges
 * them before anything is dispatched.
 *
 * A route's own origin is operator intent: its host and port (as written in the route, a name or a
 * literal) are reached at whatever address the name resolves to, private ones included (a service
 * name in a pod or Compose network). That covers every way of reaching that exact endpoint: the
 * route, a forward-proxy request or CONNECT to it. Everything else stays judged on its address:
 * hosts admitted by `allow` patterns, the same name on another port, other spellings of the name
 * (`name.` is an absolute name that may resolve elsewhere), and redirects the client follows.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import {
  type Cidr,
  cidrContains,
  parseAddress,
  parseCidr,
  rangeOf,
  stripBrackets,
} from '../address-ranges.js';
import type { Route } from '../config/runtime.js';
import { ConfigError, PrivateAddressError } from '../errors.js';

/**
 * The resolver a connector uses for a connection to `port` (the egress policy needs the port: a
 * route origin is a host *and* a port).
 */
export type ConnectLookup = (port: number) => LookupFunction;

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
  /** True when `host` and `port` are a route's own origin (host compared as written there). */
  isRouteOrigin(host: string, port: number): boolean;
  /**
   * `lookup` for connections to `port`: a route origin's own host gets every address; for other
   * names refused addresses are filtered out, and a name left with none fails.
   */
  lookupTo(lookup: LookupFunction, port: number): LookupFunction;
  explain(): string;
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
  /** `name port` of route origins written as names (the URL's lower-case hostname). */
  const namedOrigins = new Set<string>();
  for (const route of opts.routes) {
    const url = new URL(route.origin);
    const host = stripBrackets(url.hostname);
    const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
    const addr = parseAddress(host);
    if (addr === null) namedOrigins.add(`${host} ${port}`);
    else literalOrigins.add(`${addr.bytes.join('.')} ${port}`);
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

  function filteredLookup(lookup: LookupFunction, port: number): LookupFunction {
    return ((hostname: string, options: LookupOptions, callback: LookupCallback) => {
      // The route's own origin: whatever its name resolves to is where the operator sent it.
      if (namedOrigins.has(`${hostname} ${port}`)) {
        lookup(hostname, options, callback as never);
        return;
      }
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
    isRouteOrigin(host, port) {
      return namedOrigins.has(`${host} ${port}`);
    },
    lookupTo: filteredLookup,
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
