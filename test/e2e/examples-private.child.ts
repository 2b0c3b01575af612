/**
 * Runs one shipped example the way it is deployed, inside the network and mount namespace that
 * examples-private.test.ts creates for it (`unshare -m -n -p -f`): the origins listen on private
 * addresses added to this namespace's loopback, the container names resolve through this
 * namespace's own /etc/hosts (what Docker's and Kubernetes' DNS do for the system resolver, which
 * the examples use), and sidecache starts with the example's config file as shipped, through the
 * environment its image sets (SIDECACHE_CONFIG, SIDECACHE_CA_DIR). Nothing leaves the namespace.
 *
 * Prints one line `RESULT <json>` with what it observed; the test asserts on it.
 * Usage: examples-private.child.ts compose|kubernetes|internal-api
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { send } from '../helpers/client.js';
import { connectThrough } from '../helpers/connect.js';
import { all, envPairs, parseDockerfile } from '../helpers/dockerfile.js';
import { startOrigin } from '../helpers/origin.js';
import { createTestCa } from '../helpers/pki.js';
import { PYTHON } from '../helpers/python.js';
import { runCli, type SidecacheProcess, spawnSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);
const repo = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sc-examples-ns-'));
const cleanups: Array<() => Promise<unknown>> = [];

/** Loopback up, `addresses` added to it, and /etc/hosts of this mount namespace replaced. */
async function network(addresses: readonly string[], hosts: Record<string, string>): Promise<void> {
  await run('ip', ['link', 'set', 'lo', 'up']);
  for (const address of addresses) await run('ip', ['addr', 'add', `${address}/32`, 'dev', 'lo']);
  const file = join(dir, 'hosts');
  const lines = ['127.0.0.1 localhost', ...Object.entries(hosts).map(([name, ip]) => `${ip} ${name}`)];
  await writeFile(file, `${lines.join('\n')}\n`);
  await run('mount', ['--bind', file, '/etc/hosts']);
}

/** The environment a Dockerfile's last stage sets (ENV). */
async function imageEnv(dockerfile: string): Promise<Record<string, string>> {
  const stage = parseDockerfile(await readFile(repo(dockerfile), 'utf8')).stages.at(-1);
  if (stage === undefined) throw new Error(`${dockerfile}: no build stage`);
  return Object.fromEntries(all(stage, 'ENV').flatMap((instruction) => envPairs(instruction.args)));
}

function spawnLogged(
  command: string,
  args: string[],
  env: Record<string, string>,
): ChildProcess & { out(): string } {
  const child = spawn(command, args, {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONUNBUFFERED: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await Promise.race([once(child, 'exit'), sleep(5_000)]);
  });
  return Object.assign(child, { out: () => out });
}

/** Waits until `url` answers 2xx (20 s at most). */
async function waitHttp(url: string, proc: ChildProcess & { out(): string }): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null)
      throw new Error(`${url}: the process exited with ${proc.exitCode}:\n${proc.out()}`);
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer in 20 s:\n${proc.out()}`);
    await sleep(100);
  }
}

async function startSidecache(env: Record<string, string>): Promise<SidecacheProcess> {
  const image = await imageEnv('Dockerfile');
  const sc = await spawnSidecache(
    [],
    { ...image, SIDECACHE_CA_DIR: join(dir, 'ca'), ...env },
    { configListeners: true },
  );
  cleanups.push(() => sc.stop());
  return sc;
}

/** The Flask app with `env` (its image's ENV first); its page and overview as a user sees them. */
async function flaskPage(env: Record<string, string>): Promise<Record<string, unknown>> {
  const image = await imageEnv('examples/flask-app/Dockerfile');
  const app = spawnLogged(PYTHON, [repo('examples/flask-app/app.py')], { ...image, ...env });
  const port = Number(env.PORT ?? image.PORT ?? 5000);
  await waitHttp(`http://127.0.0.1:${port}/healthz`, app);
  const page = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(30_000) });
  const overview = (await (
    await fetch(`http://127.0.0.1:${port}/overview.json`, { signal: AbortSignal.timeout(30_000) })
  ).json()) as { sections: Record<string, { ok: boolean; error?: string }>; calls: unknown[] };
  return {
    pageStatus: page.status,
    page: await page.text(),
    sections: overview.sections,
    calls: overview.calls,
  };
}

