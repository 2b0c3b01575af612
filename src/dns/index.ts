/**
 * The DNS module: a TTL cache (negative caching, prefetch, serve-stale, in-flight de-duplication) in front
 * of a resolver (system | udp | doh), plugged into undici's `connect: { lookup }`. Not a pipeline stage.
 */
export type { RecordType, RequestedFamily, ResolvedAddress } from './address-order.js';
export {
  createDnsCache,
  type DnsCache,
  type DnsCacheDeps,
  type DnsLookupEvent,
  type DnsLookupResult,
  type DnsQueryEvent,
  type ResolveOptions,
} from './dns-cache.js';
export { dnsErrorFrom, type LookupError } from './dns-failure.js';
export {
  DNS_DEFAULTS,
  DNS_MODES,
  type DnsFlags,
  type DnsMode,
  type DnsOptions,
  type DnsOptionsInput,
  dnsOverridesFromFlags,
  dnsSchema,
  FAMILY_ORDERS,
  type FamilyOrder,
  parseDnsOptions,
} from './options.js';
export { type Answer, createResolver, type Resolver } from './resolver.js';
