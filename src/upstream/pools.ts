/**
 * One warm undici Pool per origin (per origin and settings, across a config reload): keep-alive, a bounded number of connections, timeouts, optional
 * HTTP/2, strict TLS verification (system CAs plus an optional extra CA file), and a measured
 * connector that records, for each new connection, how long DNS, TCP connect and TLS took.
 *
 * Which connection an exchange went out on is learnt from undici's `undici:client:sendHeaders`
 * diagnostics channel, published synchronously right after the handler's `onRequestStart`
 * (see `claimNextSocket`). Connection records live in a WeakMap in this factory's closure.
 *
 * Pre-opened connections (keep-warm, upstream/warm.ts): undici has no "preconnect", and sending a
 * request the app did not ask for is not an option. So `preconnect(origin)` dials through the same
 * measured connector (same lookup, CA, ALPN, TLS session cache) and parks the finished socket in a
 * per-origin stash; when the pool next needs a connection, its connector hands it a parked socket
 * that is still open instead of dialling. A parked socket the origin closes is dropped from the
 * stash, and idle-change listeners hear about it (and about pool disconnects) so the warm module
 * can open another.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { buildConnector } from 'undici';
import type { Instance } from '../channels.js';
import type { UpstreamConfig } from '../config/schema.js';
import type { ConnectLookup } from '../guard/egress-policy.js';
import type { ConnectEvent } from '../observers.js';
import { upstreamTrust } from '../tls/trust.js';
import { connectorBuilder, Pool } from '../undici-parts.js';
import { publishConnect } from './channels.js';

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
  /** Opened ahead of need (`preconnect`), before any request asked for it. */
  readonly preconnected: boolean;
  /** The HTTP version this connection speaks, as OpenTelemetry writes it: `2` when ALPN chose h2. */
  readonly httpVersion: '1.1' | '2';
}

/** Told which connection its request went out on (an object, so no closure per request). */
export interface SocketClaimer {
  socketClaimed(record: ConnectionRecord): void;
}

/** What changed about an origin's idle connections (for the warm module). */
export type IdleChange =
  /** The pool took a pre-opened connection for a request. */
  | 'taken'
  /** The origin (or an error) closed a parked pre-opened connection. */
  | 'closed'
  /** One of the pool's own connections closed (idle timeout, origin close, error). */
  | 'disconnect';

/** `record`: the parked connection taken or closed (absent for pool disconnects). */
export type IdleListener = (origin: string, change: IdleChange, record?: ConnectionRecord) => void;

