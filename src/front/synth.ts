/**
 * The one place that turns an error into a reply (Varnish's `synth`): a short JSON body naming the
 * error code, the reason, the upstream and the cause, with the exchange id for the logs.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { SidecacheError } from '../errors.js';
import type { Reply } from '../exchange.js';
import { rawHead } from '../raw-head.js';

function errorPayload(error: SidecacheError, exchangeId: string): Buffer {
  return Buffer.from(
    `${JSON.stringify({
      error: error.code,
      reason: error.reason,
      message: error.message,
      ...error.detail,
      exchange: exchangeId,
    })}\n`,
  );
}

/** `Proxy-Authenticate` for a 407 (RFC 9110 §11.7.1); nothing otherwise. */
function challengeOf(error: SidecacheError): string | null {
  return error.status === 407 ? `Basic realm="${String(error.detail.realm ?? 'sidecache')}"` : null;
}

/** `Retry-After` (seconds) for an error whose detail names one. */
function retryAfterOf(error: SidecacheError): string | null {
  return error.detail.retryAfter === undefined ? null : String(error.detail.retryAfter);
}

/** The head fields of an error reply whose body is `payload`. */
function errorHeaders(error: SidecacheError, payload: Buffer): OutgoingHttpHeaders {
  const challenge = challengeOf(error);
  const retryAfter = retryAfterOf(error);
  return {
    ...(challenge === null ? {} : { 'proxy-authenticate': challenge }),
    ...(retryAfter === null ? {} : { 'retry-after': retryAfter }),
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(payload.length),
    'cache-control': 'no-store',
  };
}

/** The error as a Reply; front/ writes it like any other (its body is in memory: one write). */
export function synthErrorReply(error: SidecacheError, exchangeId: string): Reply {
  const payload = errorPayload(error, exchangeId);
  return { status: error.status, headers: errorHeaders(error, payload), body: payload, source: 'synth' };
}

/**
 * The same reply as raw HTTP/1.1 bytes, for a socket that no ServerResponse owns (a refused
 * CONNECT or Upgrade, a malformed request); the connection is closed after it.
 */
export function synthRawResponse(
  error: SidecacheError,
  exchangeId: string,
): { bytes: Buffer; bodyBytes: number } {
  const payload = errorPayload(error, exchangeId);
  const head = rawHead(error.status, undefined, { ...errorHeaders(error, payload), connection: 'close' });
  return { bytes: Buffer.concat([head, payload]), bodyBytes: payload.length };
}