async function compose(): Promise<Record<string, unknown>> {
  const file = parse(await readFile(repo('examples/compose/docker-compose.yml'), 'utf8')) as {
    services: Record<
      string,
      {
        environment?: Record<string, string>;
        volumes?: string[];
        networks?: { default?: { aliases?: string[] } };
      }
    >;
  };
  const { app, sidecache, 'fake-apis': fakeApis } = file.services as Required<typeof file.services>;
  // Compose networks hand out 172.16/12 addresses: each service gets one, its name and aliases
  // resolve to it.
  const apis = '172.18.0.10';
  const proxy = '172.18.0.2';
  const hosts: Record<string, string> = { sidecache: proxy, 'fake-apis': apis };
  for (const alias of fakeApis?.networks?.default?.aliases ?? []) hosts[alias] = apis;
  await network([apis, proxy], hosts);
  // The config file the sidecache service mounts at SIDECACHE_CONFIG.
  const mount = (sidecache?.volumes ?? []).find((v) => v.includes(':/etc/sidecache/config.yaml'));
  if (mount === undefined) throw new Error('docker-compose.yml: sidecache mounts no config');
  const config = join(repo('examples/compose'), mount.split(':')[0] as string);
  const fake = spawnLogged(PYTHON, [repo('examples/flask-app/fake_apis.py')], {
    ...(fakeApis?.environment ?? {}),
  });
  await waitHttp('http://user-service:8000/api/v1/users', fake);
  await startSidecache({ SIDECACHE_CONFIG: config });
  return { hosts, ...(await flaskPage({ ...(app?.environment ?? {}) })) };
}

async function kubernetes(): Promise<Record<string, unknown>> {
  const configMap = parse(await readFile(repo('examples/kubernetes/configmap.yaml'), 'utf8')) as {
    data: Record<string, string>;
  };
  const deployment = parse(await readFile(repo('examples/kubernetes/deployment.yaml'), 'utf8')) as {
    spec: {
      template: {
        spec: { containers: Array<{ name: string; env?: Array<{ name: string; value: string }> }> };
      };
    };
  };
  const config = join(dir, 'config.yaml');
  await writeFile(config, configMap.data['config.yaml'] as string); // the embedded file, as is
  const routes = (parse(configMap.data['config.yaml'] as string) as { routes: Array<{ origin: string }> })
    .routes;
  // Cluster Service addresses (10.96/12) for the internal service; the public APIs' names point
  // into this namespace too, at TLS stand-ins with certificates from a test CA.
  const users = '10.96.0.20';
  const tlsStandIns = ['10.77.0.40', '10.77.0.41'];
  const hosts: Record<string, string> = {};
  const tlsHosts: string[] = [];
  for (const { origin } of routes) {
    const url = new URL(origin);
    if (url.protocol === 'https:') {
      hosts[url.hostname] = tlsStandIns[tlsHosts.length] as string;
      tlsHosts.push(url.hostname);
    } else hosts[url.hostname] = users;
  }
  await network([users, ...tlsStandIns], hosts);
  const fake = spawnLogged(PYTHON, [repo('examples/flask-app/fake_apis.py')], { HOST: users, PORT: '8000' });
  await waitHttp(`http://${users}:8000/api/v1/users`, fake);
  // TLS terminators for the https:// origins, forwarding the bytes to the fake APIs.
  const ca = await createTestCa();
  await writeFile(join(dir, 'test-ca.pem'), ca.cert);
  for (const [i, host] of tlsHosts.entries()) {
    const leaf = await ca.issue({ dns: [host] });
    const server = https.createServer({ cert: leaf.cert, key: leaf.key });
    server.removeAllListeners('request');
    server.on('secureConnection', (tls) => {
      const upstream = connect(8000, users);
      tls.pipe(upstream).pipe(tls);
      upstream.on('error', () => tls.destroy());
      tls.on('error', () => upstream.destroy());
    });
    server.listen(443, tlsStandIns[i]);
    await once(server, 'listening');
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
  }
  await startSidecache({ SIDECACHE_CONFIG: config, SIDECACHE_CA_FILE: join(dir, 'test-ca.pem') });
  const appEnv: Record<string, string> = {};
  for (const { name, value } of deployment.spec.template.spec.containers.find((c) => c.name === 'app')?.env ??
    []) {
    appEnv[name] = value;
  }
  return { hosts, ...(await flaskPage(appEnv)) };
}

