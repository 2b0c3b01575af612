// The contract between the harness and the small servers it starts (origins, reference proxies):
// a server announces its port with one line on stdout, and it exits when its stdin closes, so a
// harness that dies without cleaning up does not leave servers behind.
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';

export const LISTENING_PREFIX = 'BENCH_LISTENING ';

/** The port from an announcement line, or null when the line is something else. */
export function parseListening(line: string): number | null {
  if (!line.startsWith(LISTENING_PREFIX)) return null;
  const parsed = JSON.parse(line.slice(LISTENING_PREFIX.length)) as { port?: unknown };
  return typeof parsed.port === 'number' ? parsed.port : null;
}

/** Parses `--listen 127.0.0.1:0`. Only loopback addresses are accepted: benchmarks stay on this host. */
export function parseListen(value: string | undefined): { host: string; port: number } {
  const match = /^(127\.\d+\.\d+\.\d+):(\d+)$/.exec(value ?? '127.0.0.1:0');
  if (!match) throw new Error(`--listen: "${value}" is not a 127.x.x.x:PORT address`);
  return { host: match[1]!, port: Number(match[2]) };
}

/**
 * Listens where the harness said, announces the port, and closes and exits on SIGTERM, SIGINT or
 * when the parent closes our stdin. `http` (the HTTP server behind `server`, or `server` itself)
 * gets keep-alive longer than any run, and its connections are closed on the way out.
 */
export function serveBenchTarget(
  server: Server,
  listen: { host: string; port: number },
  http?: HttpServer,
): void {
  const web = http ?? (server as HttpServer);
  web.keepAliveTimeout = 300_000;
  web.headersTimeout = 310_000;
  server.listen(listen.port, listen.host, () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${LISTENING_PREFIX}${JSON.stringify({ port })}\n`);
  });
  const leave = (): void => {
    web.closeAllConnections?.();
    server.close();
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, leave);
  process.stdin.on('end', leave).on('close', leave).resume();
}

/** A reference proxy's answer when its origin request failed: logged, and a 502 the harness counts. */
export function badGateway(target: string, res: ServerResponse, err: Error): void {
  process.stderr.write(`${target}: ${err.message}\n`);
  if (!res.headersSent) res.writeHead(502, { 'content-length': '0' });
  res.end();
}
