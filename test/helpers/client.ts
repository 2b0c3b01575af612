/**
 * Small real HTTP clients for tests: a reverse-proxy request and a forward-proxy (absolute-form)
 * request through node:http, with the body collected.
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  text(): string;
  json(): Record<string, unknown>;
}

export interface RequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  agent?: http.Agent | false;
  signal?: AbortSignal;
}

/** Sends `method target` to the server at `server` (http://host:port). `target` may be absolute-form. */
export function send(server: string, target: string, opts: RequestOptions = {}): Promise<Response> {
  const { hostname, port } = new URL(server);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: hostname,
        port,
        method: opts.method ?? 'GET',
        path: target,
        headers: opts.headers,
        agent: opts.agent ?? false,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            text: () => body.toString(),
            json: () => JSON.parse(body.toString()) as Record<string, unknown>,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