async function internalApi(): Promise<Record<string, unknown>> {
  const file = repo('examples/configs/internal-api.yaml');
  const config = parse(await readFile(file, 'utf8')) as {
    routes: Array<{ origin: string }>;
    dns: { hosts: Record<string, string> };
  };
  // The service the config routes to, at the address it pins with dns.hosts; and another internal
  // host that the `allow` pattern admits by name, resolving privately like every cluster name.
  const origin = new URL((config.routes[0] as { origin: string }).origin);
  const serviceAddress = config.dns.hosts[origin.hostname] as string;
  const internalName = 'db.default.svc.cluster.local';
  const internalAddress = '10.77.0.30';
  await network([serviceAddress, internalAddress], { [internalName]: internalAddress });
  const service = await startOrigin(
    (req, res) => {
      if (req.url === '/api/v1/moved') {
        res.writeHead(302, { location: `http://${internalName}/secret` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ users: [{ id: 1 }] }));
    },
    { host: serviceAddress, port: Number(origin.port) },
  );
  cleanups.push(() => service.close());
  const sentinel = await startOrigin(
    (_req, res) => {
      res.end('internal secret');
    },
    {
      host: internalAddress,
      port: 80,
    },
  );
  cleanups.push(() => sentinel.close());
  const sc = await startSidecache({ SIDECACHE_CONFIG: file });
  const proxy = 'http://127.0.0.1:8080';
  const seen = (r: Awaited<ReturnType<typeof send>>) => ({
    status: r.status,
    via: r.headers.via ?? null,
    location: r.headers.location ?? null,
    body: r.text().slice(0, 2_000),
  });
  const reverse = seen(await send(proxy, '/users/api/v1/users'));
  const forward = seen(await send(proxy, `${origin.origin}/api/v1/users`));
  // The client of the config's comment: Python requests with HTTP_PROXY.
  const python = await run(
    PYTHON,
    [
      '-c',
      `import requests; r = requests.get("${origin.origin}/api/v1/users", timeout=10); print(r.status_code, r.headers.get("via"))`,
    ],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HTTP_PROXY: proxy, NO_PROXY: 'localhost,127.0.0.1' },
      timeout: 20_000,
    },
  ).then(
    ({ stdout }) => stdout.trim(),
    (err: Error) => `failed: ${err.message}`,
  );
  const allowedName = seen(await send(proxy, `http://${internalName}/secret`));
  const moved = seen(await send(proxy, '/users/api/v1/moved'));
  const followed = seen(await send(proxy, moved.location ?? `http://${internalName}/secret`));
  const tunnel = await connectThrough(proxy, `${internalName}:443`);
  if ('socket' in tunnel) tunnel.socket.destroy();
  const check = await runCli(['check-config', '-c', file], { timeoutMs: 30_000 });
  return {
    serviceAddress,
    reverse,
    forward,
    python,
    allowedName,
    moved,
    followed,
    connect: { status: tunnel.status, body: 'body' in tunnel ? tunnel.body : '' },
    serviceRequests: service.requests.length,
    sentinelConnections: sentinel.connections(),
    checkConfig: check.stdout + check.stderr,
    sidecacheOutput: sc.output().slice(-4_000),
  };
}

async function main(): Promise<void> {
  const scenario = process.argv[2];
  const result =
    scenario === 'compose'
      ? await compose()
      : scenario === 'kubernetes'
        ? await kubernetes()
        : scenario === 'internal-api'
          ? await internalApi()
          : null;
  if (result === null) throw new Error(`unknown scenario ${scenario}`);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

try {
  await main();
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
