/** Builds Exchanges as front/ would, and reads Replies, for stage tests. */
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import type { Route } from '../../src/config/runtime.js';
import { createExchange, type Exchange, type Reply } from '../../src/exchange.js';

let seq = 0;

export interface ExchangeInit {
  method?: string;
  headers?: IncomingHttpHeaders;
  route?: Pick<Route, 'name'> | null;
  signal?: AbortSignal;
  body?: Readable | null;
}

export function makeExchange(url: string, init: ExchangeInit = {}): Exchange {
  const target = new URL(url);
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(init.headers ?? {})) headers[k.toLowerCase()] = v;
  return createExchange({
    id: `t${++seq}`,
    mode: 'route',
    method: init.method ?? 'GET',
    target,
    origin: target.origin,
    route: (init.route ?? null) as Route | null,
    headers,
    body: init.body ?? null,
    client: { address: '127.0.0.1', port: 1, protocol: 'http' },
    signal: init.signal ?? new AbortController().signal,
    timings: { startedAt: Date.now(), start: performance.now(), phases: {} },
  });
}

export interface ReadReply {
  readonly status: number;
  readonly headers: Reply['headers'];
  readonly text: string;
  readonly source: Reply['source'];
}

export async function readReply(reply: Reply): Promise<ReadReply> {
  let text = '';
  if (Buffer.isBuffer(reply.body)) {
    text = reply.body.toString('utf8');
  } else if (reply.body) {
    const chunks: Buffer[] = [];
    for await (const c of reply.body) chunks.push(Buffer.from(c as Uint8Array));
    text = Buffer.concat(chunks).toString('utf8');
  }
  return { status: reply.status, headers: reply.headers, text, source: reply.source };
}

/** A clock tests move by hand (epoch ms). */
export function manualClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start;
  return {
    now: () => t,
    advance(ms) {
      t += ms;
    },
  };
}
