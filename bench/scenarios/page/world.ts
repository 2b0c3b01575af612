// The fake third-party world of `npm run bench:scenario`, all on loopback: three TLS origins with a
// certificate from a CA made at run time (test/helpers/pki.ts), standing in for a GitHub-like API,
// a Stripe-like API and a user service, and a nameserver (test/helpers/dns-server.ts) that answers
// their names after `dnsDelayMs`. Names end in `.test` (RFC 2606): nothing may leave loopback.
//
// Each origin costs what a distant API costs: every TLS handshake round trip is delayed
// (bench/targets/handshake-delay.ts) and every request waits a think time before it is answered. The
// think time is a pure function of method and path (thinkMinMs..thinkMaxMs), so the direct and the
// proxied runs wait exactly as long for the same calls. The origins log every request (with its
// think time) and count TLS handshakes: the bench reads what reached them, per page.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import { type AddressInfo, createServer as createNetServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDnsServer, type TestDnsServer } from '../../../test/helpers/dns-server.js';
import { DnsZone } from '../../../test/helpers/dns-zone.js';
import { createTestCa } from '../../../test/helpers/pki.js';
import { delayHandshakeFlights } from '../../targets/handshake-delay.js';

export const API_NAMES = ['github', 'stripe', 'users'] as const;
export type ApiName = (typeof API_NAMES)[number];

export const HOSTNAMES: Record<ApiName, string> = {
  github: 'api.github.test',
  stripe: 'api.stripe.test',
  users: 'users.test',
};

/** Credentials the app sends and the origins require. Fake, of course. */
export const CREDENTIALS = {
  githubToken: 'ghp_scenarioFakeToken0000000000000000',
  stripeKey: 'sk_test_scenarioFakeKey000000000000',
  usersApiKey: 'users-scenario-key',
} as const;

export const GITHUB_RATE_LIMIT = 5000;
export const GITHUB_ORG = 'acme';
export const GITHUB_REPO = 'acme/widgets';
export const GITHUB_ORG_REPO_PAGES = 4;
const GITHUB_PER_PAGE = 25;

export interface WorldOptions {
  readonly dnsDelayMs: number;
  /** Origins close keep-alive connections idle this long (a real API's idle timeout, scaled down). */
  readonly originIdleMs?: number;
  /** TTL of the origins' DNS records, seconds. */
  readonly dnsTtlS?: number;
  readonly handshakeDelayMs: number;
  readonly thinkMinMs: number;
  readonly thinkMaxMs: number;
}

export interface OriginRequest {
  readonly api: ApiName;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly thinkMs: number;
  /** Set by the proxy (sidecache adds Via); null for a direct call. */
  readonly via: string | null;
}

export interface WorldCounts {
  readonly requests: number;
  readonly handshakes: number;
  readonly dnsQueries: number;
  /** GitHub 200 answers: each costs one rate-limit unit (304s are free, as on GitHub). */
  readonly githubUnits: number;
  readonly posts: number;
}

export interface World {
  /** `https://NAME:PORT` per API. */
  readonly urls: Record<ApiName, string>;
  readonly hosts: Record<ApiName, { readonly name: string; readonly port: number }>;
  readonly dns: TestDnsServer;
  /** PEM file of the CA that signed the origins' certificates. */
  readonly caFile: string;
  /** Every request the origins answered, in order. */
  readonly log: readonly OriginRequest[];
  counts(): WorldCounts;
  /** One warm keep-alive round trip to an origin without think time (median of `n`), in ms. */
  warmRoundTripMs(n: number): Promise<number>;
  stop(): Promise<void>;
}

/** Think time of one request: a pure function of method and path, in [min, max]. */
export function thinkTimeMs(method: string, path: string, min: number, max: number): number {
  if (max <= min) return min;
  const h = createHash('sha256').update(`${method} ${path}`).digest().readUInt32BE(0);
  return min + (h % (max - min + 1));
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: unknown;
}

type Handler = (req: IncomingMessage, url: URL, body: string) => Answer;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Answer => ({
  status,
  headers,
  body,
});

