/**
 * Interim (1xx) responses relayed to the client before the final one (RFC 9110 §15.2): the
 * origin's `102 Processing` and `103 Early Hints`. front/ builds the relay for each exchange and
 * puts it on the Exchange (`ex.interim`); upstream/ calls it for each interim response it receives.
 * Only front/ writes to the client socket, and only before the final response head.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Exchange } from '../exchange.js';

/** Node's response methods for interim responses (absent on some HTTP/2 compatibility versions). */
interface InterimWriter {
  writeProcessing?: () => void;
  writeEarlyHints?: (hints: Record<string, string | string[]>) => void;
}

/**
 * The relay for one request, or `undefined` when the client must not get interim responses
 * (HTTP/1.0, RFC 9110 §15.2: a server must not send 1xx to an HTTP/1.0 client).
 */
export function interimRelay(req: IncomingMessage, res: ServerResponse): Exchange['interim'] {
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return undefined;
  const writer = res as unknown as InterimWriter;
  return (status, headers) => {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    if (status === 102) {
      writer.writeProcessing?.();
    } else if (status === 103 && headers['link'] !== undefined) {
      try {
        writer.writeEarlyHints?.(headers);
      } catch {
        // Early hints are advisory: a Link value Node refuses to write is dropped, the request goes on.
      }
    }
    // Other 1xx (100 after a dropped Expect, unknown codes) mean nothing to this client: dropped.
  };
}
