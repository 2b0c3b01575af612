// The server side of `npm run bench:accept`: a plain Node http server whose handler burns
// ACCEPT_BENCH_BUSY_US of CPU per request (so 1000 busy connections make each loop iteration
// long), accepting in one of three ways:
//   inline        the server's own listening handle (libuv: one accept per loop iteration)
//   acceptors N   N handles on the same socket (src/front/acceptors.ts, what proxy.acceptors does)
//   cluster       node:cluster, round-robin, one worker: the primary accepts and hands each
//                 connection to the worker over IPC
// Usage: node --import tsx bench/targets/accept-server.ts --listen 127.0.0.1:0 [--mode M] [--count N]
import cluster from 'node:cluster';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { addAcceptors } from '../../src/front/acceptors.js';
import { LISTENING_PREFIX } from '../harness/child-contract.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, mode: { type: 'string' }, count: { type: 'string' } },
});
const [mode, countArg] = [values.mode ?? 'inline', values.count ?? '8'];
const announce = (port: number) => process.stdout.write(`${LISTENING_PREFIX}${JSON.stringify({ port })}\n`);
const busyMs = Number(process.env.ACCEPT_BENCH_BUSY_US ?? '100') / 1000;
const BACKLOG = 4096;

function serve(_req: IncomingMessage, res: ServerResponse): void {
  const until = performance.now() + busyMs;
  while (performance.now() < until) {
    // burn CPU, as a proxy's per-request work does
  }
  res.end('ok\n');
}

if (mode === 'cluster' && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const worker = cluster.fork();
  worker.on('message', (m: { port: number }) => announce(m.port));
  worker.on('exit', (code) => process.exit(code ?? 1));
  process.on('SIGTERM', () => worker.kill('SIGTERM'));
} else {
  const server = createServer({ keepAlive: true }, serve);
  server.listen({ port: 0, host: '127.0.0.1', backlog: BACKLOG }, () => {
    void (async () => {
      if (mode === 'acceptors') await addAcceptors(server, { count: Number(countArg), backlog: BACKLOG });
      const { port } = server.address() as AddressInfo;
      if (cluster.isWorker) process.send?.({ port });
      else announce(port);
    })();
  });
  process.on('SIGTERM', () => process.exit(0));
}
process.stdin.on('close', () => process.exit(0)).resume();
