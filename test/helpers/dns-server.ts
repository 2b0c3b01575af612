/**
 * A real nameserver on 127.0.0.1, UDP and TCP on the same free port, answering from a DnsZone.
 * `stop()` closes both (a "dead" nameserver: UDP queries then meet ICMP port unreachable).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DnsZone } from './dns-zone.js';

export interface TestDnsServer {
  readonly zone: DnsZone;
  readonly port: number;
  /** `127.0.0.1:PORT`, as `dns.servers` takes it. */
  readonly address: string;
  stop(): Promise<void>;
}

export async function startDnsServer(zone: DnsZone): Promise<TestDnsServer> {
  // UDP takes a free port; TCP must get the same one, so retry in the rare case it is taken for TCP.
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const port = udp.address().port;
    const tcp = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, '127.0.0.1', () => resolve());
      });
    } catch (err) {
      udp.close();
      if (attempt < 10) continue;
      throw err;
    }
    return serve(zone, udp, tcp, port);
  }
}

function serve(zone: DnsZone, udp: dgram.Socket, tcp: net.Server, port: number): TestDnsServer {
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<net.Socket>();
  let stopped = false;

  const later = (fn: () => void) => {
    if (zone.delayMs <= 0) return fn();
    const t = setTimeout(() => {
      timers.delete(t);
      if (!stopped) fn();
    }, zone.delayMs);
    timers.add(t);
  };

  udp.on('message', (msg, rinfo) => {
    let reply: Buffer | null;
    try {
      reply = zone.reply(dnsPacket.decode(msg), 'udp');
    } catch {
      return; // not a DNS message: ignore, as a nameserver would
    }
    if (reply) later(() => udp.send(reply, rinfo.port, rinfo.address));
  });

  tcp.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const msg = buffered.subarray(2, 2 + length);
        buffered = buffered.subarray(2 + length);
        let reply: Buffer | null;
        try {
          reply = zone.reply(dnsPacket.decode(msg), 'tcp');
        } catch {
          socket.destroy();
          return;
        }
        if (reply) {
          const framed = Buffer.alloc(2 + reply.length);
          framed.writeUInt16BE(reply.length, 0);
          reply.copy(framed, 2);
          later(() => socket.write(framed));
        }
      }
    });
  });

  return {
    zone,
    port,
    address: `127.0.0.1:${port}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
      ]);
    },
  };
}
