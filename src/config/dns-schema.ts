/**
 * The `dns:` slice of the configuration (schema.ts composes it; dns/ reads it, config/ imports
 * nothing of dns/): which resolver, the cache policy in front of it, and static host overrides.
 * Every duration is in milliseconds and says so in its name. Defaults follow unbound, CoreDNS and
 * RFC 8767 (see docs/dns.md for the why of each).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { isHostName, parseServerAddress } from './nameserver-address.js';

export const DNS_MODES = ['system', 'udp', 'doh'] as const;
export type DnsMode = (typeof DNS_MODES)[number];

export const FAMILY_ORDERS = ['ipv4first', 'ipv6first', 'ipv4only', 'ipv6only'] as const;
export type FamilyOrder = (typeof FAMILY_ORDERS)[number];

function serverAddressSchema(allowHostName: boolean) {
  return z.string().superRefine((s, ctx) => {
    const parsed = parseServerAddress(s, allowHostName);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
  });
}

const ipSchema = z.string().refine((s) => isIP(s) !== 0, 'expected an IPv4 or IPv6 address');

const DEFAULT_DOH = { servers: ['1.1.1.1', '1.0.0.1'], protocol: 'https' as const, caFile: null };

export const dohSchema = z
  .object({
    servers: z
      .array(serverAddressSchema(true))
      .min(1)
      .default(DEFAULT_DOH.servers)
      .describe('DoH servers as HOST[:PORT]; queried at PROTOCOL://HOST[:PORT]/dns-query (RFC 8484).'),
    protocol: z
      .enum(['https', 'http'])
      .default('https')
      .describe('Scheme for DoH requests; "http" only for a trusted local resolver.'),
    caFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        "Extra CA (PEM) trusted, with the system CAs, for the DoH servers' certificates (an internal resolver's CA); null: upstream.caFile.",
      ),
  })
  .strict();

export const dnsSchema = z
  .object({
    mode: z
      .enum(DNS_MODES)
      .default('system')
      .describe('Resolver: "system" (getaddrinfo), "udp" (nameservers over UDP, TCP on truncation), "doh".'),
    servers: z
      .array(serverAddressSchema(false))
      .default([])
      .describe(
        'Nameservers for mode "udp" as IP[:PORT] or [IPv6]:PORT; empty means those of /etc/resolv.conf.',
      ),
    doh: dohSchema.default(DEFAULT_DOH).describe('DNS-over-HTTPS settings for mode "doh".'),
    minTtlMs: z
      .number()
      .int()
      .min(0)
      .default(5_000)
      .describe('Shortest time an answer is kept, whatever its record TTL says.'),
    maxTtlMs: z
      .number()
      .int()
      .min(1)
      .default(86_400_000)
      .describe('Longest time an answer is kept, whatever its record TTL says.'),
    systemTtlMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe('TTL given to answers of the "system" resolver, which reports none (then clamped).'),
    negativeTtlMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe('How long NXDOMAIN (ENOTFOUND) and NODATA (ENODATA) answers are cached.'),
    maxNegativeTtlMs: z
      .number()
      .int()
      .min(0)
      .default(3_600_000)
      .describe('Cap on the negative-caching time, whatever its source.'),
    staleTtlMs: z
      .number()
      .int()
      .min(0)
      .default(3_600_000)
      .describe(
        'How long past its expiry an answer may still be served when every nameserver fails (RFC 8767).',
      ),
    staleAnswerAfterMs: z
      .number()
      .int()
      .min(0)
      .default(1_800)
      .describe(
        'When refreshing an expired answer takes longer than this, serve the stale answer (RFC 8767).',
      ),
    staleRecheckMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe('After a failed refresh, serve stale at once for this long before asking again (RFC 8767).'),
    prefetchRatio: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.1)
      .describe('Refresh a name in use in the background during this last fraction of its TTL; 0 disables.'),
    maxEntries: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Most cached answers (one per name and record type); least recently used go first.'),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .default(5_000)
      .describe('Longest one query may take, every try and nameserver included.'),
    tries: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(3)
      .describe('Tries per nameserver within timeoutMs (udp and doh modes).'),
    family: z
      .enum(FAMILY_ORDERS)
      .default('ipv4first')
      .describe('Address families asked for and their order: ipv4first, ipv6first, ipv4only or ipv6only.'),
    hosts: z
      .record(
        z.string().refine(isHostName, 'expected a host name'),
        z.union([ipSchema, z.array(ipSchema).min(1)]),
      )
      .default({})
      .describe('Static overrides, like /etc/hosts: NAME: IP or NAME: [IP, ...]. Never queried.'),
  })
  .strict()
  .refine((o) => o.minTtlMs <= o.maxTtlMs, {
    message: 'minTtlMs must not be greater than maxTtlMs',
    path: ['minTtlMs'],
  })
  .refine((o) => o.negativeTtlMs <= o.maxNegativeTtlMs, {
    message: 'negativeTtlMs must not be greater than maxNegativeTtlMs',
    path: ['negativeTtlMs'],
  });

export type DnsOptionsInput = z.input<typeof dnsSchema>;
export type DnsOptions = z.output<typeof dnsSchema>;

/** The options with every default filled in. */
export const DNS_DEFAULTS: DnsOptions = Object.freeze(dnsSchema.parse({}));

/** The CLI flags that set DNS options (the lead wires them into yargs). */
export interface DnsFlags {
  /** `--dns HOST[:PORT]`, repeatable, like docker's: sets the nameservers and implies mode "udp". */
  dns?: string | readonly string[] | undefined;
  /** `--dns-mode system|udp|doh`. */
  dnsMode?: string | undefined;
}

/**
 * Turns `--dns` / `--dns-mode` into a partial `dns:` object to merge over the file and environment.
 * `--dns` alone implies `udp`; with `--dns-mode doh` the addresses become the DoH servers instead.
 * Values are checked later by `dnsSchema`, so mistakes are reported with the others.
 */
export function dnsOverridesFromFlags(flags: DnsFlags): Record<string, unknown> {
  const servers = flags.dns === undefined ? [] : typeof flags.dns === 'string' ? [flags.dns] : [...flags.dns];
  const out: Record<string, unknown> = {};
  if (flags.dnsMode !== undefined) out.mode = flags.dnsMode;
  if (servers.length > 0) {
    if (flags.dnsMode === 'doh') out.doh = { servers };
    else {
      out.servers = servers;
      out.mode = flags.dnsMode ?? 'udp';
    }
  }
  return out;
}
