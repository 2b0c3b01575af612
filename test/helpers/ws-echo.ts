/**
 * A tiny WebSocket echo origin (RFC 6455, text and binary frames up to 64 KiB, no extensions),
 * plain or TLS, plus the frame helpers a raw test client needs. Written by hand so the tests need
 * no WebSocket server package; clients in the tests are real (undici's WebSocket).
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Pem } from './pki.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface WsEchoOrigin {
  readonly port: number;
  /** Upgrade requests received (their headers tell what the proxy forwarded). */
  readonly upgrades: IncomingMessage[];
  close(): Promise<void>;
}

export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

/** One unmasked (server) or masked (client) frame. */
export function encodeFrame(payload: Buffer, opcode = 0x1, masked = false): Buffer {
  const len = payload.length;
  const head: number[] = [0x80 | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else head.push(maskBit | 126, (len >> 8) & 0xff, len & 0xff);
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  const mask = Buffer.from([1, 2, 3, 4]);
  const body = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from(head), mask, body]);
}

/** Parses whole frames from the front of `buf`; returns them and what is left. */
export function decodeFrames(buf: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const opcode = (buf[at] as number) & 0x0f;
    const masked = ((buf[at + 1] as number) & 0x80) !== 0;
    let len = (buf[at + 1] as number) & 0x7f;
    let offset = at + 2;
    if (len === 126) {
      if (buf.length < offset + 2) break;
      len = buf.readUInt16BE(offset);
      offset += 2;
    } else if (len === 127) throw new Error('frames over 64 KiB are not supported here');
    const maskAt = offset;
    if (masked) offset += 4;
    if (buf.length < offset + len) break;
    let payload = buf.subarray(offset, offset + len);
    if (masked) {
      const mask = buf.subarray(maskAt, maskAt + 4);
      payload = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
    }
    frames.push({ opcode, payload });
    at = offset + len;
  }
  return { frames, rest: buf.subarray(at) };
}

function echo(socket: Duplex): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    const { frames, rest } = decodeFrames(Buffer.concat([pending, chunk]));
    pending = rest;
    for (const f of frames) {
      if (f.opcode === 0x8) {
        socket.end(encodeFrame(f.payload, 0x8));
        return;
      }
      if (f.opcode === 0x9) socket.write(encodeFrame(f.payload, 0xa));
      else if (f.opcode === 0x1 || f.opcode === 0x2) socket.write(encodeFrame(f.payload, f.opcode));
    }
  });
  socket.on('error', () => socket.destroy());
}

export async function startWsEchoOrigin(opts: { tls?: Pem; host?: string } = {}): Promise<WsEchoOrigin> {
  const upgrades: IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const refuse = (_req: IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('websocket only');
  };
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, refuse)
    : http.createServer(refuse);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    upgrades.push(req);
    const key = req.headers['sec-websocket-key'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 7\r\n\r\nrefused');
      return;
    }
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n' +
        `sec-websocket-accept: ${acceptKey(key)}\r\n\r\n`,
    );
    echo(socket);
  });
  server.listen(0, opts.host ?? '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    upgrades,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
