/**
 * Sends an admitted Upgrade request (WebSocket) to its origin on a connection of its own: an
 * upgraded connection leaves HTTP, so it cannot come from or go back to a pool. It resolves
 * through the same lookup and verifies TLS as strictly as the pools (system CAs plus
 * `upstream.caFile`). The origin either switches protocols (the socket is handed back to front/,
 * which splices it to the client) or answers like any response (relayed, then closed). A request
 * body (Content-Length) is sent before any upgraded byte; an answer whose body stalls for
 * `bodyTimeoutMs` fails with a body timeout, so the exchange always ends.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { UpstreamConfig } from '../config/schema.js';
import { ClientAbortedError, UpstreamBodyTimeoutError } from '../errors.js';
import type { Exchange, UpgradeOutcome } from '../exchange.js';
import type { ConnectLookup } from '../guard/egress-policy.js';
import { appendHeader, endToEndHeaders } from '../hop-by-hop.js';
import { upstreamTrust } from '../tls/trust.js';
import { classifyUpstreamError } from './classify-error.js';
import { type OriginHeaderOptions, originRequestHeaders } from './origin-request-headers.js';

export interface UpgradeRelayOptions {
  readonly defaults: UpstreamConfig;
  readonly via: string | null;
  readonly forwardedHeaders: boolean;
  /** See OriginHeaderOptions (origin-request-headers.ts); absent when tracing is off. */
  readonly traceContext?: OriginHeaderOptions['traceContext'];
}

export interface UpgradeRelayDeps {
  /** Resolver by port (the egress-checked one the pools use); the OS resolver when absent. */
  readonly lookupTo?: ConnectLookup;
}

/** `body`: the request body the client sent with the Upgrade request (front/ read it), or null. */
export type UpgradeRelay = (
  ex: Exchange,
  req: IncomingMessage,
  body: Buffer | null,
) => Promise<UpgradeOutcome>;

const DROP_REQUEST = new Set(['host']);

export function createUpgradeRelay(opts: UpgradeRelayOptions, deps: UpgradeRelayDeps = {}): UpgradeRelay {
  const ca = upstreamTrust(opts.defaults.caFile);

  return (ex, _req, body) =>
    new Promise<UpgradeOutcome>((resolve, reject) => {
      const settings = ex.route?.upstream ?? opts.defaults;
      const secure = ex.target.protocol === 'https:' || ex.target.protocol === 'wss:';
      const host = ex.target.hostname.replace(/^\[(.*)\]$/, '$1');
      const port = ex.target.port !== '' ? Number(ex.target.port) : secure ? 443 : 80;
      const headers = originRequestHeaders(ex, DROP_REQUEST, opts);
      headers.host = ex.target.host;
      headers.connection = 'upgrade';
      headers.upgrade = String(ex.headers.upgrade ?? 'websocket');
      const literal = isIP(host) !== 0;
      const common = {
        host,
        port,
        method: ex.method,
        path: ex.target.pathname + ex.target.search,
        headers,
        agent: false as const,
        ...(deps.lookupTo && !literal ? { lookup: deps.lookupTo(port) } : {}),
      };
      const originReq = secure
        ? https.request({
            ...common,
            ...(ca ? { ca } : {}),
            ...(literal ? {} : { servername: host }),
            rejectUnauthorized: true,
          })
        : http.request(common);

      let settled = false;
      const settle = (): boolean => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        ex.signal.removeEventListener('abort', onAbort);
        return true;
      };
      const timer = setTimeout(
        () =>
          originReq.destroy(
            Object.assign(new Error('the origin did not answer the upgrade in time'), {
              code: 'UND_ERR_HEADERS_TIMEOUT',
            }),
          ),
        settings.connectTimeoutMs + settings.headersTimeoutMs,
      );
      const onAbort = (): void => {
        originReq.destroy();
        if (settle()) reject(new ClientAbortedError('client disconnected during the upgrade'));
      };
      ex.signal.addEventListener('abort', onAbort, { once: true });

      originReq.on('upgrade', (originRes: IncomingMessage, originSocket: Duplex, originHead: Buffer) => {
        if (!settle()) {
          originSocket.destroy();
          return;
        }
        const replyHeaders = responseHeaders(originRes.headers, opts.via);
        replyHeaders.connection = 'upgrade';
        if (originRes.headers.upgrade !== undefined) replyHeaders.upgrade = originRes.headers.upgrade;
        resolve({
          kind: 'upgraded',
          status: originRes.statusCode ?? 101,
          statusText: originRes.statusMessage,
          headers: replyHeaders,
          originSocket,
          originHead,
        });
      });
      originReq.on('response', (originRes: IncomingMessage) => {
        if (!settle()) {
          originRes.destroy();
          return;
        }
        // The answer is relayed as it streams: silence longer than bodyTimeoutMs ends it.
        originReq.setTimeout(settings.bodyTimeoutMs, () =>
          originRes.destroy(
            new UpstreamBodyTimeoutError(`${ex.origin} stalled while sending its answer to the upgrade`, {
              detail: { upstream: ex.origin },
            }),
          ),
        );
        originRes.once('end', () => originReq.setTimeout(0));
        resolve({
          kind: 'answered',
          reply: {
            status: originRes.statusCode ?? 502,
            ...(originRes.statusMessage ? { statusText: originRes.statusMessage } : {}),
            headers: responseHeaders(originRes.headers, opts.via),
            body: originRes,
            source: 'origin',
          },
        });
      });
      originReq.on('error', (err: Error) => {
        if (settle()) reject(classifyUpstreamError(err, ex.origin));
      });
      originReq.end(body !== null && body.length > 0 ? body : undefined);
    });
}

function responseHeaders(
  headers: IncomingHttpHeaders,
  via: string | null,
): Record<string, string | string[]> {
  const out = endToEndHeaders(headers);
  if (via !== null) appendHeader(out, 'via', via);
  return out;
}
