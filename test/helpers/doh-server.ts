/**
 * A DNS-over-HTTPS endpoint (RFC 8484) on 127.0.0.1, over plain HTTP or, given a certificate, HTTPS:
 * `GET /dns-query?dns=BASE64URL` and `POST /dns-query` with an `application/dns-message` body,
 * answering from a DnsZone. A silent zone leaves the request hanging (a blackholed DoH server).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import dnsPacket from 'dns-packet';
import type { DnsZone } from './dns-zone.js';

export interface TestDohServer {
  readonly zone: DnsZone;
  /** `127.0.0.1:PORT`, as `dns.doh.servers` takes it. */
  readonly address: string;
  /** Requests by HTTP method. */
  readonly methods: Record<string, number>;
  stop(): Promise<void>;
}

export async function startDohServer(
  zone: DnsZone,
  opts: { tls?: { cert: string; key: string } } = {},
): Promise<TestDohServer> {
  const methods: Record<string, number> = {};
  const timers = new Set<NodeJS.Timeout>();
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const method = req.method ?? 'GET';
    methods[method] = (methods[method] ?? 0) + 1;
    const url = new URL(req.url ?? '/', 'http://doh.test');
    if (url.pathname !== '/dns-query') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let message: Buffer;
      if (method === 'GET') {
        const param = url.searchParams.get('dns');
        if (!param) {
          res.writeHead(400).end();
          return;
        }
        message = Buffer.from(param, 'base64url');
      } else if (method === 'POST') {
        message = Buffer.concat(chunks);
      } else {
        res.writeHead(405).end();
        return;
      }
      let reply: Buffer | null;
      try {
        reply = zone.reply(dnsPacket.decode(message), 'doh');
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!reply) return; // silent: never answer
      const send = () => {
        res.writeHead(200, { 'content-type': 'application/dns-message', 'content-length': reply.length });
        res.end(reply);
      };
      if (zone.delayMs > 0) {
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, zone.delayMs);
        timers.add(t);
      } else send();
    });
  };
  const server = opts.tls ? https.createServer(opts.tls, answer) : http.createServer(answer);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    zone,
    address: `127.0.0.1:${port}`,
    methods,
    async stop() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
