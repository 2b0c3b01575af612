// Makes TLS handshakes cost network round trips on loopback: wraps a raw TCP socket so that every
// server write whose first TLS record is a handshake (22) or change_cipher_spec (20) record, i.e.
// each server flight of a handshake, is held back `delayMs`. Application data (23, which in TLS
// 1.3 also carries session tickets and encrypted handshake messages sent in the same flight) is
// not delayed, so the delay is paid once per round trip, not per byte. Give the result to an
// https/tls server with `server.emit('connection', wrapped)`.
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

export function delayHandshakeFlights(raw: Socket, delayMs: number): Duplex {
  const wrapper = new Duplex({
    read() {
      raw.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      const type = chunk[0];
      if (delayMs > 0 && (type === 22 || type === 20)) setTimeout(() => raw.write(chunk, callback), delayMs);
      else raw.write(chunk, callback);
    },
    final(callback) {
      raw.end(callback);
    },
    destroy(err, callback) {
      raw.destroy();
      callback(err);
    },
  });
  raw.on('data', (chunk: Buffer) => {
    if (!wrapper.push(chunk)) raw.pause();
  });
  raw.on('end', () => wrapper.push(null));
  raw.on('error', (err) => wrapper.destroy(err));
  raw.on('close', () => wrapper.destroy());
  return wrapper;
}
