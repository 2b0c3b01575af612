/**
 * Interception: CONNECT to a host in `intercept` is decrypted with a leaf from sidecache's CA and
 * served like a route (guard, warm pool, strict upstream TLS). Real clients: curl -x --cacert,
 * Python requests with HTTPS_PROXY + REQUESTS_CA_BUNDLE, undici ProxyAgent with requestTls.ca.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { connectThrough } from '../helpers/connect.js';
import { readBody, startOrigin, type TestOrigin } from '../helpers/origin.js';
import { createTestCa, type Pem } from '../helpers/pki.js';
import { hasPythonRequests, PYTHON } from '../helpers/python.js';
import { CLI, startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);

async function metricsText(sc: TestSidecache): Promise<string> {
  return (await fetch(`${sc.adminUrl}/metrics`)).text();
}

describe('HTTPS through HTTPS_PROXY with interception', () => {
  let baseDir: string;
  let caDir: string;
  let originCaFile: string;
  let originLeaf: Pem;
  let origin: TestOrigin;
  let warm: TestOrigin;
  let rogue: TestOrigin;
  let sc: TestSidecache;
  let scCaPem: string;
  let scCaFile: string;

  before(async () => {
    baseDir = mkdtempSync(join(tmpdir(), 'sidecache-intercept-'));
    caDir = join(baseDir, 'ca');
    const ca = await createTestCa('origin CA');
    originCaFile = ca.writeCertFile();
    originLeaf = await ca.issue({ dns: ['localhost'], ips: ['127.0.0.1'] });
    const echo = async (
      req: import('node:http').IncomingMessage,
      res: import('node:http').ServerResponse,
    ): Promise<void> => {
      const body = await readBody(req);
      const cacheable = req.url?.startsWith('/cacheable') ?? false;
      res.writeHead(200, {
        'content-type': 'application/json',
        ...(cacheable ? { 'cache-control': 'public, max-age=60' } : {}),
      });
      res.end(
        JSON.stringify({
          method: req.method,
          path: req.url,
          host: req.headers.host,
          via: req.headers.via ?? null,
          proto: req.headers['x-forwarded-proto'] ?? null,
          body: body.toString(),
        }),
      );
    };
    origin = await startOrigin(echo, { tls: originLeaf });
    warm = await startOrigin(echo, { tls: originLeaf });
    // An origin whose certificate no configured CA signed.
    const rogueCa = await createTestCa('rogue CA');
    rogue = await startOrigin(echo, { tls: await rogueCa.issue({ dns: ['localhost'] }) });
    sc = await startTestSidecache({
      routes: [
        { name: 'api', origin: `https://localhost:${origin.port}` },
        { name: 'warm', origin: `https://localhost:${warm.port}` },
        { name: 'rogue', origin: `https://localhost:${rogue.port}` },
      ],
      allow: ['127.0.0.1', '127.0.0.2'],
      tunnel: { ports: [origin.port] },
      intercept: ['localhost', '127.0.0.2'],
      tls: { caDir },
      // Cold pools: the tests below count the connections the pool opens itself (no keep-warm).
      upstream: { caFile: originCaFile, warm: { connections: 0, minIdle: 0 } },
    });
    scCaFile = join(caDir, 'ca.pem');
    scCaPem = readFileSync(scCaFile, 'utf8');
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
    await warm?.close();
    await rogue?.close();
    if (baseDir) rmSync(baseDir, { recursive: true, force: true });
  });

  it('makes the CA on first start: key file 0600, certificate served at /ca.pem', async () => {
    assert.equal(statSync(join(caDir, 'ca-key.pem')).mode & 0o777, 0o600);
    const res = await fetch(`${sc.adminUrl}/ca.pem`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), scCaPem);
  });

  it('curl -x with --cacert (sidecache CA) gets the origin body through interception', async () => {
    for (const i of [1, 2, 3]) {
      const { stdout } = await run('curl', [
        '-sS',
        '--fail',
        '-x',
        sc.url,
        '--cacert',
        scCaFile,
        `https://localhost:${origin.port}/repos/x?page=${i}`,
      ]);
      const seen = JSON.parse(stdout) as Record<string, string>;
      assert.equal(seen.path, `/repos/x?page=${i}`);
      assert.equal(seen.host, `localhost:${origin.port}`);
      assert.match(seen.via as string, /sidecache/, 'decrypted and sent by sidecache');
      assert.equal(seen.proto, 'https');
    }
  });

  it('a repeated intercepted GET is a cache hit: one origin request, Cache-Status hit', async () => {
    const url = `https://localhost:${origin.port}/cacheable/plans`;
    const get = () =>
      run('curl', ['-sS', '--fail', '-D', '-', '-x', sc.url, '--cacert', scCaFile, url]).then(
        (r) => r.stdout,
      );
    const first = await get();
    const second = await get();
    assert.match(first, /cache-status: sidecache; fwd=uri-miss; fwd-status=200; ttl=\d+\r\n/i);
    assert.match(second, /cache-status: sidecache; hit/i);
    assert.match(second, /"path":"\/cacheable\/plans"/);
    assert.equal(origin.requests.filter((r) => r.url === '/cacheable/plans').length, 1);
  });

  it('the hit memo answers repeated intercepted GETs, per tunnel authority', async () => {
    const recalls = async (): Promise<number> =>
      Number(/^sidecache_cache_hit_memo_recalls_total (\d+)/m.exec(await metricsText(sc))?.[1] ?? -1);
    const before = await recalls();
    const get = (port: number) =>
      run('curl', [
        '-sS',
        '--fail',
        '-D',
        '-',
        '-x',
        sc.url,
        '--cacert',
        scCaFile,
        `https://localhost:${port}/cacheable/memo`,
      ]).then((r) => r.stdout);
    for (let i = 0; i < 5; i++) {
      const out = await get(origin.port);
      assert.match(out, new RegExp(`"host":"localhost:${origin.port}"`));
      if (i > 0) assert.match(out, /cache-status: sidecache; hit/i);
    }
    // The same path through a tunnel to another authority is another URL: never the memo's answer.
    const other = await get(warm.port);
    assert.match(other, new RegExp(`"host":"localhost:${warm.port}"`));
    assert.match(other, /cache-status: sidecache; fwd=uri-miss/i);
    assert.equal((await recalls()) - before, 2);
  });

  it('presents a leaf for the SNI name signed by the sidecache CA, negotiating h2 in ALPN', async () => {
    const tunnel = await connectThrough(sc.url, `localhost:${origin.port}`);
    assert.ok('socket' in tunnel);
    const secure = tls.connect({
      socket: tunnel.socket,
      servername: 'localhost',
      ca: scCaPem,
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    await once(secure, 'secureConnect');
    const leaf = secure.getPeerX509Certificate();
    assert.ok(leaf);
    assert.equal(leaf.subjectAltName, 'DNS:localhost');
    assert.equal(leaf.checkIssued(new X509Certificate(scCaPem)), true);
    assert.equal(secure.alpnProtocol, 'h2');
    secure.destroy();
  });

  it('a CONNECT to an IP literal (a client sends no SNI for an address) gets the leaf for that address', async () => {
    const tunnel = await connectThrough(sc.url, `127.0.0.2:${origin.port}`);
    assert.ok('socket' in tunnel);
    // No servername: Node, like curl and Python, sends no SNI for an address.
    const secure = tls.connect({
      socket: tunnel.socket,
      ca: scCaPem,
      ALPNProtocols: ['http/1.1'],
      checkServerIdentity: () => undefined,
    });
    await once(secure, 'secureConnect');
    const leaf = secure.getPeerX509Certificate();
    assert.ok(leaf);
    assert.equal(leaf.subjectAltName, 'IP Address:127.0.0.2');
    assert.equal(leaf.checkIssued(new X509Certificate(scCaPem)), true);
    secure.destroy();
  });

  it('an HTTP/2 client through the tunnel: GET, POST with a body, and a cache hit', async () => {
    const tunnel = await connectThrough(sc.url, `localhost:${origin.port}`);
    assert.ok('socket' in tunnel);
    const secure = tls.connect({
      socket: tunnel.socket,
      servername: 'localhost',
      ca: scCaPem,
      ALPNProtocols: ['h2'],
    });
    await once(secure, 'secureConnect');
    assert.equal(secure.alpnProtocol, 'h2');
    const session = http2.connect(`https://localhost:${origin.port}`, { createConnection: () => secure });
    const h2request = (headers: http2.OutgoingHttpHeaders, body?: string) =>
      new Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const stream = session.request(headers, { endStream: body === undefined });
        let data = '';
        let head: http2.IncomingHttpHeaders = {};
        stream.on('response', (h) => {
          head = h;
        });
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => {
          data += c;
        });
        stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: data }));
        stream.on('error', reject);
        if (body !== undefined) stream.end(body);
      });
    try {
      const get = await h2request({ ':method': 'GET', ':path': '/h2/repos?page=1' });
      assert.equal(get.status, 200, get.body);
      const seen = JSON.parse(get.body) as Record<string, string>;
      assert.equal(seen.path, '/h2/repos?page=1');
      assert.equal(seen.host, `localhost:${origin.port}`);
      assert.match(seen.via as string, /sidecache/);
      const post = await h2request(
        { ':method': 'POST', ':path': '/h2/save', 'content-type': 'text/plain' },
        'saved!',
      );
      assert.equal(post.status, 200);
      assert.equal((JSON.parse(post.body) as Record<string, string>).body, 'saved!');
      await h2request({ ':method': 'GET', ':path': '/cacheable/h2' });
      const hit = await h2request({ ':method': 'GET', ':path': '/cacheable/h2' });
      assert.match(String(hit.headers['cache-status']), /sidecache; hit/);
      assert.equal(origin.requests.filter((r) => r.url === '/cacheable/h2').length, 1);
    } finally {
      session.close();
      secure.destroy();
    }
  });

  it('Python requests with HTTPS_PROXY and REQUESTS_CA_BUNDLE', async (t) => {
    if (!(await hasPythonRequests())) {
      if (process.env.CI) assert.fail('python3-requests is required in CI');
      t.skip('python3-requests not installed');
      return;
    }
    const script = [
      'import os, requests, json',
      'r = requests.post(os.environ["TARGET"], data=b"hello", timeout=10)',
      'print(json.dumps({"status": r.status_code, "body": r.json()}))',
    ].join('\n');
    const { stdout } = await run(PYTHON, ['-c', script], {
      env: {
        PATH: process.env.PATH ?? '',
        HTTPS_PROXY: sc.url,
        NO_PROXY: '',
        REQUESTS_CA_BUNDLE: scCaFile,
        TARGET: `https://localhost:${origin.port}/from/python`,
      },
    });
    const out = JSON.parse(stdout) as { status: number; body: Record<string, string> };
    assert.equal(out.status, 200);
    assert.equal(out.body.method, 'POST');
    assert.equal(out.body.path, '/from/python');
    assert.equal(out.body.body, 'hello');
    assert.match(out.body.via as string, /sidecache/);
  });

  it('Node through undici ProxyAgent with requestTls.ca', async () => {
    const agent = new ProxyAgent({ uri: sc.url, requestTls: { ca: scCaPem } });
    try {
      const res = await request(`https://localhost:${origin.port}/from/node`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      const seen = (await res.body.json()) as Record<string, string>;
      assert.equal(seen.path, '/from/node');
      assert.match(seen.via as string, /sidecache/);
    } finally {
      await agent.close();
    }
  });

  it('N client tunnels, each on a new connection, reach the origin over one warm connection', async () => {
    const n = 8;
    for (let i = 0; i < n; i++) {
      const agent = new ProxyAgent({ uri: sc.url, requestTls: { ca: scCaPem } });
      try {
        const res = await request(`https://localhost:${warm.port}/n/${i}`, { dispatcher: agent });
        assert.equal(res.statusCode, 200);
        await res.body.dump();
      } finally {
        await agent.close();
      }
    }
    assert.equal(warm.requests.filter((r) => r.url?.startsWith('/n/')).length, n);
    assert.equal(warm.connections(), 1);
    const text = await metricsText(sc);
    assert.match(text, /sidecache_requests_total\{route="warm",method="GET",status_class="2xx"/);
  });

  it('an allowed host not in "intercept" is tunnelled as-is: the client sees the origin certificate', async () => {
    const tunnel = await connectThrough(sc.url, `127.0.0.1:${origin.port}`);
    assert.ok('socket' in tunnel);
    const secure = tls.connect({
      socket: tunnel.socket,
      servername: 'localhost',
      ca: readFileSync(originCaFile),
    });
    await once(secure, 'secureConnect');
    assert.equal(
      secure.getPeerX509Certificate()?.fingerprint256,
      new X509Certificate(originLeaf.cert).fingerprint256,
    );
    secure.destroy();
  });

  it('an origin with an untrusted certificate gives 502 SC_ERR_UPSTREAM_TLS, never masked', async () => {
    const agent = new ProxyAgent({ uri: sc.url, requestTls: { ca: scCaPem } });
    try {
      const res = await request(`https://localhost:${rogue.port}/x`, { dispatcher: agent });
      assert.equal(res.statusCode, 502);
      const body = (await res.body.json()) as Record<string, string>;
      assert.equal(body.error, 'SC_ERR_UPSTREAM_TLS');
      assert.equal(body.reason, 'upstream_tls_error');
      assert.match(body.cause as string, /UNABLE_TO_VERIFY|SELF_SIGNED|CERT/);
    } finally {
      await agent.close();
    }
    assert.equal(rogue.requests.length, 0);
  });

  it('a client that does not trust the sidecache CA fails its handshake, counted as cert-rejected', async () => {
    const failed = await run('curl', [
      '-sS',
      '-x',
      sc.url,
      '--cacert',
      originCaFile,
      `https://localhost:${origin.port}/untrusting`,
    ]).then(
      () => null,
      (err: { code?: number }) => err,
    );
    assert.equal(failed?.code, 60, 'curl: peer certificate cannot be authenticated');
    let text = '';
    for (let i = 0; i < 50 && !text.includes('kind="cert-rejected"'); i++) {
      text = await metricsText(sc);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(text, /sidecache_client_tls_handshake_failures_total\{kind="cert-rejected"\} 1/);
  });

  it('keeps the CA across restarts (same certificate from the same directory), and `sidecache ca` prints it', async () => {
    const again = await startTestSidecache({
      intercept: ['localhost'],
      allow: ['localhost'],
      tls: { caDir },
    });
    try {
      assert.equal(await (await fetch(`${again.adminUrl}/ca.pem`)).text(), scCaPem);
    } finally {
      await again.close();
    }
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, 'ca', '--ca-dir', caDir]);
    assert.equal(stdout, `${scCaFile}\n${scCaPem}`);
  });
});
