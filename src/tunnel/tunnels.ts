/**
 * CONNECT tunnels, once the guard has admitted the host: the port check, then one of two ways.
 *
 * - `tunnel` (every allowed host not listed in `intercept`): resolve through the injected lookup
 *   (the same one the upstream pools use), connect within `connectTimeoutMs`, answer 200, and
 *   splice bytes both ways (half-close, idle timeout, byte counts). A failed connect answers
 *   502/504 before the tunnel opens.
 * - `intercept`: answer 200, complete TLS with the client using the leaf certificate of the CONNECT
 *   host (signed by sidecache's CA; also when the client sends no SNI), and hand the decrypted
 *   connection to an HTTP/2 or HTTP/1.1 server (by ALPN) whose requests go back into front/
 *   (`decrypted`), tagged with the CONNECT authority. An SNI naming any other host ends the
 *   handshake with an alert and is told as a refusal; no leaf is minted for it. The origin is then
 *   reached through the warm upstream pools, verified as strictly as for any route. Handshake
 *   failures are sorted (tls/handshake-failure.ts) and told.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { stripBrackets } from '../address-ranges.js';
import type { Runtime } from '../config/runtime.js';
import { compileInterceptMatcher, normaliseHost } from '../config/runtime.js';
import { ClientAbortedError, EgressDeniedError } from '../errors.js';
import type { Arrival, Exchange, RawParts } from '../exchange.js';
import type { ConnectLookup } from '../guard/egress-policy.js';
import type { HandshakeRefusal, TunnelEnd } from '../observers.js';
import { classifyHandshakeFailure, type HandshakeFailure } from '../tls/handshake-failure.js';
import type { LeafIssuer } from '../tls/leaf-certs.js';
import { classifyUpstreamError } from '../upstream/classify-error.js';
import { splice } from './splice.js';

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
  /** Told about every handshake sidecache refused (an SNI naming another host than the CONNECT). */
  readonly onRefused?: (reason: HandshakeRefusal, authority: string, servername: string) => void;
}

/** `openTunnel`'s `closing` aborts at shutdown; `ex.signal` also when the client goes away. */
export interface Tunnels extends Pick<RawParts, 'checkConnect' | 'openTunnel'> {
  /** Whether a CONNECT to host:port is decrypted; `port` null: whether any entry names the host. */
  intercepts(host: string, port: number | null): boolean;
}

