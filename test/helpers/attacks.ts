// The soak's attack probes (issue 18) against a running sidecache: forged forwarding headers, SNI
// mismatches inside an intercepted tunnel, cross-site admin calls, truncated answers to upgrades
// (bench/README.md, "attacks"). Each attempt ends `refused`, `contained` (the attacker got something
// only for itself) or `through`, decided from what a client, the origin or the TLS peer saw, never
// from what sidecache says about itself. Only 127.0.0.1 traffic; every wait is bounded.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { connectThrough } from './connect.js';
import { startOrigin, type TestOrigin } from './origin.js';
import { type RawOrigin, startRawOrigin } from './raw-origin.js';

export interface AttackCount {
  readonly name: string;
  tried: number;
  refused: number;
  contained: number;
  through: number;
  /** One line per attempt that got through (at most a few), to say what happened. */
  readonly examples: string[];
}

export interface AttackTargets {
  /** Proxy listener port (127.0.0.1). */
  readonly proxyPort: number;
  /** http://127.0.0.1:PORT of the admin listener. */
  readonly adminUrl: string;
  /** Reverse route prefix whose origin is the reflecting origin (`/r`). */
  readonly reflectRoute: string;
  readonly reflectPort: number;
  /** A host on the intercept list (CONNECT to it is decrypted). */
  readonly interceptHost: string;
  /** The raw origin that truncates its answers to upgrades. */
  readonly upgradePort: number;
  /** A route name, for purge. */
  readonly routeName: string;
}

const WAIT_MS = 4_000;

/** Headers an origin behind a proxy believes, with forged values (the repro and more). */
export const FORGED_HEADERS = [
  'Forwarded: host=evil.example;proto=https;for=203.0.113.9',
  'X-Forwarded-Proto: https',
  'X-Forwarded-Port: 8443',
  'X-Forwarded-Prefix: /evil',
  'X-Forwarded-Host: evil.example',
  'X-Forwarded-For: 203.0.113.9',
  'X-Real-IP: 203.0.113.9',
];
const FORGED_VALUE = /evil\.example|8443|\/evil|203\.0\.113\.9|proto=https|"https"/;

/** The forwarding headers a reflecting origin reports back. */
export const REFLECTED_HEADERS = [
  'forwarded',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-host',
  'x-forwarded-for',
  'x-real-ip',
];

/** An origin that answers every request with the forwarding headers it got, cacheable for all. */
export function startReflectingOrigin(): Promise<TestOrigin> {
  return startOrigin((req, res) => {
    const seen = Object.fromEntries(
      REFLECTED_HEADERS.map((n) => [n, req.headers[n] === undefined ? null : String(req.headers[n])]),
    );
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=600' });
    res.end(JSON.stringify(seen));
  });
}

/**
 * A raw-socket origin for upgrades (test/helpers/raw-origin.ts), once it has read the whole request:
 * `/chunked*` a 200 with one chunk and a close 50 ms later; `/length*` a 200 whose Content-Length
 * promises more than it sends, then a close; `/silent*` a close with nothing. `seen` lists the
 * paths of the requests it read.
 */
export function startTruncatingOrigin(): Promise<RawOrigin> {
  return startRawOrigin((socket, path) => {
    if (path.startsWith('/silent')) {
      setTimeout(() => socket.destroy(), 50);
      return;
    }
    socket.write(
      path.startsWith('/length')
        ? 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\nhello'
        : 'HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
    );
    setTimeout(() => socket.destroy(), 50);
  });
}

/** Sends `bytes`, collects the answer until close or WAIT_MS; `closed`: the server closed. */
function rawExchange(port: number, bytes: string): Promise<{ raw: string; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let closed = false;
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => socket.destroy(), WAIT_MS);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      closed = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') closed = true;
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ raw: Buffer.concat(chunks).toString('latin1'), closed });
    });
  });
}

/** A whole HTTP/1.1 response over a fresh connection (`Connection: close`); status 0 on failure. */
async function request(
  port: number,
  head: string,
): Promise<{ status: number; body: string; raw: string; closed: boolean }> {
  const { raw, closed } = await rawExchange(port, head);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
  const split = raw.indexOf('\r\n\r\n');
  return { status, body: split === -1 ? '' : raw.slice(split + 4), raw, closed };
}

function counter(name: string): AttackCount {
  return { name, tried: 0, refused: 0, contained: 0, through: 0, examples: [] };
}

function gotThrough(c: AttackCount, what: string): void {
  c.through++;
  if (c.examples.length < 3) c.examples.push(what);
}

