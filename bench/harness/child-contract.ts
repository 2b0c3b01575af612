// The contract between the harness and the small servers it starts (origin, reference proxies):
// a server announces its port with one line on stdout, and it exits when its stdin closes, so a
// harness that dies without cleaning up does not leave servers behind.
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const LISTENING_PREFIX = 'BENCH_LISTENING ';

/** Prints the announcement line for a server that is already listening. */
export function announceListening(server: Server): void {
  const address = server.address() as AddressInfo;
  process.stdout.write(`${LISTENING_PREFIX}${JSON.stringify({ port: address.port })}\n`);
}

/** The port from an announcement line, or null when the line is something else. */
export function parseListening(line: string): number | null {
  if (!line.startsWith(LISTENING_PREFIX)) return null;
  const parsed = JSON.parse(line.slice(LISTENING_PREFIX.length)) as { port?: unknown };
  return typeof parsed.port === 'number' ? parsed.port : null;
}

/** Closes the server and exits on SIGTERM, SIGINT, or when the parent closes our stdin. */
export function exitWhenParentLeaves(server: Server): void {
  const leave = (): void => {
    server.closeAllConnections();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', leave);
  process.on('SIGINT', leave);
  process.stdin.on('end', leave);
  process.stdin.on('close', leave);
  process.stdin.resume();
}

/** Parses `--listen 127.0.0.1:0`. Only loopback addresses are accepted: benchmarks stay on this host. */
export function parseListen(value: string | undefined): { host: string; port: number } {
  const match = /^(127\.\d+\.\d+\.\d+):(\d+)$/.exec(value ?? '127.0.0.1:0');
  if (!match) throw new Error(`--listen: "${value}" is not a 127.x.x.x:PORT address`);
  return { host: match[1]!, port: Number(match[2]) };
}

/**
 * Listens where the harness said, with keep-alive longer than any run, announces the port and
 * exits with the harness: the tail every reference target shares.
 */
export function serveBenchTarget(server: Server, listen: { host: string; port: number }): void {
  server.keepAliveTimeout = 300_000;
  server.headersTimeout = 310_000;
  server.listen(listen.port, listen.host, () => announceListening(server));
  exitWhenParentLeaves(server);
}

/** A reference proxy's answer when its origin request failed: logged, and a 502 the harness counts. */
export function badGateway(target: string, res: ServerResponse, err: Error): void {
  process.stderr.write(`${target}: ${err.message}\n`);
  if (!res.headersSent) res.writeHead(502, { 'content-length': '0' });
  res.end();
}
