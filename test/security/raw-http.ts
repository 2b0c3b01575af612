/**
 * Raw bytes over TCP for attack tests: what a client library would sanitise (both Content-Length
 * and Transfer-Encoding, obs-fold, bare CR) is sent exactly as written.
 */
import net from 'node:net';

export interface RawResponse {
  /** 0 when the connection closed without a status line. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Everything received. */
  readonly raw: string;
  json(): Record<string, unknown>;
}

/** Sends `bytes` to 127.0.0.1:`port`, collects what comes back until close or `waitMs` of silence. */
export function sendRaw(port: number, bytes: string | Buffer, waitMs = 1_000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    let timer = setTimeout(() => socket.destroy(), waitMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), Math.min(waitMs, 300));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseRaw(Buffer.concat(chunks).toString('latin1')));
    });
  });
}

export function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const body = end === -1 ? '' : raw.slice(end + 4);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  return {
    status: m ? Number(m[1]) : 0,
    head,
    body,
    raw,
    json() {
      return JSON.parse(body) as Record<string, unknown>;
    },
  };
}