function githubHandler(baseUrl: () => string): Handler {
  const repos = Array.from({ length: GITHUB_ORG_REPO_PAGES * GITHUB_PER_PAGE }, (_, i) => ({
    id: 1000 + i,
    full_name: `${GITHUB_ORG}/repo-${String(i + 1).padStart(3, '0')}`,
    stargazers_count: (i * 37) % 500,
    language: ['TypeScript', 'Python', 'Go', 'Rust'][i % 4],
  }));
  return (req, url) => {
    if (req.headers.authorization !== `Bearer ${CREDENTIALS.githubToken}`)
      return json(401, { message: 'Requires authentication' });
    const p = url.pathname;
    if (p === `/repos/${GITHUB_REPO}`)
      return json(200, {
        full_name: GITHUB_REPO,
        description: 'Widgets for every occasion',
        stargazers_count: 4321,
        open_issues_count: 17,
      });
    if (p === `/repos/${GITHUB_REPO}/releases`)
      return json(200, [{ tag_name: 'v3.2.1' }, { tag_name: 'v3.2.0' }, { tag_name: 'v3.1.9' }]);
    if (p === `/repos/${GITHUB_REPO}/contributors`)
      return json(200, [
        { login: 'ada', contributions: 812 },
        { login: 'grace', contributions: 455 },
        { login: 'linus', contributions: 97 },
      ]);
    if (p === `/orgs/${GITHUB_ORG}/repos`) {
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
      const link = (n: number, rel: string) =>
        `<${baseUrl()}${p}?per_page=${GITHUB_PER_PAGE}&page=${n}>; rel="${rel}"`;
      const links = [];
      if (page < GITHUB_ORG_REPO_PAGES)
        links.push(link(page + 1, 'next'), link(GITHUB_ORG_REPO_PAGES, 'last'));
      if (page > 1) links.push(link(page - 1, 'prev'), link(1, 'first'));
      return json(
        200,
        repos.slice((page - 1) * GITHUB_PER_PAGE, page * GITHUB_PER_PAGE),
        links.length ? { link: links.join(', ') } : {},
      );
    }
    return json(404, { message: 'Not Found' });
  };
}

