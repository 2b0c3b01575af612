/**
 * One cache stage in front of a real origin on 127.0.0.1, with a hand-moved clock. Everything it
 * starts is stopped by `close()` (registered with the test's `after`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TestContext } from 'node:test';
import { formatHttpDate } from '../../src/cache/http-date.js';
import type { RouteCachePolicyInput } from '../../src/cache/options.js';
import { type CacheDeps, type CacheStage, createCacheStage, policyByRoute } from '../../src/cache/stage.js';
import type { Exchange, Next, Reply } from '../../src/exchange.js';
import { type Origin, type OriginHandler, startOrigin } from './counting-origin.js';
import { makeExchange, manualClock, type ReadReply, readReply } from './exchange.js';
import { createOriginTerminal, type OriginTerminal } from './origin-terminal.js';

export interface Harness {
  readonly origin: Origin;
  readonly terminal: OriginTerminal;
  readonly clock: ReturnType<typeof manualClock>;
  readonly stage: CacheStage;
  readonly pipeline: Next;
  /** Builds an exchange for `path` on the origin, on route "r" (policy from `policy`). */
  exchange(path: string, init?: RequestInit): Exchange;
  /** Sends and reads the whole reply; returns the exchange too. */
  get(path: string, init?: RequestInit): Promise<ReadReply & { ex: Exchange }>;
  /** Sends and returns the reply unread. */
  send(path: string, init?: RequestInit): Promise<{ reply: Reply; ex: Exchange }>;
  close(): Promise<void>;
}

export interface RequestInit {
  method?: string;
  headers?: IncomingHttpHeaders;
  signal?: AbortSignal;
  route?: string;
}

export interface HarnessInit {
  options?: Record<string, unknown>;
  /** Policy of route "r" (the default route of exchanges). */
  policy?: RouteCachePolicyInput;
  /** Policies by route name, for tests with several routes. */
  policies?: Record<string, RouteCachePolicyInput>;
  deps?: Omit<CacheDeps, 'now' | 'policyFor'>;
}

export async function startHarness(
  t: TestContext | null,
  handler: OriginHandler,
  init: HarnessInit = {},
): Promise<Harness> {
  const clock = manualClock();
  // The origin's Date follows the test clock, as a well-synchronised origin's would.
  const origin = await startOrigin((req, res, n) => {
    res.setHeader('date', formatHttpDate(clock.now()));
    return handler(req, res, n);
  });
  const terminal = createOriginTerminal();
  const stage = createCacheStage(init.options ?? {}, {
    ...init.deps,
    now: clock.now,
    policyFor: policyByRoute({ r: init.policy ?? {}, ...init.policies }),
  });
  const pipeline = stage(terminal.next);
  const exchange = (path: string, ri: RequestInit = {}): Exchange =>
    makeExchange(origin.url + path, {
      ...(ri.method ? { method: ri.method } : {}),
      ...(ri.headers ? { headers: ri.headers } : {}),
      ...(ri.signal ? { signal: ri.signal } : {}),
      route: { name: ri.route ?? 'r' },
    });
  const h: Harness = {
    origin,
    terminal,
    clock,
    stage,
    pipeline,
    exchange,
    async send(path, ri) {
      const ex = exchange(path, ri);
      return { reply: await pipeline(ex), ex };
    },
    async get(path, ri) {
      const ex = exchange(path, ri);
      const r = await readReply(await pipeline(ex));
      return { ...r, ex };
    },
    async close() {
      await stage.idle();
      await terminal.close();
      await origin.close();
    },
  };
  t?.after(() => h.close());
  return h;
}

/** The Cache-Status header as a string. */
export function cacheStatus(r: { headers: Reply['headers'] }): string {
  return String(r.headers['cache-status'] ?? '');
}
