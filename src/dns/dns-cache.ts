/**
 * The DNS cache in front of every resolver mode. One entry per (name, record type), in an LRU bounded by
 * `maxEntries`. It plugs into undici as `connect: { lookup }` and is not a pipeline stage.
 *
 * A lookup of one record type goes:
 *   static hosts / IP literal ─▶ answered, never queried
 *   fresh entry               ─▶ hit   (in the last `prefetchRatio` of its TTL: refresh in the background)
 *   negative entry            ─▶ negative (ENOTFOUND / ENODATA from cache)
 *   stale entry               ─▶ refresh; serve stale if it fails, or is slower than `staleAnswerAfterMs`,
 *                                or a refresh failed less than `staleRecheckMs` ago (RFC 8767)
 *   nothing                   ─▶ miss: query (one query per name and type, however many callers wait)
 * Every query is bounded by `timeoutMs` with our own timer, whatever the resolver does.
 */
import type { LookupAddress, LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Instance } from '../channels.js';
import { isHostName } from '../config/nameserver-address.js';
import type { DnsError } from '../errors.js';
import {
  familyOf,
  orderAddresses,
  type RecordType,
  type RequestedFamily,
  type ResolvedAddress,
  recordTypesFor,
  requestedFamily,
} from './address-order.js';
import { publishLookup } from './channels.js';
import { dnsCodeOf, dnsError, isNegativeCode, isServerFailureCode, lookupErrorFrom } from './dns-failure.js';
import { answerState, negativeTtlMs, positiveTtlMs, prefetchAt } from './freshness.js';
import { type DnsMode, type DnsOptions, parseDnsOptions } from './options.js';
import { type Answer, createResolver, type Resolver } from './resolver.js';
import { compileStaticHosts, ipLiteral, normaliseHostName } from './static-hosts.js';

/** What one `resolve`/`lookup` call got; the same strings are metric label values. */
export type DnsLookupResult = 'hit' | 'miss' | 'stale' | 'negative' | 'error' | 'prefetch' | 'static';

export interface DnsLookupEvent {
  /** The name asked for, normalised (lower case, no trailing dot). */
  readonly host: string;
  readonly result: DnsLookupResult;
  readonly mode: DnsMode;
  /** How long this lookup took; for `prefetch`, how long the background query took. */
  readonly durationMs: number;
  /** On a hit: how long the last real lookup of that name took (the time this hit saved). Else 0. */
  readonly savedMs: number;
  /** `error`/`negative`: the DNS code; `stale`: the failure that made us serve stale (absent if only slow). */
  readonly dnsCode?: string;
}

/** One query sent to the resolver, whoever triggered it. Failures here are what serve-stale hides. */
export interface DnsQueryEvent {
  readonly host: string;
  readonly type: RecordType;
  readonly mode: DnsMode;
  readonly trigger: 'lookup' | 'prefetch' | 'refresh';
  readonly outcome: 'answer' | 'negative' | 'failure';
  readonly dnsCode?: string;
  readonly durationMs: number;
}

export interface DnsCacheDeps {
  /** Clock for TTL arithmetic (ms). Defaults to `Date.now`. Waiting (deadlines, stale timer) uses real timers. */
  now?: () => number;
  /** Defaults to the resolver of `options.mode`. */
  resolver?: Resolver;
  /** Told about every lookup; default: published on `sidecache:dns:lookup`. */
  onLookup?: (event: DnsLookupEvent) => void;
  /** The instance the published lookups belong to (channels.ts). */
  instance?: Instance;
  onQuery?: (event: DnsQueryEvent) => void;
}

export interface ResolveOptions {
  /** 0 (default): every family of the configured order; 4 or 6: only that one. */
  family?: RequestedFamily;
}

export interface DnsCache {
  readonly mode: DnsMode;
  /** All addresses of `host`, in the configured family order. Rejects with a `DnsError` (SC_ERR_DNS). */
  resolve(host: string, options?: ResolveOptions): Promise<ResolvedAddress[]>;
  /** `net.connect`/undici `connect.lookup`; honours `family` and `all`. Errors carry the DNS `code`. */
  readonly lookup: LookupFunction;
  /** Entries held (one per name and record type), for a cache-size gauge. */
  readonly size: number;
  /**
   * Names to keep fresh whether or not anything asked for them during a TTL (keep-warm's route
   * origins): their answers are prefetched in the last `prefetchRatio` of every TTL. Replaces
   * the previous set; takes effect from the next answer stored for each name.
   */
  keepFresh(hosts: Iterable<string>): void;
  /** Stops prefetch timers, aborts queries in flight and releases the resolver. Idempotent. */
  close(): Promise<void>;
}

