/**
 * One warm undici Pool per origin: keep-alive, a bounded number of connections, timeouts, optional
 * HTTP/2, strict TLS verification (system CAs plus an optional extra CA file), and a measured
 * connector that records, for each new connection, how long DNS, TCP connect and TLS took.
 *
 * Which connection an exchange went out on is learnt from undici's `undici:client:sendHeaders`
 * diagnostics channel, published synchronously right after the handler's `onRequestStart`
 * (see `claimNextSocket`). Connection records live in a WeakMap in this factory's closure.
 */
import diagnostics from 'node:diagnostics_channel';
import type { LookupFunction, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { buildConnector, Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { upstreamTrust } from './trust.js';

/** What we know about one upstream connection. */
export interface ConnectionRecord {
  readonly origin: string;
  /** `performance.now()` when the connection attempt began. */
  readonly startedAt: number;
  /** Duration in ms of each connect phase of this connection (absent when it did not happen). */
  readonly dnsMs: number | undefined;
  readonly connectMs: number;
  readonly tlsMs: number | undefined;
  /** Requests sent on this connection so far. */
  requests: number;
}

export interface ConnectEvent {
  readonly origin: string;
  readonly ok: boolean;
  readonly dnsMs: number | undefined;
  readonly connectMs: number | undefined;
  readonly tlsMs: number | undefined;
  readonly errorCode?: string;
}

export interface PoolsDeps {
  /** Resolver used for every upstream connect (the DNS cache); the OS resolver when absent. */
  lookup?: LookupFunction;
  /** Told about every connection attempt (metrics). */
  onConnect?: (event: ConnectEvent) => void;
}

export interface UpstreamPools {
  /**
   * The pool for `origin` with `settings`, created on first use. An origin whose settings a reload
   * changed gets a second pool for new exchanges; `retire` then closes the old one.
   */
  poolFor(origin: string, settings: UpstreamConfig): Pool;
  /**
   * After a config reload: every pool for which `isCurrent(origin, settings)` is false stops taking
   * new exchanges and closes once its in-flight requests are done (`close` destroys what is left).
   * Returns how many pools were retired.
   */
  retire(isCurrent: (origin: string, settings: UpstreamConfig) => boolean): number;
  /**
   * Call right before dispatching: the next `sendHeaders` on one of our pools reports the
   * connection it used to `onSocket` (synchronously, inside the dispatch).
   */
  claimNextSocket(onSocket: (record: ConnectionRecord) => void): void;
  /** Origins with a pool. */
  origins(): string[];
  /** Waits for in-flight requests then closes every pool; destroys them after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

/** Concurrent streams per HTTP/2 connection (Node's h2 server default for peers). */
const H2_MAX_CONCURRENT_STREAMS = 100;

interface SendHeadersMessage {
  socket: Socket;
}

export function createUpstreamPools(defaults: UpstreamConfig, deps: PoolsDeps = {}): UpstreamPools {
  const ca = upstreamTrust(defaults.caFile);
  const records = new WeakMap<Socket, ConnectionRecord>();
  /** Pools by `origin settings-key`. */
  const pools = new Map<string, { origin: string; settings: UpstreamConfig; pool: Pool }>();
  /** Retired pools still finishing their in-flight requests. */
  const retiring = new Map<Pool, Promise<void>>();
  /** Settings objects are frozen per route and runtime: their key is computed once. */
  const settingsKeys = new WeakMap<UpstreamConfig, string>();
  const keyOf = (origin: string, settings: UpstreamConfig): string => {
    let key = settingsKeys.get(settings);
    if (key === undefined) {
      key = [
        settings.connectionsPerOrigin,
        settings.keepAliveTimeoutMs,
        settings.keepAliveMaxTimeoutMs,
        settings.connectTimeoutMs,
        settings.headersTimeoutMs,
        settings.bodyTimeoutMs,
        settings.http2,
      ].join(',');
      settingsKeys.set(settings, key);
    }
    return `${origin} ${key}`;
  };
  let claim: ((record: ConnectionRecord) => void) | null = null;

  const onSendHeaders = (message: unknown): void => {
    const socket = (message as SendHeadersMessage).socket;
    const record = records.get(socket);
    if (record === undefined) return; // another sidecache instance's socket, or not ours
    record.requests += 1;
    const taker = claim;
    claim = null;
    taker?.(record);
  };
  diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);

  function measuredConnector(origin: string, settings: UpstreamConfig): buildConnector.connector {
    const base = buildConnector({
      timeout: settings.connectTimeoutMs,
      allowH2: settings.http2,
      ...(ca ? { ca } : {}),
      ...(deps.lookup ? { lookup: deps.lookup } : {}),
      rejectUnauthorized: true,
    } as buildConnector.BuildOptions);
    return (opts, callback) => {
      const t0 = performance.now();
      let tLookup: number | undefined;
      let tConnect: number | undefined;
      const socket = base(opts, (err, sock) => {
        const tDone = performance.now();
        const tcpStart = tLookup ?? t0;
        const dnsMs = tLookup === undefined ? undefined : tLookup - t0;
        const tls = opts.protocol === 'https:';
        if (err || sock === null) {
          deps.onConnect?.({
            origin,
            ok: false,
            dnsMs,
            connectMs: tConnect === undefined ? undefined : tConnect - tcpStart,
            tlsMs: undefined,
            errorCode: (err as NodeJS.ErrnoException | null)?.code ?? 'UNKNOWN',
          });
          callback(err ?? new Error('connect failed'), null);
          return;
        }
        const connectMs = (tConnect ?? tDone) - tcpStart;
        const tlsMs = tls ? tDone - (tConnect ?? tDone) : undefined;
        records.set(sock as Socket, { origin, startedAt: t0, dnsMs, connectMs, tlsMs, requests: 0 });
        deps.onConnect?.({ origin, ok: true, dnsMs, connectMs, tlsMs });
        callback(null, sock);
      }) as unknown as Socket | undefined;
      // The TCP socket under a TLS socket emits 'connect'; the TLS socket re-emits 'lookup'.
      socket?.once?.('lookup', () => {
        tLookup = performance.now();
      });
      socket?.once?.('connect', () => {
        tConnect = performance.now();
      });
      return socket as never;
    };
  }

  return {
    poolFor(origin, settings) {
      const key = keyOf(origin, settings);
      let pool = pools.get(key)?.pool;
      if (pool === undefined) {
        pool = new Pool(origin, {
          connections: settings.connectionsPerOrigin,
          keepAliveTimeout: settings.keepAliveTimeoutMs,
          keepAliveMaxTimeout: settings.keepAliveMaxTimeoutMs,
          headersTimeout: settings.headersTimeoutMs,
          bodyTimeout: settings.bodyTimeoutMs,
          allowH2: settings.http2,
          // undici counts an h2 connection as busy after `pipelining` streams (default 1), which
          // would open a new connection per concurrent request; let h2 multiplex instead. An
          // origin that answers ALPN with http/1.1 then sees pipelined requests: enable http2
          // only for origins that speak it (README, upstream.http2).
          ...(settings.http2 ? { pipelining: H2_MAX_CONCURRENT_STREAMS } : {}),
          connect: measuredConnector(origin, settings),
        });
        pools.set(key, { origin, settings, pool });
      }
      return pool;
    },
    retire(isCurrent) {
      let retired = 0;
      for (const [key, entry] of pools) {
        if (isCurrent(entry.origin, entry.settings)) continue;
        pools.delete(key);
        retired++;
        // undici's close waits for queued and running requests, then closes the connections.
        const done = entry.pool.close().then(
          () => {
            retiring.delete(entry.pool);
          },
          () => {
            retiring.delete(entry.pool);
          },
        );
        retiring.set(entry.pool, done);
      }
      return retired;
    },
    claimNextSocket(onSocket) {
      claim = onSocket;
    },
    origins() {
      return [...new Set([...pools.values()].map((e) => e.origin))];
    },
    async close(graceMs) {
      diagnostics.unsubscribe('undici:client:sendHeaders', onSendHeaders);
      const current = [...pools.values()].map((e) => e.pool);
      const draining = [...retiring.entries()];
      const all = [...current, ...draining.map(([pool]) => pool)];
      pools.clear();
      retiring.clear();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
        timer.unref();
      });
      const closed = Promise.allSettled([
        ...current.map((p) => p.close()),
        ...draining.map(([, done]) => done),
      ]).then(() => 'closed' as const);
      const outcome = await Promise.race([closed, deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') await Promise.allSettled(all.map((p) => p.destroy()));
    },
  };
}
