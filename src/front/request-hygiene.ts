/**
 * What Node's HTTP parser (llhttp, strict unless `insecureHTTPParser`) lets through but a proxy in
 * front of a shared cache must not: a second Host header (the route and the cache key could read
 * one, the origin the other), Transfer-Encoding on an HTTP/1.0 request (RFC 9112 §6.1: faulty
 * framing), more header fields than `limits.maxHeaderCount` (Node would silently drop the rest).
 * Everything llhttp already refuses (CL + TE, duplicate or invalid Content-Length, obs-fold, bare
 * CR or LF, invalid header names, NUL in values) is answered in front-server's clientError
 * handler; test/security/smuggling.test.ts proves each case on raw TCP.
 *
 * Also strips request headers that change what an origin answers without being part of the cache
 * key (`X-Original-URL`, `X-HTTP-Method-Override`, ...: cache poisoning), and the client's
 * forwarding headers (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`: forwarded.ts) unless
 * `proxy.trustForwarded` names the client. This is the one place for every mode: reverse route,
 * forward proxy, decrypted requests and upgrades all come through here.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BadRequestError, HeadersTooLargeError } from '../errors.js';
import { FORWARDING_HEADER_SET, type ForwardedTrust } from '../forwarded.js';

export interface RequestHygieneOptions {
  /** Lower-case names of headers removed before the request goes anywhere. */
  readonly strip: readonly string[];
  readonly maxHeaderCount: number;
  /** Whether a client (by socket address) may set forwarding headers; none when absent. */
  readonly trustForwarded?: ForwardedTrust;
}

export type RequestHygiene = (req: IncomingMessage) => IncomingHttpHeaders;

/** Checks one request; returns its headers without the stripped ones, or throws a typed error. */
export function createRequestHygiene(opts: RequestHygieneOptions): RequestHygiene {
  const strip = new Set(opts.strip.map((h) => h.toLowerCase()));
  const trusts = opts.trustForwarded ?? (() => false);
  return (req) => {
    const fields = req.rawHeaders.length / 2;
    if (fields > opts.maxHeaderCount) {
      throw new HeadersTooLargeError(
        `request has more than ${opts.maxHeaderCount} header fields (limits.maxHeaderCount)`,
      );
    }
    let hosts = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i] as string;
      // Length first: lower-casing every header name of every request costs more than this loop.
      if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    }
    if (hosts > 1) throw new BadRequestError('request has more than one Host header');
    if (req.httpVersion === '1.0' && req.headers['transfer-encoding'] !== undefined) {
      throw new BadRequestError('Transfer-Encoding in an HTTP/1.0 request (faulty framing, RFC 9112 §6.1)');
    }
    let headers = req.headers;
    /** Whether this client may set forwarding headers: asked once, when it sends one. */
    let trusted: boolean | undefined;
    // Over the request's own fields (a few) rather than looking up each listed name.
    for (const name in req.headers) {
      if (!strip.has(name)) {
        if (!FORWARDING_HEADER_SET.has(name)) continue;
        trusted ??= trusts(req.socket?.remoteAddress);
        if (trusted) continue;
      }
      if (headers === req.headers) headers = { ...req.headers };
      delete headers[name];
    }
    return headers;
  };
}
