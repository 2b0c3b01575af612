/**
 * An origin on a raw socket, for answers a Node http server will not write (truncated, stalled,
 * badly framed): it reads a whole request (head and Content-Length body), records its path, then
 * hands the socket to `answer`. A request head over 16 KiB closes the connection.
 */
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';

export interface RawOrigin {
  readonly port: number;
  /** Paths of the requests read in full, in order (a bare trailing `?` dropped). */
  readonly seen: string[];
  close(): Promise<void>;
}

export async function startRawOrigin(answer: (socket: net.Socket, path: string) => void): Promise<RawOrigin> {
  const seen: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) {
        if (buf.length > 16_384) socket.destroy();
        return;
      }
      const head = buf.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (buf.length < end + 4 + length) return;
      socket.off('data', onData);
      const path = (head.split(' ')[1] ?? '').replace(/\?$/, '');
      seen.push(path);
      answer(socket, path);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
