/**
 * Turns what undici or Node reported for an upstream request into a typed SidecacheError whose
 * status and reason say what happened: 502 for refused/reset/TLS/DNS, 504 for timeouts.
 */

import { dnsErrorFrom } from '../dns/index.js';
import {
  DnsError,
  SidecacheError,
  UpstreamBodyTimeoutError,
  UpstreamConnectError,
  UpstreamConnectTimeoutError,
  UpstreamHeadersTimeoutError,
  UpstreamProtocolError,
  UpstreamResetError,
  UpstreamTlsError,
} from '../errors.js';

const DNS_CODES = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EAI_NODATA',
  'ENODATA',
  'ESERVFAIL',
  'ENOTIMP',
  'EREFUSED',
  'EBADRESP',
  'ETIMEOUT',
  'ECONNREFUSED_DNS',
  'EFORMERR',
  'EBADNAME',
  'EBADFAMILY',
]);

const TLS_CODE =
  /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|HOSTNAME_MISMATCH|ERR_OSSL_)/;

/** Error codes meaning a pooled socket died under us before any response byte. */
const DEAD_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  if (e && typeof e.code === 'string') return e.code;
  if (e?.cause && typeof e.cause.code === 'string') return e.cause.code;
  return 'UNKNOWN';
}

export function isDeadSocketError(err: unknown): boolean {
  return DEAD_SOCKET_CODES.has(codeOf(err));
}

export function classifyUpstreamError(err: unknown, origin: string): SidecacheError {
  if (err instanceof SidecacheError) return err;
  const code = codeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const opts = { cause: err, detail: { upstream: origin, cause: code } };
  // A lookup made by the DNS cache failed: its code may look like a connect error (a nameserver
  // that refuses is ECONNREFUSED), so the DnsError it carries decides, not the code.
  const dns = dnsErrorFrom(err);
  if (dns !== undefined) {
    return new DnsError(dns.message, {
      cause: err,
      detail: { upstream: origin, cause: code, ...dns.detail },
    });
  }
  if (DNS_CODES.has(code) || (err as { syscall?: string } | null)?.syscall?.startsWith('getaddrinfo')) {
    const host = new URL(origin).hostname;
    return new DnsError(`DNS lookup of ${host} failed: ${code}`, {
      cause: err,
      detail: { upstream: origin, cause: code, dnsCode: code, host },
    });
  }
  if (TLS_CODE.test(code))
    return new UpstreamTlsError(`TLS with ${origin} failed: ${code}: ${message}`, opts);
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new UpstreamConnectError(`cannot connect to ${origin}: ${code}`, opts);
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return new UpstreamConnectTimeoutError(`connect to ${origin} timed out`, opts);
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new UpstreamHeadersTimeoutError(`${origin} sent no response headers in time`, opts);
    case 'UND_ERR_BODY_TIMEOUT':
      return new UpstreamBodyTimeoutError(`${origin} stalled while sending the body`, opts);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      return new UpstreamResetError(`${origin} closed the connection: ${message}`, opts);
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
      return new UpstreamProtocolError(`${origin} sent an invalid response: ${message}`, opts);
    default:
      if (code.startsWith('HPE_')) {
        return new UpstreamProtocolError(`${origin} sent an invalid response: ${message}`, opts);
      }
      return new UpstreamResetError(`request to ${origin} failed: ${code}: ${message}`, opts);
  }
}
