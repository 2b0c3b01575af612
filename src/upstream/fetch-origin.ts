/**
 * The terminal stage: sends the Exchange to its origin over the origin's warm pool and returns a
 * Reply as soon as the response headers arrive; the body streams with backpressure (the origin
 * socket is paused while the client is slow). Hop-by-hop headers are dropped both ways; Via and
 * X-Forwarded-* are added. An idempotent, bodiless request whose reused pooled socket turns out
 * dead before any response byte is retried once, on a fresh connection.
 */
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { ClientAbortedError, SidecacheError } from '../errors.js';
import type { Exchange, Next, Reply } from '../exchange.js';
import { appendHeader, endToEndHeaders } from '../hop-by-hop.js';
import { classifyUpstreamError, isDeadSocketError } from './classify-error.js';
import type { ConnectionRecord, UpstreamPools } from './pools.js';

export interface OriginFetchOptions {
  /** Settings for origins that no route names (forward proxy through the allow list). */
  readonly defaults: UpstreamConfig;
  /** The Via value this instance adds (e.g. `1.1 sidecache`), or null for none. */
  readonly via: string | null;
  readonly forwardedHeaders: boolean;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** Request headers undici refuses or that must not be forwarded as they are. */
const DROP_REQUEST = new Set(['host', 'expect']);
/** The body of a complete, empty response (shared: nobody writes to a zero-length buffer). */
const EMPTY_BODY = Buffer.alloc(0);
const NO_BODY_STATUS = (status: number): boolean => status === 204 || status === 304 || status < 200;

export function createOriginFetch(pools: UpstreamPools, opts: OriginFetchOptions): Next {
  return async function fetchOrigin(ex: Exchange): Promise<Reply> {
    const settings = ex.route?.upstream ?? opts.defaults;
    const pool = pools.poolFor(ex.origin, settings);
    const headers = originRequestHeaders(ex, opts);
    const started = performance.now();
    const info = { origin: ex.origin, reusedConnection: false, retried: false, bodyBytes: 0 };
    ex.originInfo = info;
    try {
      return await dispatchOnce(pool, pools, ex, headers, info, started, opts.via);
    } catch (err) {
      const canRetry =
        settings.retryDeadSocket &&
        info.reusedConnection &&
        ex.body === null &&
        IDEMPOTENT.has(ex.method) &&
        !ex.signal.aborted &&
        isDeadSocketError(err);
      if (!canRetry) throw err instanceof SidecacheError ? err : classifyUpstreamError(err, ex.origin);
      info.retried = true;
      info.reusedConnection = false;
      try {
        return await dispatchOnce(pool, pools, ex, headers, info, performance.now(), opts.via);
      } catch (retryErr) {
        // The retry fails like any first attempt: a typed error (502 upstream_reset, ...), not a 500.
        throw retryErr instanceof SidecacheError ? retryErr : classifyUpstreamError(retryErr, ex.origin);
      }
    }
  };
}

function originRequestHeaders(ex: Exchange, opts: OriginFetchOptions): Record<string, string | string[]> {
  const headers = endToEndHeaders(ex.headers, DROP_REQUEST);
  if (opts.via !== null) appendHeader(headers, 'via', opts.via);
  if (opts.forwardedHeaders) {
    appendHeader(headers, 'x-forwarded-for', ex.client.address);
    if (headers['x-forwarded-proto'] === undefined) headers['x-forwarded-proto'] = ex.client.protocol;
  }
  return headers;
}

interface OriginInfoMutable {
  origin: string;
  reusedConnection: boolean;
  retried: boolean;
  bodyBytes: number;
  preconnectedMs?: number;
}

function dispatchOnce(
  pool: Dispatcher,
  pools: UpstreamPools,
  ex: Exchange,
  headers: Record<string, string | string[]>,
  info: OriginInfoMutable,
  started: number,
  via: string | null,
): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | null = null;
    let body: Readable | null = null;
    let settled = false;
    let ended = false;

    const onAbort = (): void => {
      const reason = new ClientAbortedError('client disconnected');
      if (controller && !controller.aborted) controller.abort(reason);
      if (!settled) {
        settled = true;
        reject(reason);
      }
    };
    const cleanup = (): void => ex.signal.removeEventListener('abort', onAbort);
    if (ex.signal.aborted) {
      reject(new ClientAbortedError('client disconnected'));
      return;
    }
    ex.signal.addEventListener('abort', onAbort, { once: true });

