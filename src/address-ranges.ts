/**
 * Pure IP address logic for the egress policy (guard/), the config's address blocks (config/) and
 * forwarded.ts: parsing IPv4/IPv6 text into bytes, CIDR blocks, and the special-purpose ranges
 * (IANA IPv4/IPv6 Special-Purpose Address Registries, RFC 6890) that a proxy must never reach by
 * default. No I/O; a leaf module.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** Why an address is not an ordinary public unicast address; `public` when it is. */
export type AddressRange =
  | 'public'
  | 'private'
  | 'loopback'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'documentation'
  | 'benchmarking'
  | 'reserved';

export interface ParsedAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

export interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly bits: number;
  /** The block as written back: `10.0.0.0/8`. */
  readonly text: string;
}

function parseIPv4(text: string): Uint8Array | null {
  if (!isIPv4(text)) return null;
  return Uint8Array.from(text.split('.').map(Number));
}

/** A host as written in a URL or authority, without the brackets around an IPv6 literal. */
export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function parseIPv6(text: string): Uint8Array | null {
  const t = stripBrackets(text);
  const bare = t.split('%', 1)[0] as string; // zone id (fe80::1%eth0)
  if (!isIPv6(bare)) return null;
  let groups: number[] = [];
  let head = bare;
  let v4: Uint8Array | null = null;
  const lastColon = head.lastIndexOf(':');
  if (head.slice(lastColon + 1).includes('.')) {
    v4 = parseIPv4(head.slice(lastColon + 1));
    if (v4 === null) return null;
    head = `${head.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.split('::') as [string, string | undefined];
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const l = toGroups(left);
  if (right === undefined) groups = l;
  else {
    const r = toGroups(right);
    groups = [...l, ...new Array<number>(8 - l.length - r.length).fill(0), ...r];
  }
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  if (v4) bytes.set(v4, 12);
  return bytes;
}

/** An IPv4 or IPv6 literal (brackets and zone ids accepted), or null. */
export function parseAddress(text: string): ParsedAddress | null {
  const v4 = parseIPv4(text);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 ? { family: 6, bytes: v6 } : null;
}

/** `10.0.0.0/8`, `::1/128`, or a bare address (a /32 or /128); null when not one. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf('/');
  const addr = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (addr === null) return null;
  const max = addr.family === 4 ? 32 : 128;
  const bitsText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  if (bits > max) return null;
  return { family: addr.family, bytes: addr.bytes, bits, text: slash === -1 ? `${text}/${max}` : text };
}

export function cidrContains(cidr: Cidr, addr: ParsedAddress): boolean {
  if (cidr.family !== addr.family) return false;
  let left = cidr.bits;
  for (let i = 0; left > 0; i++, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if (((cidr.bytes[i] as number) & mask) !== ((addr.bytes[i] as number) & mask)) return false;
  }
  return true;
}

function block(text: string): Cidr {
  const c = parseCidr(text);
  if (c === null) throw new Error(`bad built-in CIDR ${text}`);
  return c;
}

/** IPv4 special-purpose blocks; anything else is public. */
const V4_RANGES: readonly (readonly [Cidr, AddressRange])[] = [
  [block('0.0.0.0/8'), 'unspecified'],
  [block('10.0.0.0/8'), 'private'],
  [block('100.64.0.0/10'), 'cgnat'],
  [block('127.0.0.0/8'), 'loopback'],
  [block('169.254.0.0/16'), 'link_local'], // includes 169.254.169.254, cloud metadata
  [block('172.16.0.0/12'), 'private'],
  [block('192.0.0.0/24'), 'reserved'],
  [block('192.0.2.0/24'), 'documentation'],
  [block('192.88.99.0/24'), 'reserved'],
  [block('192.168.0.0/16'), 'private'],
  [block('198.18.0.0/15'), 'benchmarking'],
  [block('198.51.100.0/24'), 'documentation'],
  [block('203.0.113.0/24'), 'documentation'],
  [block('224.0.0.0/4'), 'multicast'],
  [block('240.0.0.0/4'), 'reserved'], // includes 255.255.255.255
];

/** IPv6 blocks checked in order; addresses that embed IPv4 are judged by the IPv4 inside. */
const V6_RANGES: readonly (readonly [Cidr, AddressRange])[] = [
  [block('::/128'), 'unspecified'],
  [block('::1/128'), 'loopback'],
  [block('::/96'), 'reserved'], // IPv4-compatible (deprecated)
  [block('64:ff9b:1::/48'), 'reserved'], // local-use NAT64
  [block('100::/64'), 'reserved'], // discard-only
  [block('2001:db8::/32'), 'documentation'],
  [block('2001::/23'), 'reserved'], // IETF protocol assignments, Teredo
  [block('fc00::/7'), 'private'], // unique local
  [block('fe80::/10'), 'link_local'],
  [block('fec0::/10'), 'private'], // site-local (deprecated)
  [block('ff00::/8'), 'multicast'],
];
const V4_MAPPED = block('::ffff:0:0/96');
const NAT64 = block('64:ff9b::/96');
const SIX_TO_FOUR = block('2002::/16');
const GLOBAL_UNICAST = block('2000::/3');

function rangeOfV4(bytes: Uint8Array): AddressRange {
  const addr: ParsedAddress = { family: 4, bytes };
  for (const [cidr, range] of V4_RANGES) if (cidrContains(cidr, addr)) return range;
  return 'public';
}

/** The special-purpose range `addr` falls in, or `public`. */
export function rangeOf(addr: ParsedAddress): AddressRange {
  if (addr.family === 4) return rangeOfV4(addr.bytes);
  if (cidrContains(V4_MAPPED, addr) || cidrContains(NAT64, addr)) return rangeOfV4(addr.bytes.slice(12));
  if (cidrContains(SIX_TO_FOUR, addr)) return rangeOfV4(addr.bytes.slice(2, 6));
  for (const [cidr, range] of V6_RANGES) if (cidrContains(cidr, addr)) return range;
  return cidrContains(GLOBAL_UNICAST, addr) ? 'public' : 'reserved';
}

/** An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, a dual-stack listener's peer) as the IPv4 address it carries; any other address unchanged. */
export function unmapV4(addr: ParsedAddress): ParsedAddress {
  return addr.family === 6 && cidrContains(V4_MAPPED, addr)
    ? { family: 4, bytes: addr.bytes.slice(12) }
    : addr;
}

/** `rangeOf` for text; an unparseable address is `reserved` (never connected to). */
export function rangeOfText(text: string): AddressRange {
  const addr = parseAddress(text);
  return addr === null ? 'reserved' : rangeOf(addr);
}
