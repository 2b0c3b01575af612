/**
 * Why a client's TLS handshake with an intercepted tunnel failed, as a closed union (also a
 * metric label): the client did not trust our certificate, we shared no cipher or protocol, the
 * client went away, it was too slow, or something else. Pure: no I/O.
 */
import type { HandshakeFailure } from '../observers.js';

export type { HandshakeFailure } from '../observers.js';

export const HANDSHAKE_FAILURES: readonly HandshakeFailure[] = [
  'cert-rejected',
  'no-shared-cipher',
  'reset',
  'timeout',
  'other',
];

/** Alerts a client sends when it does not accept the certificate it was shown. */
const CERT_REJECTED =
  /(ALERT_BAD_CERTIFICATE|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_UNKNOWN|ALERT_CERTIFICATE_EXPIRED|ALERT_CERTIFICATE_REVOKED|ALERT_UNSUPPORTED_CERTIFICATE|ALERT_ACCESS_DENIED|ALERT_DECRYPT_ERROR|ALERT_BAD_CERTIFICATE_STATUS_RESPONSE)$/;
/** Nothing in common: cipher suites, protocol versions, groups, signature algorithms, ALPN. */
const NO_SHARED =
  /(NO_SHARED_CIPHER|NO_SHARED_GROUPS|NO_SUITABLE_SIGNATURE_ALGORITHM|UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|VERSION_TOO_HIGH|WRONG_VERSION_NUMBER|ALERT_PROTOCOL_VERSION|ALERT_HANDSHAKE_FAILURE|ALERT_INSUFFICIENT_SECURITY|NO_APPLICATION_PROTOCOL|ALERT_NO_APPLICATION_PROTOCOL)$/;
const RESET = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Sorts an error seen before the handshake completed (`null`: the socket closed without one). */
export function classifyHandshakeFailure(
  err: { code?: unknown; message?: unknown } | null,
): HandshakeFailure {
  if (err === null) return 'reset';
  const code = typeof err.code === 'string' ? err.code : '';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (RESET.has(code)) return 'reset';
  if (CERT_REJECTED.test(code)) return 'cert-rejected';
  if (NO_SHARED.test(code)) return 'no-shared-cipher';
  const message = typeof err.message === 'string' ? err.message : '';
  if (/socket hang up|disconnected before secure/i.test(message)) return 'reset';
  return 'other';
}
