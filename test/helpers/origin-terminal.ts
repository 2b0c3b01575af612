/**
 * A test-only stand-in for upstream/: the terminal Next that sends the Exchange to its origin with
 * undici's request() over a real socket and returns a Reply streaming the origin body. Connect
 * failures and resets become the typed errors upstream/ raises.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import { UpstreamConnectError, UpstreamResetError } from '../../src/errors.js';
import { createExchange, type Exchange, type Next, type Reply } from '../../src/exchange.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

export interface OriginTerminal {
  readonly next: Next;
  /** Exchanges that reached the terminal (what the cache sent upstream). */
  readonly sent: Exchange[];
  close(): Promise<void>;
}

export function createOriginTerminal(): OriginTerminal {
  const agent = new Agent({ keepAliveTimeout: 1_000, connections: 256 });
  const sent: Exchange[] = [];
  const next: Next = async (client) => {
    // Like upstream/: what goes to the origin is the cache's origin request when it wrote one.
    const out = client.originRequest;
    const ex =
      out === undefined
        ? client
        : createExchange({
            id: client.id,
            mode: client.mode,
            method: out.method,
            target: client.target,
            origin: client.origin,
            route: client.route,
            headers: out.headers,
            body: client.body,
            client: client.client,
            signal: client,
            timings: client.timings,
            tunnel: client.tunnel,
          });
    sent.push(ex);
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(ex.headers as IncomingHttpHeaders)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    }
    // Like upstream/: a bodiless idempotent request is retried once when its pooled socket was dead.
    const attempt = async (retry: boolean): Promise<Reply> => {
      try {
        const res = await request(ex.target, {
          method: ex.method as 'GET',
          headers,
          body: ex.body ?? null,
          signal: ex.signal,
          dispatcher: agent,
        });
        const out: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(res.headers))
          if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
        ex.originInfo = { origin: ex.origin, reusedConnection: false, retried: false, bodyBytes: 0 };
        if (ex !== client) client.originInfo = ex.originInfo;
        if (ex.method === 'HEAD') res.body.resume();
        const reply: Reply = {
          status: res.statusCode,
          headers: out,
          body: ex.method === 'HEAD' ? null : res.body,
          source: 'origin',
        };
        return reply;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'ECONNREFUSED')
          throw new UpstreamConnectError(`cannot connect to ${ex.origin}`, { cause: err });
        if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') {
          if (retry && ex.body === null && (ex.method === 'GET' || ex.method === 'HEAD'))
            return attempt(false);
          throw new UpstreamResetError(`${ex.origin} reset the connection`, { cause: err });
        }
        throw err;
      }
    };
    return attempt(true);
  };
  return {
    next,
    sent,
    close: () => agent.close(),
  };
}
