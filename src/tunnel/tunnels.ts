/**
 * CONNECT tunnels, once the guard has admitted the host: the port check, then one of two ways.
 *
 * - `tunnel` (every allowed host not listed in `intercept`): resolve through the injected lookup
 *   (the same one the upstream pools use), connect within `connectTimeoutMs`, answer 200, and
 *   splice bytes both ways (half-close, idle timeout, byte counts). A failed connect answers
 *   502/504 before the tunnel opens.
 * - `intercept`: answer 200, complete TLS with the client using a leaf certificate for its SNI
 *   name (the CONNECT host when it sends none) signed by sidecache's CA, and hand the decrypted
 *   connection to an HTTP server whose requests go back into front/ (`decrypted`), tagged with the
 *   CONNECT authority. The origin is then reached through the warm upstream pools, verified as
 *   strictly as for any route. Handshake failures are sorted (tls/handshake-failure.ts) and told.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer as createHttp2SecureServer } from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { HostMatcher, Runtime } from '../config/runtime.js';
import { compileHostMatcher, normaliseHost } from '../config/runtime.js';
import { ClientAbortedError, EgressDeniedError } from '../errors.js';
import type { Exchange } from '../exchange.js';
import type { Arrival } from '../front/front-server.js';
import type { ConnectLookup } from '../guard/egress-policy.js';
import { classifyHandshakeFailure, type HandshakeFailure } from '../tls/handshake-failure.js';
import type { LeafIssuer } from '../tls/leaf-certs.js';
import { classifyUpstreamError } from '../upstream/classify-error.js';
import { type SpliceEnding, splice } from './splice.js';

export interface TunnelEnd {
  /** Bytes from the client (for `intercept`: TLS bytes on the client connection). */
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly ending: SpliceEnding | 'tls_failed';
  readonly errorCode?: string;
}

/** Where decrypted requests go: front/'s own handlers. */
export interface DecryptedSink {
  request(req: IncomingMessage, res: ServerResponse, arrival: Arrival): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, arrival: Arrival): void;
}

export interface TunnelsDeps {
  /** Resolver for tunnel connects, by port: the one the upstream pools use. OS resolver when absent. */
  readonly lookupTo?: ConnectLookup;
  /** Leaf certificates; null when interception is off (`intercept` is empty). */
  readonly leaves: LeafIssuer | null;
  readonly decrypted: DecryptedSink;
  /** Told about every failed client handshake on an intercepted tunnel. */
  readonly onHandshakeFailure?: (kind: HandshakeFailure, authority: string, code: string) => void;
}

export interface Tunnels {
  intercepts(host: string): boolean;
  checkConnect(ex: Exchange): void;
  /** `closing` aborts at shutdown; `ex.signal` also when the client goes away. */
  openTunnel(
    ex: Exchange,
    socket: Socket,
    head: Buffer,
    established: () => void,
    closing: AbortSignal,
  ): Promise<TunnelEnd>;
}