    const onSocket = (record: ConnectionRecord): void => {
      // New for this exchange only if it was opened after the exchange began; a connection the
      // pool opened earlier (warm, or for a request another connection then served) was waiting.
      const reused = record.requests > 1 || record.startedAt < ex.timings.start;
      info.reusedConnection = reused;
      if (record.preconnected && record.requests === 1) {
        // The first request on a connection keep-warm opened: it skipped that whole handshake.
        info.preconnectedMs = (record.dnsMs ?? 0) + record.connectMs + (record.tlsMs ?? 0);
      } else {
        delete info.preconnectedMs;
      }
      if (!reused) {
        const phases = ex.timings.phases as Record<string, number>;
        if (record.dnsMs !== undefined) phases.dns = (phases.dns ?? 0) + record.dnsMs;
        phases.connect = (phases.connect ?? 0) + record.connectMs;
        if (record.tlsMs !== undefined) phases.tls = (phases.tls ?? 0) + record.tlsMs;
      }
    };

    /** The final response's head, once it arrived; the Reply is decided in a microtask after it. */
    let head: { status: number; statusText: string; headers: Record<string, string | string[]> } | null =
      null;
    /** Body chunks that arrived before the Reply was decided (same socket read as the head). */
    let early: Buffer[] | null = null;
    /** An origin failure after the head but before the Reply was decided. */
    let failure: Error | null = null;
    let bodyless = false;

    /**
     * Runs in a microtask after the head: by then undici has handed over everything in the socket
     * read that carried the head. A body that is already complete becomes a Buffer (front/ writes
     * head and body at once, no stream); otherwise the body streams, starting with what came.
     */
    const decide = (): void => {
      if (settled || head === null) return; // the client went away meanwhile (rejected)
      settled = true;
      let replyBody: Readable | Buffer | null = null;
      if (!bodyless) {
        if (ended && failure === null) {
          replyBody = early === null ? EMPTY_BODY : early.length === 1 ? early[0]! : Buffer.concat(early);
        } else {
          const ctrl = controller!;
          body = new Readable({
            highWaterMark: 64 * 1024,
            read() {
              if (ctrl.paused) ctrl.resume();
            },
            destroy(err, callback) {
              if (!ended && !ctrl.aborted)
                ctrl.abort(err ?? new ClientAbortedError('response body abandoned'));
              cleanup();
              callback(err);
            },
          });
          if (early !== null) for (const chunk of early) if (!body.push(chunk)) ctrl.pause();
          // Mid-body failure: the client must see a truncated, errored stream, never a clean end.
          if (failure !== null) body.destroy(classifyUpstreamError(failure, ex.origin));
          replyBody = body;
        }
        early = null;
      }
      resolve({
        status: head.status,
        ...(head.statusText ? { statusText: head.statusText } : {}),
        headers: head.headers,
        body: replyBody,
        source: 'origin',
      });
    };

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(ctrl) {
        controller = ctrl;
        pools.claimNextSocket(onSocket);
      },
      onResponseStart(_ctrl, statusCode, originHeaders, statusMessage) {
        // undici reports interim (1xx) responses here too: relayed, never taken as the response.
        if (statusCode < 200) {
          ex.interim?.(statusCode, endToEndHeaders(originHeaders));
          return;
        }
        if (settled || head !== null) return;
        const replyHeaders = endToEndHeaders(originHeaders);
        if (via !== null) appendHeader(replyHeaders, 'via', via);
        bodyless = ex.method === 'HEAD' || NO_BODY_STATUS(statusCode);
        head = { status: statusCode, statusText: statusMessage ?? '', headers: replyHeaders };
        ex.timings.phases.upstream = performance.now() - started;
        queueMicrotask(decide);
      },
      onResponseData(ctrl, chunk) {
        info.bodyBytes += chunk.length;
        if (body !== null) {
          if (!body.push(chunk)) ctrl.pause();
        } else if (!bodyless && !settled) {
          if (early === null) early = [chunk];
          else early.push(chunk);
        }
      },
      onResponseEnd() {
        ended = true;
        ex.timings.phases.upstream = performance.now() - started;
        cleanup();
        body?.push(null);
      },
      onResponseError(_ctrl, err) {
        cleanup();
        if (!settled && head === null) {
          settled = true;
          reject(err);
          return;
        }
        if (body !== null) body.destroy(classifyUpstreamError(err, ex.origin));
        else if (!settled) failure = err;
      },
    };

    pool.dispatch(
      {
        origin: ex.origin,
        path: ex.target.pathname + ex.target.search,
        method: ex.method as Dispatcher.HttpMethod,
        headers,
        body: ex.body,
        signal: undefined,
      } as Dispatcher.DispatchOptions,
      handler,
    );
  });
}