/** Forged forwarding headers through a reverse route and the forward proxy, then a plain client. */
async function forwarding(t: AttackTargets, attempts: number, run: string): Promise<AttackCount> {
  const c = counter('forged forwarding headers');
  const forged = `${FORGED_HEADERS.join('\r\n')}\r\n`;
  for (let i = 0; i < attempts; i++) {
    const forward = i % 2 === 1;
    const path = `/fwd-${run}-${i}`;
    const target = forward ? `http://127.0.0.1:${t.reflectPort}${path}` : `${t.reflectRoute}${path}`;
    const host = forward ? `127.0.0.1:${t.reflectPort}` : '127.0.0.1';
    c.tried++;
    const attacker = await request(
      t.proxyPort,
      `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n${forged}Connection: close\r\n\r\n`,
    );
    const victim = await request(
      t.proxyPort,
      `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    if (victim.status === 200 && FORGED_VALUE.test(victim.body)) {
      gotThrough(
        c,
        `${forward ? 'forward' : 'reverse'} ${path}: the plain client got ${victim.body.slice(0, 200)}`,
      );
    } else if (attacker.status === 200 && FORGED_VALUE.test(attacker.body)) c.contained++;
    else c.refused++;
  }
  return c;
}

/** CONNECT to the intercepted host, then TLS with another SNI. */
async function sniMismatch(t: AttackTargets, attempts: number, run: string): Promise<AttackCount> {
  const c = counter('SNI other than the CONNECT host');
  for (let i = 0; i < attempts; i++) {
    const sni = i % 3 === 0 ? 'www.google.com' : `forged-${run}-${i}.example`;
    c.tried++;
    const outcome = await handshake(t.proxyPort, `${t.interceptHost}:443`, sni);
    if (outcome.kind === 'leaf' && outcome.names.includes(sni)) {
      gotThrough(c, `SNI ${sni}: leaf for ${outcome.names.join(', ')} issued by ${outcome.issuer}`);
    } else if (outcome.kind === 'leaf') c.contained++;
    else c.refused++;
  }
  return c;
}

type HandshakeOutcome = { kind: 'leaf'; names: string[]; issuer: string } | { kind: 'failed'; why: string };

/** CONNECT `authority` through the proxy, then a TLS handshake with `sni`; what the peer presented. */
export async function handshake(
  proxyPort: number,
  authority: string,
  sni: string,
): Promise<HandshakeOutcome> {
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  let secure: tls.TLSSocket | undefined;
  let raw: net.Socket | undefined;
  const attempt = async (): Promise<HandshakeOutcome> => {
    const tunnel = await connectThrough(`http://127.0.0.1:${proxyPort}`, authority);
    if (!('socket' in tunnel)) return { kind: 'failed', why: `CONNECT ${tunnel.status}` };
    raw = tunnel.socket;
    secure = tls.connect({ socket: raw, servername: sni, rejectUnauthorized: false });
    if (late) raw.destroy();
    await once(secure, 'secureConnect');
    const cert = secure.getPeerCertificate();
    const names = String(cert.subjectaltname ?? '')
      .split(',')
      .map((n) => n.trim().replace(/^DNS:/, ''))
      .filter((n) => n !== '');
    if (cert.subject?.CN) names.push(String(cert.subject.CN));
    return { kind: 'leaf', names, issuer: String(cert.issuer?.CN ?? '?') };
  };
  const timeout = new Promise<HandshakeOutcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'failed', why: 'timeout' }), WAIT_MS);
  });
  try {
    return await Promise.race([
      attempt().catch((err: NodeJS.ErrnoException) => ({
        kind: 'failed' as const,
        why: err.code ?? 'error',
      })),
      timeout,
    ]);
  } finally {
    late = true;
    clearTimeout(timer);
    secure?.destroy();
    raw?.destroy();
  }
}

/** Cross-site and rebound-Host calls to the admin listener (no admin token configured). */
async function crossSiteAdmin(t: AttackTargets, attempts: number): Promise<AttackCount> {
  const c = counter('cross-site admin calls');
  const port = Number(new URL(t.adminUrl).port);
  const own = `127.0.0.1:${port}`;
  const calls = [
    `POST /purge?route=${t.routeName} HTTP/1.1\r\nHost: ${own}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n`,
    `POST /purge?route=${t.routeName} HTTP/1.1\r\nHost: ${own}\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 0\r\n`,
    `POST /reload HTTP/1.1\r\nHost: ${own}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n`,
    'GET /status.json HTTP/1.1\r\nHost: evil.example\r\n',
    `POST /purge?route=${t.routeName} HTTP/1.1\r\nHost: evil.example:${port}\r\nContent-Length: 0\r\n`,
  ];
  for (let i = 0; i < attempts; i++) {
    const call = calls[i % calls.length] as string;
    c.tried++;
    const res = await request(port, `${call}Connection: close\r\n\r\n`);
    if (res.status >= 200 && res.status < 300) {
      gotThrough(c, `${call.split('\r\n').slice(0, 3).join(' | ')} -> ${res.status}`);
    } else c.refused++;
  }
  return c;
}

