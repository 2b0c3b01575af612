/**
 * Child process of warm-start.test.ts ("shutdown"): starts sidecache with one live and one down
 * route origin (a parked connection and a backoff timer exist), closes it, and then does not call
 * process.exit: the process must end on its own, which it cannot while a socket or a ref'd timer
 * that keep-warm made is left behind.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { freePort } from '../helpers/ports.js';
import { startTestSidecache } from '../helpers/sidecache.js';

const sockets = new Set<Socket>();
const origin = http.createServer({ keepAliveTimeout: 30_000 }, (_req, res) => res.end('ok'));
origin.on('connection', (s: Socket) => {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
});
origin.listen(0, '127.0.0.1');
await once(origin, 'listening');
const port = (origin.address() as AddressInfo).port;
const sc = await startTestSidecache({
  routes: [
    { name: 'live', origin: `http://127.0.0.1:${port}` },
    { name: 'down', origin: `http://127.0.0.1:${await freePort()}` },
  ],
  upstream: { warm: { connections: 1, minIdle: 1, retryMinMs: 5_000, retryMaxMs: 5_000 } },
} as never);
await sc.instance.warmStart;
const live = sc.instance.warm.state().origins.find((o) => o.route === 'live');
await sc.close();
for (let i = 0; i < 100 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
console.log(`parked=${live?.parked} originOpenAfterClose=${sockets.size}`);
origin.close();