export function createTunnels(runtime: Runtime, deps: TunnelsDeps): Tunnels {
  const { config } = runtime;
  const intercept = compileInterceptMatcher(config.intercept);
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
    // The CONNECT host's leaf is the only one this tunnel ever shows: what a client that sends no
    // SNI (an IP literal, an old client) gets, and what a matching SNI gets.
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
    const arrival: Arrival = Object.freeze({ via: 'tunnel', authority });
    let refusedName: string | null = null;
    let refuse: (() => void) | null = null;
    // The leaf's secure context was built once, when it was minted: a tunnel parses no key.
    const tlsSocket = new TLSSocket(transport, {
      isServer: true,
      secureContext: leaf.context,
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (servername, callback) => {
        if (normaliseHost(servername) === host) {
          callback(null, leaf.context);
          return;
        }
        // Another name than the CONNECT host: nothing is minted for it, and the handshake ends.
        refusedName = servername;
        refuse?.();
      },
    });
    return new Promise<TunnelEnd>((resolve) => {
      let secure = false;
      let failedCode: string | null = null;
      let lastError: string | undefined;
      const bytes = () => ({
        bytesUp: socket.bytesRead - readBase + head.length,
        bytesDown: socket.bytesWritten - writtenBase,
      });
      const handshakeFailed = (err: NodeJS.ErrnoException | null): void => {
        if (secure || failedCode !== null) return;
        clearTimeout(timer);
        if (refusedName !== null) {
          failedCode = 'SNI_MISMATCH';
          deps.onRefused?.('sni_mismatch', authority, refusedName);
        } else {
          const kind = classifyHandshakeFailure(err);
          failedCode = err?.code ?? 'CLOSED';
          deps.onHandshakeFailure?.(kind, authority, failedCode);
        }
        tlsSocket.destroy();
        socket.destroy();
      };
      const timer = setTimeout(
        () =>
          handshakeFailed(
            Object.assign(new Error(`TLS handshake not done in ${config.tls.handshakeTimeoutMs} ms`), {
              code: 'ERR_TLS_HANDSHAKE_TIMEOUT',
            }),
          ),
        config.tls.handshakeTimeoutMs,
      );
      // The server has sent nothing yet (the certificate is chosen before the ServerHello), so a
      // plaintext fatal unrecognized_name alert (RFC 6066 §3) is what the client reads next.
      refuse = (): void => {
        if (secure || failedCode !== null) return;
        clearTimeout(timer);
        failedCode = 'SNI_MISMATCH';
        deps.onRefused?.('sni_mismatch', authority, refusedName ?? '');
        socket.end(UNRECOGNIZED_NAME_ALERT, () => {
          tlsSocket.destroy();
          socket.destroy();
        });
      };
      tlsSocket.on('error', (err: NodeJS.ErrnoException) => {
        if (secure) lastError = err.code ?? 'ERR';
        else handshakeFailed(err);
      });
      tlsSocket.once('secure', () => {
        // A resumed session skips the SNI callback: its name is checked here instead (too late
        // for an alert; the connection is closed before a byte is served).
        const sni = tlsSocket.servername;
        if (typeof sni === 'string' && sni !== '' && normaliseHost(sni) !== host) {
          refusedName = sni;
          handshakeFailed(null);
          return;
        }
        clearTimeout(timer);
        secure = true;
        serveDecrypted(tlsSocket, arrival, (code) => {
          lastError = code;
        });
      });
      const onAbort = (): void => {
        socket.destroy();
      };
      closing.addEventListener('abort', onAbort, { once: true });
      socket.once('close', () => {
        closing.removeEventListener('abort', onAbort);
        if (!secure && failedCode === null)
          handshakeFailed(
            Object.assign(new Error('closed during the TLS handshake'), { code: 'ECONNRESET' }),
          );
        clearTimeout(timer);
        const ending: TunnelEnd['ending'] =
          failedCode !== null ? 'tls_failed' : closing.aborted ? 'shutdown' : 'closed';
        const errorCode = failedCode ?? lastError;
        resolve({ ...bytes(), ending, ...(errorCode ? { errorCode } : {}) });
      });
    });
  }

  /**
   * Serves a decrypted connection: HTTP/2 when ALPN chose `h2`, HTTP/1.1 otherwise, each by a
   * small server of its own whose requests go to front/ with this tunnel's arrival (nothing is
   * hung on the socket). The handshake is already done, so neither server does TLS.
   */
  function serveDecrypted(tlsSocket: TLSSocket, arrival: Arrival, onError: (code: string) => void): void {
    // What tls.Server does before 'secureConnection': an HTTP/2 session waits for a socket that is
    // still connecting, and this one is connected.
    (tlsSocket as TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    if (tlsSocket.alpnProtocol === 'h2') {
      const server = createHttp2Server((req, res) =>
        deps.decrypted.request(req as unknown as IncomingMessage, res as unknown as ServerResponse, arrival),
      );
      server.on('sessionError', (err: NodeJS.ErrnoException) => onError(err.code ?? 'ERR'));
      server.emit('connection', tlsSocket);
      return;
    }
    // As node:http2's HTTP/1.1 fallback did: no Host requirement (the tunnel names the origin),
    // no keep-alive timer of its own (the client and shutdown end the connection).
    const server = createHttpServer({ requireHostHeader: false }, (req, res) =>
      deps.decrypted.request(req, res, arrival),
    );
    server.keepAliveTimeout = 0;
    server.on('upgrade', (req: IncomingMessage, s: Duplex, h: Buffer) =>
      deps.decrypted.upgrade(req, s, h, arrival),
    );
    server.emit('connection', tlsSocket);
  }

  return {
    intercepts(host, port) {
      if (deps.leaves === null) return false;
      return port === null ? intercept.host(host) : intercept(host, port);
    },
    checkConnect(ex) {
      const port = portOf(ex);
      const host = normaliseHost(ex.target.hostname);
      if (ports.has(port) || routePorts.get(host)?.has(port)) return;
      // A port an intercept entry names for this host ("api.example.test:8443").
      if (deps.leaves !== null && intercept.explicitPort(host, port)) return;
      const allowed = [...new Set([...ports, ...(routePorts.get(host) ?? [])])].sort((a, b) => a - b);
      throw new EgressDeniedError(
        `CONNECT to ${ex.target.host}: port ${port} is not allowed; allowed ports for this host: ` +
          `${allowed.join(', ')} (tunnel.ports, a route origin's own port, and a port an intercept entry names)`,
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

/** A TLS record: alert (21), version 3.3, length 2, fatal (2), unrecognized_name (112). */
const UNRECOGNIZED_NAME_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);
