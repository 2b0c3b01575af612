/**
 * The three resolver kinds behind one small interface. A resolver asks once (its own tries included)
 * and never caches: caching, deadlines and de-duplication belong to dns-cache.ts.
 *
 *   system  dns.promises.lookup (getaddrinfo: /etc/hosts, nsswitch, the OS resolver); no TTLs
 *   udp     Node's c-ares Resolver on the configured nameservers; UDP, TCP when an answer is truncated
 *   doh     tangerine (RFC 8484) over its own undici Agent, so DoH never goes through the proxy's pools
 */
import { Resolver as NodeResolver, lookup as systemLookup } from 'node:dns/promises';
import type { RequestFunction, Tangerine as TangerineClass } from 'tangerine';
import type { request as undiciRequest } from 'undici';
import {
  formatAuthority,
  formatNameserver,
  parseServerAddress,
  type ServerAddress,
} from '../config/nameserver-address.js';
import { upstreamTrust } from '../tls/trust.js';
import { Agent } from '../undici-parts.js';
import type { RecordType } from './address-order.js';
import { DnsTransportError } from './dns-failure.js';
import type { DnsMode, DnsOptions } from './options.js';

export interface Answer {
  /** The addresses of the record set, in the order the resolver gave them. Never empty. */
  readonly addresses: readonly string[];
  /** The record set's TTL (the lowest of its records) in ms; null when the resolver does not say. */
  readonly ttlMs: number | null;
}

export interface Resolver {
  readonly mode: DnsMode;
  /**
   * Asks for the `type` records of `name` (already normalised). Rejects with an error whose `code` is the
   * DNS code: ENOTFOUND (NXDOMAIN), ENODATA (no record of that type), ETIMEOUT, ESERVFAIL, ECONNREFUSED...
   * Stops asking, as far as the kind allows, when `signal` aborts.
   */
  query(name: string, type: RecordType, signal: AbortSignal): Promise<Answer>;
  /** Releases sockets and pending queries. */
  close(): Promise<void>;
}

/**
 * tangerine (and the HTTP client it brings) is loaded only when a DoH resolver is made: idle memory.
 * It is CommonJS (`module.exports = Tangerine`) while its types declare an ES default export; the
 * default of the dynamic import is the class itself at run time.
 */
async function loadTangerine(): Promise<typeof TangerineClass> {
  return (await import('tangerine')).default as unknown as typeof TangerineClass;
}

/** undici's `request`, from its index (all of undici), loaded with tangerine: DoH only. */
async function loadRequest(): Promise<typeof undiciRequest> {
  return (await import('undici')).request;
}

type ResolverOptions = Pick<DnsOptions, 'mode' | 'servers' | 'doh' | 'timeoutMs' | 'tries'>;

export function createResolver(options: ResolverOptions): Resolver {
  switch (options.mode) {
    case 'system':
      return createSystemResolver();
    case 'udp':
      return createUdpResolver(
        options.servers.map((s) => serverAddress(s, false)),
        options,
      );
    case 'doh':
      return createDohResolver(
        options.doh.servers.map((s) => serverAddress(s, true)),
        options,
      );
    default: {
      const never: never = options.mode;
      throw new Error(`unknown dns mode ${String(never)}`);
    }
  }
}

/**
 * The first try's timeout. Both c-ares and tangerine double it on each further try, so with `tries` tries
 * the whole series fits in `timeoutMs`: t + 2t + 4t + ... = (2^tries - 1) t.
 */
export function firstTryTimeoutMs(timeoutMs: number, tries: number): number {
  return Math.max(1, Math.floor(timeoutMs / (2 ** tries - 1)));
}

function serverAddress(text: string, allowHostName: boolean): ServerAddress {
  const parsed = parseServerAddress(text, allowHostName);
  // The schema has checked every address already; this is a programming error if it fires.
  if (typeof parsed === 'string') throw new TypeError(`${text}: ${parsed}`);
  return parsed;
}

function createSystemResolver(): Resolver {
  return {
    mode: 'system',
    async query(name, type) {
      // getaddrinfo cannot be cancelled; the cache's own deadline stops waiting for it.
      const family = type === 'A' ? 4 : 6;
      const found = await systemLookup(name, { family, all: true, verbatim: true });
      const addresses = found.filter((a) => a.family === family).map((a) => a.address);
      if (addresses.length === 0)
        throw Object.assign(new Error(`lookup ENODATA ${name}`), { code: 'ENODATA' });
      return { addresses, ttlMs: null };
    },
    async close() {},
  };
}

interface RecordWithTtl {
  address: string;
  ttl: number;
}