export interface PoolsDeps {
  /** Resolver for every upstream connect, by port (the egress-checked DNS cache); the OS resolver when absent. */
  lookupTo?: ConnectLookup;
  /** Told about every connection attempt; default: published on `sidecache:upstream:connect`. */
  onConnect?: (event: ConnectEvent) => void;
  /** The instance the published events belong to (channels.ts). */
  instance?: Instance;
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
   * Its parked connections close at once. Returns how many pools were retired.
   */
  retire(isCurrent: (origin: string, settings: UpstreamConfig) => boolean): number;
  /**
   * Call right before dispatching: the next `sendHeaders` on one of our pools reports the
   * connection it used to `onSocket` (synchronously, inside the dispatch).
   */
  claimNextSocket(claimer: SocketClaimer): void;
  /** Origins with a pool. */
  origins(): string[];
  /**
   * Opens one connection to `origin` now (DNS, TCP, TLS with ALPN settled) and parks it for the
   * pool's next connect. Rejects with the connect error (the attempt is reported to `onConnect`).
   */
  preconnect(origin: string, settings: UpstreamConfig): Promise<ConnectionRecord>;
  /** Connections of the pool for `origin` + `settings` ready for a request now: parked plus free. */
  idleConnections(
    origin: string,
    settings: UpstreamConfig,
  ): { parked: number; free: number; connected: number };
  /** Closes the parked connections of that pool (the origin is no longer kept warm). */
  dropParked(origin: string, settings: UpstreamConfig): void;
  /** Calls `listener` whenever an origin's idle connections may have dropped; returns unsubscribe. */
  onIdleChange(listener: IdleListener): () => void;
  /** Waits for in-flight requests then closes every pool; destroys them after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

function portOf(origin: string): number {
  const url = new URL(origin);
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** Concurrent streams per HTTP/2 connection (Node's h2 server default for peers). */
const H2_MAX_CONCURRENT_STREAMS = 100;

/** Whether TLS ALPN chose HTTP/2 on a connection. */
const isH2 = (socket: Socket): boolean =>
  (socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2';

interface SendHeadersMessage {
  socket: Socket;
}

export function createUpstreamPools(defaults: UpstreamConfig, deps: PoolsDeps = {}): UpstreamPools {
  const ca = upstreamTrust(defaults.caFile);
  const records = new WeakMap<Socket, ConnectionRecord>();
  const onConnect = deps.onConnect ?? publishConnect(deps.instance);
  /** Pools by `origin settings-key`. */
  const pools = new Map<string, { origin: string; settings: UpstreamConfig; pool: Pool }>();
  /** Retired pools still finishing their in-flight requests. */
  const retiring = new Map<Pool, Promise<void>>();
  /**
   * The current pool by settings object, then origin: what `poolFor` answers per request without
   * building the `origin settings-key` string. Emptied whenever a pool leaves `pools`.
   */
  let bySettings = new WeakMap<UpstreamConfig, Map<string, Pool>>();
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
  /** Pool key → its measured connector (one per pool: the TLS session cache is shared). */
  const dialers = new Map<string, Dialer>();
  /** Pool key → pre-opened sockets waiting for that pool, in the order they were opened. */
  const parked = new Map<string, Set<Socket>>();
  const idleListeners = new Set<IdleListener>();
  let claim: SocketClaimer | null = null;
  let closed = false;

  const tellIdle = (origin: string, change: IdleChange, socket?: Socket): void => {
    const record = socket === undefined ? undefined : records.get(socket);
    for (const listener of idleListeners) listener(origin, change, record);
  };

  const onSendHeaders = (message: unknown): void => {
    const socket = (message as SendHeadersMessage).socket;
    const record = records.get(socket);
    if (record === undefined) return; // another sidecache instance's socket, or not ours
    record.requests += 1;
    const taker = claim;
    claim = null;
    taker?.socketClaimed(record);
  };
  diagnostics.subscribe('undici:client:sendHeaders', onSendHeaders);

  type Dialer = (
    opts: buildConnector.Options,
    preconnect: boolean,
    callback: (err: Error | null, socket: Socket | null) => void,
  ) => Socket | undefined;

  function dialerFor(origin: string, settings: UpstreamConfig): Dialer {
    const key = keyOf(origin, settings);
    let dialer = dialers.get(key);
    if (dialer === undefined) {
      dialer = measuredDialer(origin, settings);
      dialers.set(key, dialer);
    }
    return dialer;
  }

  function measuredDialer(origin: string, settings: UpstreamConfig): Dialer {
    const base = connectorBuilder({
      timeout: settings.connectTimeoutMs,
      allowH2: settings.http2,
      ...(ca ? { ca } : {}),
      ...(deps.lookupTo ? { lookup: deps.lookupTo(portOf(origin)) } : {}),
      rejectUnauthorized: true,
    } as buildConnector.BuildOptions);
    return (opts, preconnect, callback) => {
      const t0 = performance.now();
      let tLookup: number | undefined;
      let tConnect: number | undefined;
      const socket = base(opts, (err, sock) => {
        const tDone = performance.now();
        const tcpStart = tLookup ?? t0;
        const dnsMs = tLookup === undefined ? undefined : tLookup - t0;
        const tls = opts.protocol === 'https:';
        if (err || sock === null) {
          onConnect({
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
        const record = {
          origin,
          startedAt: t0,
          dnsMs,
          connectMs,
          tlsMs,
          requests: 0,
          preconnected: preconnect,
          httpVersion: isH2(sock as Socket) ? ('2' as const) : ('1.1' as const),
        };
        records.set(sock as Socket, record);
        onConnect({ origin, ok: true, dnsMs, connectMs, tlsMs });
        callback(null, sock as Socket);
      }) as unknown as Socket | undefined;
      // The TCP socket under a TLS socket emits 'connect'; the TLS socket re-emits 'lookup'.
      socket?.once?.('lookup', () => {
        tLookup = performance.now();
      });
      socket?.once?.('connect', () => {
        tConnect = performance.now();
      });
      return socket;
    };
  }

  /** A parked socket the pool may still use: open, and (HTTP/1.1) nothing unasked-for received. */
  const usable = (socket: Socket): boolean =>
    !socket.destroyed &&
    socket.readyState === 'open' &&
    !socket.readableEnded &&
    (isH2(socket) || socket.readableLength === 0);

  /**
   * Takes the newest usable parked socket of the pool `key` (the one furthest from the origin's
   * idle timeout, which we cannot know before a response says), dropping unusable ones on the way.
   */
  function takeParked(key: string, origin: string): Socket | null {
    const stash = parked.get(key);
    if (stash === undefined) return null;
    for (const socket of [...stash].reverse()) {
      stash.delete(socket);
      socket.removeListener('close', parkedClosed(key, origin, socket));
      if (usable(socket)) return socket;
      socket.destroy();
    }
    return null;
  }

  const closeHandlers = new WeakMap<Socket, () => void>();
  function parkedClosed(key: string, origin: string, socket: Socket): () => void {
    let handler = closeHandlers.get(socket);
    if (handler === undefined) {
      handler = () => {
        if (parked.get(key)?.delete(socket)) tellIdle(origin, 'closed', socket);
      };
      closeHandlers.set(socket, handler);
    }
    return handler;
  }

  function measuredConnector(origin: string, settings: UpstreamConfig): buildConnector.connector {
    const dial = dialerFor(origin, settings);
    const key = keyOf(origin, settings);
    return (opts, callback) => {
      const warm = takeParked(key, origin);
      if (warm !== null) {
        // Asynchronously, as a dialled connection would be: undici's Client is mid-resume here.
        process.nextTick(() => {
          callback(null, warm as never);
          tellIdle(origin, 'taken', warm);
        });
        return warm as never;
      }
      return dial(opts, false, (err, sock) => callback(err, sock as never)) as never;
    };
  }

  function dropParkedOf(key: string): void {
    const stash = parked.get(key);
    if (stash === undefined) return;
    parked.delete(key);
    for (const socket of stash) socket.destroy();
  }

  function poolFor(origin: string, settings: UpstreamConfig): Pool {
    let byOrigin = bySettings.get(settings);
    const known = byOrigin?.get(origin);
    if (known !== undefined) return known;
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
      pool.on('disconnect', () => tellIdle(origin, 'disconnect'));
      pools.set(key, { origin, settings, pool });
    }
    if (byOrigin === undefined) {
      byOrigin = new Map();
      bySettings.set(settings, byOrigin);
    }
    byOrigin.set(origin, pool);
    return pool;
  }

  return {
    poolFor,
    retire(isCurrent) {
      let retired = 0;
      for (const [key, entry] of pools) {
        if (isCurrent(entry.origin, entry.settings)) continue;
        pools.delete(key);
        bySettings = new WeakMap();
        dropParkedOf(key);
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
    claimNextSocket(claimer) {
      claim = claimer;
    },
    origins() {
      return [...new Set([...pools.values()].map((e) => e.origin))];
    },
    preconnect(origin, settings) {
      if (closed) return Promise.reject(new Error('upstream pools closed'));
      poolFor(origin, settings);
      const url = new URL(origin);
      // What undici's Client passes its connector (client.js `connect`): IPv6 without brackets.
      const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
      const opts = {
        host: url.host,
        hostname,
        protocol: url.protocol,
        port: url.port,
        servername: undefined,
        localAddress: null,
      } as unknown as buildConnector.Options;
      return new Promise<ConnectionRecord>((resolve, reject) => {
        dialerFor(origin, settings)(opts, true, (err, socket) => {
          if (err || socket === null) {
            reject(err ?? new Error('connect failed'));
            return;
          }
          const record = records.get(socket);
          if (closed || record === undefined) {
            socket.destroy();
            reject(new Error('upstream pools closed'));
            return;
          }
          const key = keyOf(origin, settings);
          if (!pools.has(key)) {
            socket.destroy(); // retired while it was connecting
            reject(new Error('pool retired'));
            return;
          }
          let stash = parked.get(key);
          if (stash === undefined) {
            stash = new Set();
            parked.set(key, stash);
          }
          stash.add(socket);
          // Left ref'd: close() destroys parked sockets, so one that outlived it would show.
          socket.once('close', parkedClosed(key, origin, socket));
          resolve(record);
        });
      });
    },
    idleConnections(origin, settings) {
      const key = keyOf(origin, settings);
      const stats = pools.get(key)?.pool.stats;
      let count = 0;
      for (const socket of parked.get(key) ?? []) if (usable(socket)) count++;
      return { parked: count, free: stats?.free ?? 0, connected: stats?.connected ?? 0 };
    },
    dropParked(origin, settings) {
      dropParkedOf(keyOf(origin, settings));
    },
    onIdleChange(listener) {
      idleListeners.add(listener);
      return () => idleListeners.delete(listener);
    },
    async close(graceMs) {
      closed = true;
      diagnostics.unsubscribe('undici:client:sendHeaders', onSendHeaders);
      idleListeners.clear();
      for (const key of [...parked.keys()]) dropParkedOf(key);
      const current = [...pools.values()].map((e) => e.pool);
      const draining = [...retiring.entries()];
      const all = [...current, ...draining.map(([pool]) => pool)];
      pools.clear();
      bySettings = new WeakMap();
      retiring.clear();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
        timer.unref();
      });
      const closedAll = Promise.allSettled([
        ...current.map((p) => p.close()),
        ...draining.map(([, done]) => done),
      ]).then(() => 'closed' as const);
      const outcome = await Promise.race([closedAll, deadline]);
      clearTimeout(timer);
      if (outcome === 'timeout') await Promise.allSettled(all.map((p) => p.destroy()));
    },
  };
}
