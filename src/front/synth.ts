/**
 * The one place that turns an error into a reply (Varnish's `synth`): a short JSON body naming the
 * error code, the reason, the upstream and the cause, with the exchange id for the logs.
 */
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import { InternalError, SidecacheError } from '../errors.js';
import type { Reply } from '../exchange.js';

export function toSidecacheError(err: unknown): SidecacheError {
  if (err instanceof SidecacheError) return err;
  return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
}

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

export function synthErrorReply(error: SidecacheError, exchangeId: string): Reply {
  const payload = errorPayload(error, exchangeId);
  const challenge = challengeOf(error);
  return {
    status: error.status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(payload.length),
      'cache-control': 'no-store',
      ...(challenge ? { 'proxy-authenticate': challenge } : {}),
      ...(retryAfterOf(error) === null ? {} : { 'retry-after': retryAfterOf(error) as string }),
    },
    body: Readable.from([payload], { objectMode: false }),
    source: 'synth',
  };
}

/**
 * The same error as raw HTTP/1.1 bytes, for a socket that no ServerResponse owns (a refused
 * CONNECT or Upgrade); the connection is closed after it.
 */
export function synthRawResponse(
  error: SidecacheError,
  exchangeId: string,
): { bytes: Buffer; bodyBytes: number } {
  const payload = errorPayload(error, exchangeId);
  const challenge = challengeOf(error);
  const head =
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}\r\n` +
    (challenge ? `proxy-authenticate: ${challenge}\r\n` : '') +
    (retryAfterOf(error) === null ? '' : `retry-after: ${retryAfterOf(error)}\r\n`) +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${payload.length}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n`;
  return { bytes: Buffer.concat([Buffer.from(head, 'latin1'), payload]), bodyBytes: payload.length };
}