function answerFrom(records: readonly (string | RecordWithTtl)[], name: string): Answer {
  const addresses: string[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  for (const r of records) {
    if (typeof r === 'string') addresses.push(r);
    else {
      addresses.push(r.address);
      if (Number.isFinite(r.ttl)) ttl = Math.min(ttl, r.ttl);
    }
  }
  if (addresses.length === 0) throw Object.assign(new Error(`query ENODATA ${name}`), { code: 'ENODATA' });
  return { addresses, ttlMs: Number.isFinite(ttl) ? Math.max(0, ttl) * 1000 : null };
}

function createUdpResolver(servers: readonly ServerAddress[], options: ResolverOptions): Resolver {
  const nameservers = servers.map(formatNameserver);
  const timeout = firstTryTimeoutMs(options.timeoutMs, options.tries);
  const pending = new Set<NodeResolver>();
  return {
    mode: 'udp',
    async query(name, type, signal) {
      // One c-ares channel per query, so that aborting it (cancel) touches no other query.
      const resolver = new NodeResolver({ timeout, tries: options.tries });
      if (nameservers.length > 0) resolver.setServers(nameservers);
      const cancel = () => resolver.cancel();
      signal.addEventListener('abort', cancel, { once: true });
      pending.add(resolver);
      try {
        signal.throwIfAborted();
        const records =
          type === 'A'
            ? await resolver.resolve4(name, { ttl: true })
            : await resolver.resolve6(name, { ttl: true });
        return answerFrom(records, name);
      } finally {
        signal.removeEventListener('abort', cancel);
        pending.delete(resolver);
      }
    },
    async close() {
      for (const resolver of pending) resolver.cancel();
      pending.clear();
    },
  };
}

/** OpenSSL's codes for a certificate or TLS failure, as undici reports them. */
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO|HOSTNAME|^ERR_SSL|^ERR_TLS/;

/** Why a DoH exchange failed, naming the server; a certificate failure says how to trust its CA. */
function transportFailure(server: string, err: unknown): DnsTransportError {
  const code = String((err as { code?: unknown }).code ?? 'ECONNRESET');
  const message = (err as Error).message;
  const text = TLS_CODE.test(code)
    ? `DoH server ${server}: TLS: ${message}; trust its CA with dns.doh.caFile (or upstream.caFile)`
    : `DoH server ${server}: ${message}`;
  return new DnsTransportError(code, text, { cause: err });
}

function createDohResolver(servers: readonly ServerAddress[], options: ResolverOptions): Resolver {
  // Its own small pool: DoH must not go through (or wait on) the proxy's dispatcher and its lookup.
  // An internal resolver's certificate is signed by the operator's CA: dns.doh.caFile (which
  // defaults to upstream.caFile), with the system CAs.
  const ca = upstreamTrust(options.doh.caFile, 'dns.doh.caFile');
  const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000, ...(ca ? { connect: { ca } } : {}) });
  // tangerine keeps only HTTP status failures and reports a transport failure (refused, TLS) as
  // ECANCELLED: the last one of each query is kept here, by the query's signal, to report instead.
  const transportErrors = new WeakMap<AbortSignal, DnsTransportError>();
  const made = Promise.all([loadTangerine(), loadRequest()]).then(
    ([Tangerine, request]) =>
      new Tangerine(
        {
          servers: servers.map(formatAuthority),
          protocol: options.doh.protocol,
          timeout: firstTryTimeoutMs(options.timeoutMs, options.tries),
          tries: options.tries,
          cache: false,
          logger: false,
        },
        ((url, requestOptions) =>
          request(url, { ...requestOptions, dispatcher: agent } as Parameters<typeof undiciRequest>[1]).catch(
            (err: unknown) => {
              const signal = (requestOptions as { signal?: AbortSignal } | undefined)?.signal;
              if (signal !== undefined && !signal.aborted) {
                transportErrors.set(signal, transportFailure(new URL(String(url)).host, err));
              }
              throw err;
            },
          ) as unknown as ReturnType<RequestFunction>) satisfies RequestFunction,
      ),
  );
  made.catch(() => {
    // Reported by the first query that awaits it.
  });
  return {
    mode: 'doh',
    async query(name, type, signal) {
      const controller = new AbortController();
      const abort = () => controller.abort(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      try {
        signal.throwIfAborted();
        const tangerine = await made;
        signal.throwIfAborted();
        const records =
          type === 'A'
            ? await tangerine.resolve4(name, { ttl: true }, controller)
            : await tangerine.resolve6(name, { ttl: true }, controller);
        return answerFrom(records, name);
      } catch (err) {
        // Not cancelled by the caller: the server could not be reached; say why.
        const transport = signal.aborted ? undefined : transportErrors.get(controller.signal);
        throw transport ?? err;
      } finally {
        signal.removeEventListener('abort', abort);
      }
    },
    async close() {
      try {
        (await made).cancel();
      } catch {
        // Never loaded: nothing to cancel.
      }
      await agent.close();
    },
  };
}