interface PositiveEntry {
  readonly kind: 'positive';
  readonly addresses: readonly string[];
  readonly storedAt: number;
  readonly expiresAt: number;
  /** How long the query that produced it took. */
  readonly queryMs: number;
  /** Asked for since it was stored: only such names are prefetched. */
  usedSinceStore: boolean;
  /** When the last refresh failed, and with which code (for RFC 8767's failure recheck). */
  failedAt: number | null;
  failureCode: string | null;
  prefetchTimer: NodeJS.Timeout | null;
}

interface NegativeEntry {
  readonly kind: 'negative';
  readonly dnsCode: string;
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly queryMs: number;
}

type Entry = PositiveEntry | NegativeEntry;

type QueryResult =
  | { readonly ok: true; readonly addresses: readonly string[]; readonly queryMs: number }
  | { readonly ok: false; readonly error: DnsError; readonly negative: boolean };

/** The outcome of one record type within one lookup. */
type TypeOutcome =
  | {
      readonly result: 'hit' | 'miss' | 'stale';
      readonly addresses: readonly string[];
      readonly savedMs: number;
      readonly dnsCode?: string;
    }
  | { readonly result: 'negative' | 'error'; readonly error: DnsError };

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createDnsCache(input: unknown, deps: DnsCacheDeps = {}): DnsCache {
  const options: DnsOptions = parseDnsOptions(input);
  const now = deps.now ?? Date.now;
  const resolver = deps.resolver ?? createResolver(options);
  const mode = resolver.mode;
  const staticHosts = compileStaticHosts(options.hosts);
  const { onQuery } = deps;
  const onLookup = deps.onLookup ?? publishLookup(deps.instance);

  const entries = new LRUCache<string, Entry>({
    max: options.maxEntries,
    dispose: (entry) => {
      if (entry.kind === 'positive' && entry.prefetchTimer !== null) {
        clearTimeout(entry.prefetchTimer);
        entry.prefetchTimer = null;
      }
    },
  });
  const inFlight = new Map<string, Promise<QueryResult>>();
  const controllers = new Set<AbortController>();
  let keptFresh: ReadonlySet<string> = new Set();
  let closed = false;

  const keyOf = (name: string, type: RecordType) => `${type} ${name}`;

  /** One query with our own deadline; never rejects; stores what it learned. De-duplicated per key. */
  function query(name: string, type: RecordType, trigger: DnsQueryEvent['trigger']): Promise<QueryResult> {
    const key = keyOf(name, type);
    const pending = inFlight.get(key);
    if (pending) return pending;
    const p = runQuery(name, type, trigger).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  }

  async function runQuery(
    name: string,
    type: RecordType,
    trigger: DnsQueryEvent['trigger'],
  ): Promise<QueryResult> {
    const started = performance.now();
    const controller = new AbortController();
    controllers.add(controller);
    let deadline: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => {
        const err = Object.assign(new Error(`query ETIMEOUT ${name}`), { code: 'ETIMEOUT' });
        controller.abort(err);
        reject(err);
      }, options.timeoutMs);
    });
    let answer: Answer | undefined;
    let failure: unknown;
    try {
      answer = await Promise.race([resolver.query(name, type, controller.signal), timedOut]);
    } catch (err) {
      // The deadline's reason wins over whatever the aborted resolver threw (e.g. ECANCELLED).
      failure = controller.signal.aborted ? controller.signal.reason : err;
    } finally {
      clearTimeout(deadline);
      timedOut.catch(() => {});
      controllers.delete(controller);
    }
    const queryMs = performance.now() - started;
    const key = keyOf(name, type);

    if (answer !== undefined && !closed) {
      store(name, type, answer.addresses, positiveTtlMs(answer.ttlMs, options), queryMs);
      onQuery?.({ host: name, type, mode, trigger, outcome: 'answer', durationMs: queryMs });
      return { ok: true, addresses: answer.addresses, queryMs };
    }
    const code = closed ? 'ECANCELLED' : dnsCodeOf(failure);
    const negative = isNegativeCode(code);
    if (!closed) {
      if (negative) {
        const t = now();
        entries.set(key, {
          kind: 'negative',
          dnsCode: code,
          storedAt: t,
          expiresAt: t + negativeTtlMs(null, options),
          queryMs,
        });
      } else {
        const previous = entries.peek(key);
        if (previous?.kind === 'positive') {
          previous.failedAt = now();
          previous.failureCode = code;
        }
      }
    }
    onQuery?.({
      host: name,
      type,
      mode,
      trigger,
      outcome: negative ? 'negative' : 'failure',
      dnsCode: code,
      durationMs: queryMs,
    });
    return { ok: false, error: dnsError(name, code, failure), negative };
  }

  function store(
    name: string,
    type: RecordType,
    addresses: readonly string[],
    ttlMs: number,
    queryMs: number,
  ) {
    const t = now();
    const key = keyOf(name, type);
    const entry: PositiveEntry = {
      kind: 'positive',
      addresses: Object.freeze([...addresses]),
      storedAt: t,
      expiresAt: t + ttlMs,
      queryMs,
      usedSinceStore: false,
      failedAt: null,
      failureCode: null,
      prefetchTimer: null,
    };
    entries.set(key, entry);
    const at = prefetchAt(entry.storedAt, entry.expiresAt, options.prefetchRatio);
    if (Number.isFinite(at) && ttlMs > 0) {
      const timer = setTimeout(
        () => {
          entry.prefetchTimer = null;
          // Only a name asked for during this TTL (or one kept fresh) is refreshed; an unused one
          // is left to expire.
          if (entries.peek(key) === entry && (entry.usedSinceStore || keptFresh.has(name)))
            prefetch(name, type);
        },
        Math.min(MAX_TIMER_MS, Math.max(0, at - t)),
      );
      timer.unref();
      entry.prefetchTimer = timer;
    }
  }

  function prefetch(name: string, type: RecordType): void {
    if (closed || inFlight.has(keyOf(name, type))) return;
    void query(name, type, 'prefetch').then((r) => {
      if (r.ok) onLookup?.({ host: name, result: 'prefetch', mode, durationMs: r.queryMs, savedMs: 0 });
    });
  }

  async function resolveType(name: string, type: RecordType): Promise<TypeOutcome> {
    const key = keyOf(name, type);
    const entry = entries.get(key);
    const t = now();
    if (entry?.kind === 'negative') {
      if (t < entry.expiresAt) return { result: 'negative', error: dnsError(name, entry.dnsCode) };
      entries.delete(key);
    } else if (entry?.kind === 'positive') {
      const state = answerState(entry, t, options);
      switch (state) {
        case 'fresh':
        case 'prefetch':
          entry.usedSinceStore = true;
          // In the last part of its TTL: answered from cache while a background refresh runs.
          if (state === 'prefetch') prefetch(name, type);
          return { result: 'hit', addresses: entry.addresses, savedMs: entry.queryMs };
        case 'stale':
          return refreshStale(name, type, entry, t);
        case 'expired':
          entries.delete(key);
          break;
        default: {
          const never: never = state;
          throw new Error(`unknown answer state ${String(never)}`);
        }
      }
    }
    return outcomeOf(await query(name, type, 'lookup'));
  }

  /** RFC 8767: try to refresh; fall back on the stale answer if the refresh fails or is slow. */
  async function refreshStale(
    name: string,
    type: RecordType,
    entry: PositiveEntry,
    t: number,
  ): Promise<TypeOutcome> {
    const stale = (dnsCode?: string): TypeOutcome => ({
      result: 'stale',
      addresses: entry.addresses,
      savedMs: 0,
      ...(dnsCode === undefined ? {} : { dnsCode }),
    });
    if (entry.failedAt !== null && t - entry.failedAt < options.staleRecheckMs) {
      return stale(entry.failureCode ?? undefined);
    }
    const refresh = query(name, type, 'refresh');
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((resolve) => {
      timer = setTimeout(() => resolve('slow'), options.staleAnswerAfterMs);
    });
    const first = await Promise.race([refresh, slow]);
    clearTimeout(timer);
    if (first === 'slow') return stale(); // the refresh goes on and updates the entry when it answers
    if (first.ok) return { result: 'miss', addresses: first.addresses, savedMs: 0 };
    if (first.negative) return { result: 'error', error: first.error };
    const code = String(first.error.detail.dnsCode);
    return isServerFailureCode(code) ? stale(code) : { result: 'error', error: first.error };
  }

  function outcomeOf(r: QueryResult): TypeOutcome {
    if (r.ok) return { result: 'miss', addresses: r.addresses, savedMs: 0 };
    return { result: 'error', error: r.error };
  }

  async function resolve(host: string, resolveOptions: ResolveOptions = {}): Promise<ResolvedAddress[]> {
    const family = resolveOptions.family ?? 0;
    const literal = ipLiteral(host);
    if (literal) return [literal];
    const name = normaliseHostName(host);
    const started = performance.now();
    const emit = (result: DnsLookupResult, savedMs: number, dnsCode?: string) =>
      onLookup?.({
        host: name,
        result,
        mode,
        durationMs: performance.now() - started,
        savedMs,
        ...(dnsCode === undefined ? {} : { dnsCode }),
      });

    if (closed) throw dnsError(name, 'ECANCELLED');
    const fixed = staticHosts.get(name);
    if (fixed) {
      const addresses = orderAddresses(fixed, options.family, family);
      if (addresses.length === 0) {
        emit('error', 0, 'ENODATA');
        throw dnsError(name, 'ENODATA');
      }
      emit('static', 0);
      return addresses;
    }
    if (!isHostName(name)) {
      emit('error', 0, 'EBADNAME');
      throw dnsError(name, 'EBADNAME');
    }
    const types = recordTypesFor(options.family, family);
    if (types.length === 0) {
      emit('error', 0, 'ENODATA');
      throw dnsError(name, 'ENODATA');
    }

    const outcomes = await Promise.all(types.map((type) => resolveType(name, type)));
    const addresses: ResolvedAddress[] = [];
    let queried = false;
    let staleCode: string | undefined;
    let stale = false;
    let savedMs = 0;
    outcomes.forEach((o, i) => {
      const type = types[i]!;
      switch (o.result) {
        case 'hit':
        case 'miss':
        case 'stale':
          for (const address of o.addresses) addresses.push({ address, family: familyOf(type) });
          if (o.result === 'miss') queried = true;
          if (o.result === 'stale') {
            stale = true;
            staleCode ??= o.dnsCode;
          }
          // The types were looked up side by side: the time saved is the longest of them.
          if (o.result === 'hit') savedMs = Math.max(savedMs, o.savedMs);
          break;
        case 'negative':
          break;
        case 'error':
          if (isNegativeCode(String(o.error.detail.dnsCode))) queried = true;
          break;
        default: {
          const never: never = o;
          throw new Error(`unknown outcome ${String(never)}`);
        }
      }
    });

    if (addresses.length > 0) {
      if (stale) emit('stale', 0, staleCode);
      else if (queried) emit('miss', 0);
      else emit('hit', savedMs);
      return addresses;
    }
    const error = pickError(outcomes);
    const fromCache = outcomes.every((o) => o.result === 'negative');
    emit(fromCache ? 'negative' : 'error', 0, String(error.detail.dnsCode));
    throw error;
  }

  const lookup = ((
    hostname: string,
    optionsOrCallback: LookupOptions | number | LookupCallback,
    maybeCallback?: LookupCallback,
  ): void => {
    const callback = typeof optionsOrCallback === 'function' ? optionsOrCallback : maybeCallback;
    if (typeof callback !== 'function') throw new TypeError('lookup: callback must be a function');
    const opts: LookupOptions =
      typeof optionsOrCallback === 'number'
        ? { family: optionsOrCallback }
        : typeof optionsOrCallback === 'object' && optionsOrCallback !== null
          ? optionsOrCallback
          : {};
    resolve(hostname, { family: requestedFamily(opts.family) }).then(
      (addresses) => {
        if (opts.all) {
          callback(
            null,
            addresses.map((a): LookupAddress => ({ address: a.address, family: a.family })),
          );
        } else {
          const first = addresses[0]!;
          callback(null, first.address, first.family);
        }
      },
      (err: DnsError) => callback(lookupErrorFrom(err), opts.all ? [] : '', 0),
    );
  }) as LookupFunction;

  return {
    mode,
    resolve,
    lookup,
    get size() {
      return entries.size;
    },
    keepFresh(hosts) {
      keptFresh = new Set([...hosts].map(normaliseHostName));
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const controller of controllers) {
        controller.abort(Object.assign(new Error('DNS cache closed'), { code: 'ECANCELLED' }));
      }
      controllers.clear();
      entries.clear();
      await resolver.close();
    },
  };
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * The error of a lookup where no type gave an address: a nameserver failure first (it says more than
 * the absence of one family), then NXDOMAIN, then NODATA.
 */
function pickError(outcomes: readonly TypeOutcome[]): DnsError {
  const errors = outcomes.flatMap((o) => (o.result === 'negative' || o.result === 'error' ? [o.error] : []));
  const code = (e: DnsError) => String(e.detail.dnsCode);
  return (
    errors.find((e) => !isNegativeCode(code(e))) ??
    errors.find((e) => code(e) === 'ENOTFOUND') ??
    errors[0] ??
    // Unreachable: only called when no outcome had addresses.
    dnsError('', 'EUNKNOWN')
  );
}
