/**
 * Forwarding headers: what a proxy tells the next hop about the original request and its client
 * (`Forwarded`, RFC 7239, and the `X-Forwarded-*` family). Origins build absolute URLs and make
 * decisions from them, so a client that may set them can make an origin answer for another host,
 * scheme or prefix; stored, that answer would reach every other client (cache poisoning).
 *
 * So a client's forwarding headers are removed in front/ (request-hygiene.ts) unless
 * `proxy.trustForwarded` names it (a deployment behind another proxy); kept ones are part of the
 * cache key (cache/key.ts). Upstream, sidecache adds its own hop (addForwardingHeaders): it appends
 * the client address to `X-Forwarded-For`, sets `X-Forwarded-Proto` when no trusted value came,
 * and appends an element to a trusted `Forwarded`. It starts no `Forwarded` of its own: the
 * X-Forwarded pair is what most origins read, and two sets of fields could disagree.
 */

import { type Cidr, cidrContains, parseAddress, parseCidr, unmapV4 } from './address-ranges.js';
import type { ClientInfo } from './exchange.js';
import { appendHeader } from './hop-by-hop.js';

/** Request headers by which proxies describe the original request and client (lower-case). */
export const FORWARDING_HEADERS: readonly string[] = Object.freeze([
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-by',
  'x-original-forwarded-for',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'front-end-https',
  'x-url-scheme',
]);

export const FORWARDING_HEADER_SET: ReadonlySet<string> = new Set(FORWARDING_HEADERS);

/** Whether a client (by its socket address) may set forwarding headers. */
export type ForwardedTrust = (address: string | undefined) => boolean;

const TRUST_NONE: ForwardedTrust = () => false;
const TRUST_ALL: ForwardedTrust = () => true;

/**
 * `proxy.trustForwarded`: false (nobody), true (every client of the proxy listener) or address
 * blocks (`10.0.0.0/8`, `::1`). Entries are validated by the schema; a bad one throws here.
 */
export function compileForwardedTrust(setting: boolean | readonly string[]): ForwardedTrust {
  if (setting === true) return TRUST_ALL;
  if (setting === false || setting.length === 0) return TRUST_NONE;
  const blocks: Cidr[] = setting.map((text) => {
    const cidr = parseCidr(text);
    if (cidr === null) throw new Error(`proxy.trustForwarded: "${text}" is not an address or CIDR`);
    return cidr;
  });
  return (address) => {
    const parsed = address === undefined ? null : parseAddress(address);
    if (parsed === null) return false;
    const addr = unmapV4(parsed);
    return blocks.some((b) => cidrContains(b, addr));
  };
}

/**
 * Adds sidecache's hop to headers going upstream (the client's own forwarding headers are
 * already gone unless trusted): X-Forwarded-For gets the client address appended,
 * X-Forwarded-Proto is set unless a trusted one came, and a trusted Forwarded gets an element.
 */
export function addForwardingHeaders(headers: Record<string, string | string[]>, client: ClientInfo): void {
  appendHeader(headers, 'x-forwarded-for', client.address);
  if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = client.protocol;
  if (headers['forwarded'] !== undefined) {
    appendHeader(headers, 'forwarded', `for=${forwardedNode(client.address)};proto=${client.protocol}`);
  }
}

/** A node for a Forwarded `for=` parameter (RFC 7239 §6): IPv6 bracketed and quoted. */
function forwardedNode(address: string): string {
  if (address === '') return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}
