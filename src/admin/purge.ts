/**
 * `POST /purge` on the admin listener: removes stored responses from the cache, every credential
 * and variant of them. Exactly one of:
 *   ?url=<absolute URL>     one URL at its origin (query normalised as its route keys it)
 *   ?prefix=<URL prefix>    every stored URL starting with it, e.g. https://api.github.com/repos/
 *   ?route=<name>           everything under a route's origin and base path
 * Answers `{"purged": N, ...}`; anything else is a 400 that says what was wrong.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheStage } from '../cache/index.js';
import type { Route, Runtime } from '../config/runtime.js';

/** What purge needs from the cache stage. */
export type Purgeable = Pick<CacheStage, 'purgeUrl' | 'purgePrefix' | 'purgeRoute'>;

export type PurgeHandler = (req: IncomingMessage, res: ServerResponse) => void;

const KINDS = ['url', 'prefix', 'route'] as const;
type Kind = (typeof KINDS)[number];

class PurgeRequestError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res
    .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(`${JSON.stringify(body)}\n`);
}

function httpUrl(raw: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new PurgeRequestError(`${what}: "${raw}" is not an absolute URL (e.g. https://api.github.com/x)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new PurgeRequestError(`${what}: "${raw}" is not an http(s) URL`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new PurgeRequestError(`${what}: "${raw}" must not carry user:password@`);
  }
  return url;
}

/** The route whose origin and base path contain `url`, longest base path first. */
export function routeOf(runtime: Runtime, url: URL): Route | undefined {
  let best: Route | undefined;
  for (const r of runtime.routes) {
    if (r.origin !== url.origin) continue;
    if (r.basePath !== '' && url.pathname !== r.basePath && !url.pathname.startsWith(`${r.basePath}/`))
      continue;
    if (best === undefined || r.basePath.length > best.basePath.length) best = r;
  }
  return best;
}

/** A key prefix from a URL prefix: scheme and host normalised as keys have them, the rest kept. */
function keyPrefix(raw: string): string {
  const url = httpUrl(raw, 'prefix');
  const afterScheme = raw.indexOf('//') + 2;
  const pathStart = raw.slice(afterScheme).search(/[/?]/);
  return pathStart === -1 ? url.origin : `${url.origin}${url.pathname}${url.search}`;
}

/** `current` gives the running config's routes (they follow a config reload). */
export function createPurgeHandler(cache: Purgeable | null, current: () => Runtime): PurgeHandler {
  async function purge(kind: Kind, value: string): Promise<Record<string, unknown>> {
    const runtime = current();
    if (cache === null) throw new PurgeRequestError('the cache is off (cache.enabled: false)', 409);
    switch (kind) {
      case 'url': {
        const url = httpUrl(value, 'url');
        url.hash = '';
        const route = routeOf(runtime, url);
        const purged = await cache.purgeUrl(url, route?.cache);
        return { purged, url: url.href, route: route?.name ?? null };
      }
      case 'prefix': {
        const prefix = keyPrefix(value);
        return { purged: await cache.purgePrefix(prefix), prefix };
      }
      case 'route': {
        const route = runtime.routes.find((r) => r.name === value);
        if (!route) {
          const known = runtime.routes.map((r) => r.name).join(', ') || 'none configured';
          throw new PurgeRequestError(`route: "${value}" is not a configured route (routes: ${known})`);
        }
        return { purged: await cache.purgeRoute(route), route: route.name };
      }
      default: {
        const never: never = kind;
        throw new PurgeRequestError(`unknown purge kind ${String(never)}`);
      }
    }
  }

  return (req, res) => {
    const run = async (): Promise<Record<string, unknown>> => {
      if (req.method !== 'POST') {
        throw new PurgeRequestError(`method ${req.method}: purge takes POST`, 405);
      }
      const params = new URL(req.url ?? '/', 'http://admin.invalid').searchParams;
      const given = [...new Set(params.keys())];
      const unknown = given.filter((k) => !(KINDS as readonly string[]).includes(k));
      if (unknown.length > 0) {
        throw new PurgeRequestError(
          `unknown parameter ${unknown.map((k) => `"${k}"`).join(', ')}; use exactly one of url, prefix, route`,
        );
      }
      if (given.length !== 1 || params.getAll(given[0] as string).length !== 1) {
        throw new PurgeRequestError(
          'expected exactly one of ?url=<absolute URL>, ?prefix=<URL prefix>, ?route=<name>',
        );
      }
      const kind = given[0] as Kind;
      const value = params.get(kind) ?? '';
      if (value === '') throw new PurgeRequestError(`${kind}: empty value`);
      return purge(kind, value);
    };
    run().then(
      (body) => answer(res, 200, body),
      (err: unknown) => {
        if (err instanceof PurgeRequestError) {
          if (err.status === 405) res.setHeader('allow', 'POST');
          answer(res, err.status, { error: err.message });
        } else {
          answer(res, 500, { error: `purge failed: ${err instanceof Error ? err.message : String(err)}` });
        }
      },
    );
  };
}