/** Upgrades answered by a truncated or empty non-101; then a plain GET of the same URL. */
async function truncatedUpgrades(
  t: AttackTargets,
  seen: readonly string[],
  attempts: number,
  run: string,
): Promise<AttackCount> {
  const c = counter('truncated answers to upgrades');
  const kinds = ['chunked', 'length', 'silent'];
  for (let i = 0; i < attempts; i++) {
    const path = `/${kinds[i % kinds.length]}-${run}-${i}`;
    const url = `http://127.0.0.1:${t.upgradePort}${path}`;
    c.tried++;
    const started = Date.now();
    const up = await rawExchange(
      t.proxyPort,
      `POST ${url} HTTP/1.1\r\nHost: 127.0.0.1:${t.upgradePort}\r\nConnection: upgrade\r\n` +
        'Upgrade: websocket\r\nContent-Length: 5\r\n\r\nhello',
    );
    if (up.raw === '' || !up.closed) {
      gotThrough(
        c,
        `${path}: ${up.raw === '' ? 'no answer' : 'not closed'} after ${Date.now() - started} ms (${JSON.stringify(up.raw.slice(0, 80))})`,
      );
      continue;
    }
    const count = (): number => seen.filter((p) => p === path).length;
    const before = count();
    await request(
      t.proxyPort,
      `GET ${url} HTTP/1.1\r\nHost: 127.0.0.1:${t.upgradePort}\r\nConnection: close\r\n\r\n`,
    );
    if (count() === before) gotThrough(c, `${path}: a plain GET was answered without the origin`);
    else c.refused++;
  }
  return c;
}

export interface AttackSizes {
  readonly forwarding: number;
  readonly sni: number;
  readonly admin: number;
  readonly upgrade: number;
}

/** Runs every probe once, in turn; `run` makes paths and names unique to this run. */
export async function runAttacks(
  t: AttackTargets,
  upgradeSeen: readonly string[],
  sizes: AttackSizes,
  run = Date.now().toString(36),
): Promise<AttackCount[]> {
  return [
    await forwarding(t, sizes.forwarding, run),
    await sniMismatch(t, sizes.sni, run),
    await crossSiteAdmin(t, sizes.admin),
    await truncatedUpgrades(t, upgradeSeen, sizes.upgrade, run),
  ];
}

/**
 * What makes a refusal mean something: the same paths work for a legitimate caller (the reflecting
 * route answers, the intercepted host's own SNI gets its leaf, the admin listener answers its own
 * Host and a POST without Origin, upgrades reach the truncating origin).
 */
export async function runControls(
  t: AttackTargets,
  upgradeSeen: readonly string[],
): Promise<{ what: string; ok: boolean }[]> {
  const out: { what: string; ok: boolean }[] = [];
  const reflect = await request(
    t.proxyPort,
    `GET ${t.reflectRoute}/control HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
  );
  out.push({
    what: `the reflecting route answers a plain client (${reflect.status})`,
    ok: reflect.status === 200,
  });
  const own = await handshake(t.proxyPort, `${t.interceptHost}:443`, t.interceptHost);
  out.push({
    what: `the intercepted host's own SNI gets its leaf (${own.kind === 'leaf' ? own.names.join(', ') : own.why})`,
    ok: own.kind === 'leaf' && own.names.includes(t.interceptHost),
  });
  const port = Number(new URL(t.adminUrl).port);
  const status = await request(
    port,
    `GET /status.json HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
  );
  out.push({ what: `the admin listener answers its own Host (${status.status})`, ok: status.status === 200 });
  const purge = await request(
    port,
    `POST /purge?route=${t.routeName} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
  );
  out.push({ what: `a POST /purge with no Origin is served (${purge.status})`, ok: purge.status === 200 });
  const reached = new Set(upgradeSeen.filter((p) => /^\/(chunked|length|silent)-/.test(p))).size;
  out.push({ what: `the upgrade probes reached the truncating origin (${reached} paths)`, ok: reached > 0 });
  return out;
}