export function createTunnels(runtime: Runtime, deps: TunnelsDeps): Tunnels {
  const { config } = runtime;
  const intercept: HostMatcher = compileHostMatcher(config.intercept);
  const ports = new Set(config.tunnel.ports);
  /** Each route origin's own port is reachable on its host. */
  const routePorts = new Map<string, Set<number>>();
  for (const route of runtime.routes) {
    const url = new URL(route.origin);
    const host = normaliseHost(url.hostname);
    const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const set = routePorts.get(host) ?? new Set<number>();
    set.add(port);
    routePorts.set(host, set);
  }

  function portOf(ex: Exchange): number {
    return Number(ex.tunnel?.authority.slice(ex.tunnel.authority.lastIndexOf(':') + 1));
  }

  async function connectOrigin(ex: Exchange, host: string, port: number): Promise<Socket> {
    const settings = ex.route?.upstream ?? config.upstream;
    return new Promise<Socket>((resolve, reject) => {
      const origin = netConnect({
        host,
        port,
        allowHalfOpen: true,
        noDelay: true,
        ...(deps.lookupTo && isIP(host) === 0 ? { lookup: deps.lookupTo(port) } : {}),
      });
      const fail = (err: unknown): void => {
        cleanup();
        origin.destroy();
        reject(classifyUpstreamError(err, ex.origin));
      };
      const timer = setTimeout(
        () =>
          fail(
            Object.assign(new Error(`connect timed out after ${settings.connectTimeoutMs} ms`), {
              code: 'ETIMEDOUT',
            }),
          ),
        settings.connectTimeoutMs,
      );
      const onAbort = (): void => {
        cleanup();
        origin.destroy();
        reject(new ClientAbortedError('client went away while the tunnel was connecting'));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        ex.signal.removeEventListener('abort', onAbort);
        origin.off('error', fail);
      };
      origin.once('error', fail);
      ex.signal.addEventListener('abort', onAbort, { once: true });
      origin.once('connect', () => {
        cleanup();
        resolve(origin);
      });
    });
  }

  async function blindTunnel(
    ex: Exchange,
    socket: Socket,
    head: Buffer,
    established: () => void,
    closing: AbortSignal,
  ): Promise<TunnelEnd> {
    const host = stripBrackets(ex.target.hostname);
    const origin = await connectOrigin(ex, host, portOf(ex));
    established();
    if (head.length > 0) origin.write(head);
    const result = await splice(socket, origin, {
      idleTimeoutMs: config.tunnel.idleTimeoutMs,
      signal: closing,
    });
    return { ...result, bytesUp: result.bytesUp + head.length };
  }

  async function interceptTunnel(
    ex: Exchange,
    socket: Socket,
    head: Buffer,
    established: () => void,
    closing: AbortSignal,
    leaves: LeafIssuer,
  ): Promise<TunnelEnd> {
    const authority = ex.tunnel?.authority ?? ex.target.host;
    const host = normaliseHost(ex.target.hostname);
    // The leaf for the CONNECT host is ready before the client speaks: it is also what a client
    // that sends no SNI (an IP literal) gets.
    const leaf = await leaves.leafFor(host);
    established();
    const readBase = socket.bytesRead;
    const writtenBase = socket.bytesWritten;
    // TLS reads the socket's handle directly; bytes the client sent early (with the CONNECT) must
    // go through a stream instead, with those bytes put back in front.
    let transport: Duplex = socket;
    if (head.length > 0) {
      socket.unshift(head);
      transport = Duplex.from({ readable: socket, writable: socket });
    }
    // One small TLS + HTTP server per decrypted connection (node:http2's secure server with HTTP/1.1
    // fallback picks h2 or http/1.1 by ALPN); its requests carry this tunnel's authority as an
    // argument to front/, so nothing is hung on the socket.
    const arrival: Arrival = Object.freeze({ via: 'tunnel', authority });
    const server = createHttp2SecureServer(
      {
        // ALPN: h2 first, then http/1.1 (allowHTTP1).
        allowHTTP1: true,
        // A client names the host in SNI, and SNICallback hands over the leaf's secure context,
        // built once when the leaf was minted. Only a CONNECT to an IP literal (no SNI is sent
        // for addresses) needs the leaf as the server's default: parsing a key and certificate
        // into a new context costs ~1-2 ms of CPU, on every tunnel of a client without a Session.
        ...(isIP(host) !== 0 ? { key: leaf.keyPem, cert: leaf.certPem } : {}),
        handshakeTimeout: config.tls.handshakeTimeoutMs,
        SNICallback: (servername, callback) => {
          leaves.leafFor(normaliseHost(servername)).then(
            (l) => callback(null, l.context),
            (err: Error) => callback(err, undefined),
          );
        },
      },
      (req, res) =>
        deps.decrypted.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, arrival),
    );
    server.on('upgrade', (req: IncomingMessage, s: Duplex, h: Buffer) =>
      deps.decrypted.upgrade(req, s, h, arrival),
    );
    return new Promise<TunnelEnd>((resolve) => {
      let secure = false;
      let failed: { kind: HandshakeFailure; code: string } | null = null;
      let lastError: string | undefined;
      const bytes = () => ({
        bytesUp: socket.bytesRead - readBase + head.length,
        bytesDown: socket.bytesWritten - writtenBase,
      });
      const handshakeFailed = (err: NodeJS.ErrnoException | null): void => {
        if (secure || failed) return;
        failed = { kind: classifyHandshakeFailure(err), code: err?.code ?? 'CLOSED' };
        deps.onHandshakeFailure?.(failed.kind, authority, failed.code);
        socket.destroy();
      };
      server.on('tlsClientError', (err: NodeJS.ErrnoException) => handshakeFailed(err));
      server.on('secureConnection', (tlsSocket: TLSSocket) => {
        secure = true;
        tlsSocket.on('error', (err: NodeJS.ErrnoException) => {
          lastError = err.code ?? 'ERR';
        });
      });
      // http2 sessions and HTTP/1.1 connections on this server surface their socket errors here.
      server.on('sessionError', (err: NodeJS.ErrnoException) => {
        lastError = err.code ?? 'ERR';
      });
      const onAbort = (): void => {
        socket.destroy();
      };
      closing.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => {
        closing.removeEventListener('abort', onAbort);
        if (!secure && !failed)
          handshakeFailed(
            Object.assign(new Error('closed during the TLS handshake'), { code: 'ECONNRESET' }),
          );
        const ending: TunnelEnd['ending'] = failed ? 'tls_failed' : closing.aborted ? 'shutdown' : 'closed';
        const errorCode = failed?.code ?? lastError;
        resolve({ ...bytes(), ending, ...(errorCode ? { errorCode } : {}) });
      });
      server.emit('connection', transport);
    });
  }

  return {
    intercepts(host) {
      return deps.leaves !== null && intercept(host) !== null;
    },
    checkConnect(ex) {
      const port = portOf(ex);
      const host = normaliseHost(ex.target.hostname);
      if (ports.has(port) || routePorts.get(host)?.has(port)) return;
      const allowed = [...new Set([...ports, ...(routePorts.get(host) ?? [])])].sort((a, b) => a - b);
      throw new EgressDeniedError(
        `CONNECT to ${ex.target.host}: port ${port} is not allowed; allowed ports for this host: ` +
          `${allowed.join(', ')} (tunnel.ports, and a route origin's own port)`,
        { detail: { upstream: ex.origin } },
      );
    },
    openTunnel(ex, socket, head, established, closing) {
      if (ex.mode === 'intercept' && deps.leaves !== null) {
        return interceptTunnel(ex, socket, head, established, closing, deps.leaves);
      }
      return blindTunnel(ex, socket, head, established, closing);
    },
  };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
