/**
 * More accepts per event-loop iteration for the proxy listener (`proxy.acceptors`).
 *
 * libuv (>= 1.45, Node 20) accepts one connection per listening handle per loop iteration. With
 * a saturated loop (1000 busy connections, iterations of 30 to 100 ms) the kernel's accept queue
 * then drains at a few tens of connections a second, and late clients wait seconds with their
 * requests unread. Envoy and Varnish give accepting its own thread; Node cannot hand a socket
 * from one thread to another, and `reusePort` needs Node >= 22.12. What works on Node 20: the
 * loop watches N descriptors of the same listening socket, each its own libuv handle, so one
 * iteration accepts up to N connections. The accepted sockets are ordinary sockets of the one
 * http.Server (`connection` event): no per-request cost, one process, one metrics registry.
 *
 * Node has no dup(); a descriptor sent over an IPC channel arrives as a new descriptor of the same
 * socket. So at start a short-lived helper process receives the listening handle and sends it
 * back N - 1 times, then exits; it never listens or accepts itself (the handle stays raw).
 *
 * The total connection limit (limits.maxConnections) is kept here across all N handles: Node's
 * own `server.maxConnections` counts only what its own handle accepted.
 */
import { spawn } from 'node:child_process';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import process from 'node:process';

export interface Acceptors {
  /** Listening handles the loop watches for the proxy listener (1 = the server's own only). */
  readonly count: number;
  /** Connections the extra handles accepted so far (the server's own are not counted). */
  accepted(): number;
  /** Stops accepting on the extra handles (the server's own is closed by `server.close`). */
  close(): Promise<void>;
}

export interface AcceptorOptions {
  /** Listening handles wanted in total, the server's own included (1 = nothing to do). */
  readonly count: number;
  /** Listen backlog, as the server's own handle was given. */
  readonly backlog: number;
  /** Helper start-up and hand-over budget; on expiry the server accepts on its own handle only. */
  readonly timeoutMs?: number;
}

/**
 * The helper: receives the listening handle once and sends it back `count` times (each arrives
 * as a new descriptor), waiting for each send to be written, then disconnects.
 */
const HELPER = `
process.on('message', (m, handle) => {
  let left = m.count;
  const next = (err) => {
    if (err || left-- <= 0) { handle.close(); process.disconnect(); return; }
    process.send({ acceptor: true }, handle, next);
  };
  next();
});`;

/**
 * Adds `count - 1` listening handles on `server`'s socket (which must be listening). Throws if
 * the helper fails; the caller may then go on with the server's own handle.
 */
export async function addAcceptors(server: HttpServer, opts: AcceptorOptions): Promise<Acceptors> {
  const extra = Math.max(0, Math.floor(opts.count) - 1);
  if (extra === 0) return { count: 1, accepted: () => 0, close: async () => {} };
  const own = (server as unknown as { _handle?: object | null })._handle;
  if (!own) throw new Error('acceptors: the server is not listening');
  const handles = await duplicateListeningHandle(own, extra, opts.timeoutMs ?? 10_000);

  // One limit over every handle: count every connection the http.Server sees.
  const maxConnections = server.maxConnections ?? Number.POSITIVE_INFINITY;
  server.maxConnections = Number.POSITIVE_INFINITY;
  let open = 0;
  server.prependListener('connection', (socket: Socket) => {
    open++;
    socket.once('close', () => {
      open--;
    });
    if (open > maxConnections) {
      server.emit('drop', {
        localAddress: socket.localAddress,
        localPort: socket.localPort,
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        remoteFamily: socket.remoteFamily,
      });
      socket.destroy();
    }
  });

  let accepted = 0;
  const extras: Server[] = handles.map((handle) => {
    // The http.Server's own socket options (node:http: allowHalfOpen, noDelay; front: keepAlive).
    const acceptor = createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true });
    acceptor.on('connection', (socket: Socket) => {
      accepted++;
      server.emit('connection', socket);
    });
    acceptor.on('error', (err) => server.emit('error', err));
    acceptor.listen(handle as never, opts.backlog);
    return acceptor;
  });
  let closed: Promise<void> | null = null;
  return {
    count: extras.length + 1,
    accepted: () => accepted,
    close() {
      closed ??= Promise.all(
        extras.map((acceptor) => new Promise<void>((resolve) => acceptor.close(() => resolve()))),
      ).then(() => {});
      return closed;
    },
  };
}

/** `count` new descriptors of the socket behind `handle`, through a helper process. */
function duplicateListeningHandle(handle: object, count: number, timeoutMs: number): Promise<object[]> {
  // The helper needs no loaders or flags of ours.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const helper = spawn(process.execPath, ['-e', HELPER], {
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  });
  const received: object[] = [];
  return new Promise<object[]>((resolve, reject) => {
    const fail = (why: string): void => {
      clearTimeout(timer);
      helper.kill();
      for (const h of received) (h as { close(): void }).close();
      reject(new Error(`acceptors: ${why}`));
    };
    const timer = setTimeout(
      () => fail(`helper did not hand back ${count} handles in ${timeoutMs} ms`),
      timeoutMs,
    );
    helper.on('error', (err) => fail(`helper failed to start (${err.message})`));
    helper.on('message', (_message, h) => {
      if (h) received.push(h as object);
    });
    helper.on('close', (code) => {
      if (received.length < count) {
        fail(`helper exited (${code}) after ${received.length} of ${count} handles`);
        return;
      }
      clearTimeout(timer);
      resolve(received);
    });
    helper.send({ count }, handle as never);
  });
}