function stripeHandler(): Handler {
  return (req, url) => {
    if (req.headers.authorization !== `Bearer ${CREDENTIALS.stripeKey}`)
      return json(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided' } });
    const list = (data: unknown[]) => ({ object: 'list', url: url.pathname, has_more: false, data });
    switch (url.pathname) {
      case '/v1/plans':
        return json(
          200,
          list([
            { id: 'plan_basic', object: 'plan', amount: 900, currency: 'eur', interval: 'month' },
            { id: 'plan_team', object: 'plan', amount: 2900, currency: 'eur', interval: 'month' },
            { id: 'plan_corp', object: 'plan', amount: 9900, currency: 'eur', interval: 'month' },
          ]),
        );
      case '/v1/products':
        return json(
          200,
          list([
            { id: 'prod_widgets', object: 'product', name: 'Widgets' },
            { id: 'prod_gadgets', object: 'product', name: 'Gadgets' },
          ]),
        );
      case '/v1/prices':
        return json(
          200,
          list([
            { id: 'price_w', object: 'price', unit_amount: 1200, currency: 'eur', product: 'prod_widgets' },
            { id: 'price_g', object: 'price', unit_amount: 3400, currency: 'eur', product: 'prod_gadgets' },
          ]),
        );
      case '/v1/balance':
        return json(200, { object: 'balance', available: [{ amount: 123456, currency: 'eur' }] });
      default:
        return json(404, { error: { type: 'invalid_request_error', message: 'Unrecognized request URL' } });
    }
  };
}

function usersHandler(): Handler {
  const people = [
    { id: 1, name: 'Ada', team: 'platform' },
    { id: 2, name: 'Grace', team: 'payments' },
    { id: 3, name: 'Linus', team: 'infra' },
    { id: 4, name: 'Barbara', team: 'api' },
    { id: 5, name: 'Ken', team: 'infra' },
  ];
  let customData = JSON.stringify({ theme: 'dark', pinned: ['acme/widgets'], lastPage: 'overview' });
  return (req, url, body) => {
    if (req.headers['x-api-key'] !== CREDENTIALS.usersApiKey) return json(401, { error: 'bad api key' });
    const p = url.pathname;
    if (p === '/api/v1/users') return json(200, { users: people.map((u) => ({ id: u.id })) });
    if (p === '/api/v1/teams') return json(200, { teams: [...new Set(people.map((u) => u.team))].sort() });
    const user = p.match(/^\/api\/v1\/users\/(\d+)$/);
    if (user) {
      const found = people.find((u) => u.id === Number(user[1]));
      return found ? json(200, found) : json(404, { error: 'no such user' });
    }
    if (p === '/api/v1/users/1/custom-data') {
      if (req.method === 'POST') {
        customData = body;
        return json(200, { saved: true });
      }
      return json(200, JSON.parse(customData));
    }
    return json(404, { error: 'not found' });
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

export async function startWorld(opts: WorldOptions): Promise<World> {
  const ca = await createTestCa('scenario origins CA');
  const caFile = ca.writeCertFile();
  const log: OriginRequest[] = [];
  const rate = { remaining: GITHUB_RATE_LIMIT };
  let handshakes = 0;
  const zone = new DnsZone();
  zone.delayMs = opts.dnsDelayMs;
  const closers: Array<() => Promise<void>> = [];
  const urls = {} as Record<ApiName, string>;
  const hosts = {} as Record<ApiName, { name: string; port: number }>;
  const handlers: Record<ApiName, Handler> = {
    github: githubHandler(() => urls.github),
    stripe: stripeHandler(),
    users: usersHandler(),
  };

  for (const api of API_NAMES) {
    const name = HOSTNAMES[api];
    const leaf = await ca.issue({ dns: [name] });
    const handler = handlers[api];
    const https = createHttpsServer(
      { cert: leaf.cert, key: leaf.key, keepAliveTimeout: opts.originIdleMs ?? 60_000 },
      (req: IncomingMessage, res: ServerResponse) => {
        void serve(api, handler, req, res);
      },
    );
    https.on('secureConnection', () => {
      handshakes++;
    });
    const sockets = new Set<Socket>();
    const tcp = createNetServer({ noDelay: true }, (raw) => {
      sockets.add(raw);
      raw.once('close', () => sockets.delete(raw));
      https.emit('connection', delayHandshakeFlights(raw, opts.handshakeDelayMs));
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const port = (tcp.address() as AddressInfo).port;
    urls[api] = `https://${name}:${port}`;
    hosts[api] = { name, port };
    zone.set(name, { A: ['127.0.0.1'], ttl: opts.dnsTtlS ?? 300 });
    closers.push(async () => {
      https.closeAllConnections();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    });
  }

  async function serve(api: ApiName, handler: Handler, req: IncomingMessage, res: ServerResponse) {
    try {
      const url = new URL(req.url ?? '/', urls[api]);
      const body = await readBody(req);
      if (url.pathname === '/_ping') {
        res.writeHead(204).end();
        return;
      }
      const thinkMs = thinkTimeMs(
        req.method ?? 'GET',
        `${url.pathname}${url.search}`,
        opts.thinkMinMs,
        opts.thinkMaxMs,
      );
      await sleep(thinkMs);
      const answer = handler(req, url, body);
      const data = Buffer.from(JSON.stringify(answer.body));
      const headers: Record<string, string> = {
        'content-type': 'application/json; charset=utf-8',
        ...answer.headers,
      };
      let status = answer.status;
      if (api === 'github' && status === 200) {
        // As api.github.com answers an authenticated call: private, 60 s, an ETag, and a rate
        // limit that conditional requests answered 304 do not spend.
        const etag = `W/"${createHash('sha256').update(data).digest('hex').slice(0, 32)}"`;
        Object.assign(headers, {
          'cache-control': 'private, max-age=60, s-maxage=60',
          vary: 'Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding',
          etag,
          'x-ratelimit-limit': String(GITHUB_RATE_LIMIT),
        });
        const inm = req.headers['if-none-match'];
        if (inm?.split(',').some((t) => t.trim() === etag)) status = 304;
        else rate.remaining--;
        headers['x-ratelimit-remaining'] = String(rate.remaining);
        headers['x-ratelimit-used'] = String(GITHUB_RATE_LIMIT - rate.remaining);
      }
      if (api === 'stripe') {
        // As api.stripe.com answers everything, slow-changing catalogue data included.
        headers['cache-control'] = 'no-cache, no-store';
        headers['request-id'] = `req_${log.length}`;
      }
      const via = req.headers.via;
      log.push({
        api,
        method: req.method ?? 'GET',
        path: `${url.pathname}${url.search}`,
        status,
        thinkMs,
        via: via ?? null,
      });
      if (status === 304) {
        delete headers['content-type'];
        res.writeHead(304, headers).end();
        return;
      }
      headers['content-length'] = String(data.length);
      res.writeHead(status, headers).end(data);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(String(err));
      else res.destroy();
    }
  }

  const dns = await startDnsServer(zone);
  return {
    urls,
    hosts,
    dns,
    caFile,
    log,
    counts: () => ({
      requests: log.length,
      handshakes,
      dnsQueries: zone.total,
      githubUnits: GITHUB_RATE_LIMIT - rate.remaining,
      posts: log.filter((r) => r.method === 'POST').length,
    }),
    async warmRoundTripMs(n) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(caFile) });
      const times: number[] = [];
      try {
        for (let i = 0; i <= n; i++) {
          const t0 = performance.now();
          await new Promise<void>((resolve, reject) => {
            const req = httpsRequest(
              {
                host: '127.0.0.1',
                port: hosts.users.port,
                servername: hosts.users.name,
                headers: { host: `${hosts.users.name}:${hosts.users.port}` },
                path: '/_ping',
                agent,
              },
              (res) => {
                res.resume();
                res.on('end', () => resolve());
              },
            );
            req.on('error', reject);
            req.end();
          });
          if (i > 0) times.push(performance.now() - t0); // the first one pays the handshake
        }
      } finally {
        agent.destroy();
      }
      times.sort((a, b) => a - b);
      return times[Math.floor(times.length / 2)] ?? 0;
    },
    async stop() {
      await Promise.all(closers.map((c) => c()));
      await dns.stop();
    },
  };
}
