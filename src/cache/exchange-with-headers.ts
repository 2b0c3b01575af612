/**
 * The client's exchange with other request headers, for what the cache stage sends upstream
 * (forward() in stage.ts: our Accept-Encoding, validators removed or added): an Exchange
 * with the same fields, whose `signal` reads through to the client's exchange, so its AbortSignal
 * is still made only if something asks for it. upstream/ writes `originInfo` and `reason` here (and feeds `bodyTap`);
 * forward() carries them back.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { createExchange, type Exchange } from '../exchange.js';

export function exchangeWithHeaders(base: Exchange, headers: IncomingHttpHeaders): Exchange {
  const ex = createExchange({
    id: base.id,
    mode: base.mode,
    method: base.method,
    target: base.target,
    origin: base.origin,
    route: base.route,
    headers,
    body: base.body,
    client: base.client,
    signal: base,
    timings: base.timings,
    tunnel: base.tunnel,
    interim: base.interim,
  });
  ex.admission = base.admission;
  ex.cache = base.cache;
  ex.originInfo = base.originInfo;
  ex.reason = base.reason;
  ex.bodyTap = base.bodyTap;
  return ex;
}
