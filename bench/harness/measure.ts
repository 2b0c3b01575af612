// One request before any load: a target that answers the scenario with anything but the origin's
// 2xx body fails right here, with its status, instead of being measured serving error pages.
import { request } from 'node:http';
import type { LoadRequest } from './load.js';

export async function probe(req: LoadRequest, expectedBytes: number, timeoutMs = 5000): Promise<void> {
  const url = new URL(req.connectUrl);
  const { status, bytes } = await new Promise<{ status: number; bytes: number }>((resolve, reject) => {
    const clientReq = request(
      {
        host: url.hostname,
        port: url.port,
        path: req.requestTarget,
        headers: { host: req.host },
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      },
    );
    clientReq.on('timeout', () => clientReq.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    clientReq.on('error', reject);
    clientReq.end();
  });
  if (status < 200 || status > 299 || bytes !== expectedBytes) {
    throw new Error(
      `GET ${req.requestTarget} answered ${status} with ${bytes} bytes (want 2xx, ${expectedBytes})`,
    );
  }
}
