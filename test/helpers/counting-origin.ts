/**
 * A real HTTP origin on 127.0.0.1:0 for stage tests. The handler sees every request with a
 * per-path counter (1 for the first request to that path) and may vary headers per request;
 * the origin records every request it received.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, n: number) => void | Promise<void>;

export interface Origin {
  readonly url: string;
  readonly seen: SeenRequest[];
  /** Requests received for `path` (path with query, as sent). */
  count(path: string): number;
  /** Requests received in total. */
  total(): number;
  close(): Promise<void>;
}

export async function startOrigin(handler: OriginHandler): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    seen.push({ method: req.method ?? 'GET', path, headers: req.headers });
    Promise.resolve(handler(req, res, n)).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    count: (path) => counts.get(path) ?? 0,
    total: () => seen.length,
    async close() {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Responds with a body and headers. */
export function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: string | Uint8Array = '',
): void {
  res.writeHead(status, headers);
  res.end(body);
}
