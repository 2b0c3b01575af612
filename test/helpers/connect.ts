/**
 * A CONNECT client for tests: asks a proxy for a tunnel and returns either the open socket (200)
 * or the refusal (status, headers, body).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

export type ConnectResult =
  | { readonly status: 200; readonly socket: Socket; readonly head: Buffer }
  | { readonly status: number; readonly headers: IncomingHttpHeaders; readonly body: string };

export function connectThrough(proxyUrl: string, authority: string): Promise<ConnectResult> {
  const { hostname, port } = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method: 'CONNECT', path: authority, agent: false });
    req.once('connect', (res, socket: Socket, head: Buffer) => {
      if (res.statusCode === 200) {
        resolve({ status: 200, socket, head });
        return;
      }
      const chunks: Buffer[] = [head];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.once('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      socket.on('error', reject);
    });
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}
