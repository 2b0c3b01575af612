/**
 * The one place that turns an error into a reply (Varnish's `synth`): a short JSON body naming the
 * error code, the reason, the upstream and the cause, with the exchange id for the logs.
 */
import { Readable } from 'node:stream';
import { InternalError, SidecacheError } from '../errors.js';
import type { Reply } from '../exchange.js';

export function toSidecacheError(err: unknown): SidecacheError {
  if (err instanceof SidecacheError) return err;
  return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
}

export function synthErrorReply(error: SidecacheError, exchangeId: string): Reply {
  const payload = Buffer.from(
    `${JSON.stringify({
      error: error.code,
      reason: error.reason,
      message: error.message,
      ...error.detail,
      exchange: exchangeId,
    })}\n`,
  );
  return {
    status: error.status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(payload.length),
      'cache-control': 'no-store',
    },
    body: Readable.from([payload], { objectMode: false }),
    source: 'synth',
  };
}
