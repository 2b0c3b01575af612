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
 * key (`X-Forwarded-Host`, `X-Original-URL`, `X-HTTP-Method-Override`, ...: cache poisoning).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BadRequestError, HeadersTooLargeError } from '../errors.js';

export interface RequestHygieneOptions {
  /** Lower-case names of headers removed before the request goes anywhere. */
  readonly strip: readonly string[];
  readonly maxHeaderCount: number;
}

export type RequestHygiene = (req: IncomingMessage) => IncomingHttpHeaders;

/** Checks one request; returns its headers without the stripped ones, or throws a typed error. */
export function createRequestHygiene(opts: RequestHygieneOptions): RequestHygiene {
  const strip = new Set(opts.strip.map((h) => h.toLowerCase()));
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
    for (const name of strip) {
      if (headers[name] === undefined) continue;
      if (headers === req.headers) headers = { ...req.headers };
      delete headers[name];
    }
    return headers;
  };
}
