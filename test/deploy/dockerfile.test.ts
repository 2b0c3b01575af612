/**
 * The container image, checked without a Docker engine (hadolint is not packaged for Debian):
 * the Dockerfile's properties are read from the file, and the exact command the image runs
 * (ENTRYPOINT + CMD, with its ENV) is run against an image-like directory built here: compiled
 * dist/, config/, package.json and node_modules, as the runtime stage lays them out under /app.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { waitFor } from '../helpers/clock.js';
import { all, type BuildStage, envPairs, execForm, last, parseDockerfile } from '../helpers/dockerfile.js';
import { memcachedUnavailable, startTestMemcached } from '../helpers/memcached-server.js';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { redisUnavailable, startTestRedis } from '../helpers/redis-server.js';
import { spawnSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtimeStage = dockerfile.stages.at(-1) as BuildStage;
const containerYaml = join(ROOT, 'deploy/container.yaml');
const containerConfig = parseConfig(parse(readFileSync(containerYaml, 'utf8')), containerYaml);
const CONFIG_PATH = '/etc/sidecache/config.yaml';
const CA_DIR = '/var/lib/sidecache/ca';

function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
}

function runtimeEnv(): Map<string, string> {
  return new Map(all(runtimeStage, 'ENV').flatMap((ins) => envPairs(ins.args)));
}

describe('Dockerfile', () => {
  it('is multi-stage: a build stage with dev dependencies, then a runtime stage from the same slim LTS image', () => {
    assert.ok(dockerfile.stages.length >= 2, 'expected at least two FROM stages');
    const build = dockerfile.stages.find((s) => s.name === 'build');
    assert.ok(build, 'expected a stage named "build"');
    for (const stage of dockerfile.stages) {
      // Official image, by name only (no registry host), Node major even (LTS line), slim variant.
      assert.match(stage.image, /^node:(\d+)-[a-z]+-slim$/, `FROM ${stage.image}`);
      const major = Number(/^node:(\d+)/.exec(stage.image)?.[1]);
      assert.ok(major >= 20 && major % 2 === 0, `node ${major} is not an LTS line`);
    }
    assert.match(
      all(build, 'RUN')
        .map((r) => r.args)
        .join('\n'),
      /npm ci\b/,
    );
    assert.match(
      all(build, 'RUN')
        .map((r) => r.args)
        .join('\n'),
      /npm run build/,
    );
  });

  it('installs only production dependencies, without lifecycle scripts, and copies dist/ from the build', () => {
    const runs = all(runtimeStage, 'RUN').map((r) => r.args);
    const ci = runs.find((r) => /npm ci\b/.test(r));
    assert.ok(ci, 'runtime stage runs npm ci');
    assert.match(ci, /--omit=dev/);
    assert.match(
      ci,
      /--ignore-scripts/,
      'the prepare script (the build) cannot run without dev dependencies',
    );
    const copies = all(runtimeStage, 'COPY');
    assert.ok(
      copies.some((c) => c.flags.from === 'build' && /\/app\/dist\s+\.\/dist$/.test(c.args)),
      'COPY --from=build /app/dist ./dist',
    );
    assert.ok(
      copies.some((c) => /^config\s/.test(c.args)),
      'config/ (the embedded default.yaml) is copied',
    );
  });

  it('runs as a non-root user and never fetches with ADD', () => {
    const user = last(runtimeStage, 'USER');
    assert.ok(user, 'runtime stage sets USER');
    const name = user.args.split(':')[0] as string;
    assert.ok(name !== 'root' && name !== '0', `USER ${user.args} is root`);
    assert.match(name, /^[1-9]\d*$/, 'numeric, so that Kubernetes runAsNonRoot can verify it');
    for (const add of dockerfile.instructions.filter((i) => i.keyword === 'ADD')) {
      assert.doesNotMatch(add.args, /(https?:\/\/|git@)/, `line ${add.line}: ADD of a URL`);
    }
  });

  it('reads its config from /etc/sidecache/config.yaml, copied from deploy/container.yaml', () => {
    assert.equal(runtimeEnv().get('SIDECACHE_CONFIG'), CONFIG_PATH);
    assert.ok(
      all(runtimeStage, 'COPY').some((c) => c.args === `deploy/container.yaml ${CONFIG_PATH}`),
      `COPY deploy/container.yaml ${CONFIG_PATH}`,
    );
  });

  it('keeps the CA directory in a volume owned by the runtime user', () => {
    assert.equal(runtimeEnv().get('SIDECACHE_CA_DIR'), CA_DIR);
    const volumes = all(runtimeStage, 'VOLUME').flatMap((v) => execForm(v.args) ?? v.args.split(/\s+/));
    assert.ok(volumes.includes(CA_DIR), `VOLUME ${CA_DIR}`);
    const uid = last(runtimeStage, 'USER')?.args.split(':')[0];
    assert.ok(
      all(runtimeStage, 'RUN').some((r) => r.args.includes(CA_DIR) && r.args.includes(`chown -R ${uid}`)),
      'the CA directory belongs to the runtime user',
    );
  });

  it("exposes and health-checks the ports of deploy/container.yaml's listeners", () => {
    const exposed = all(runtimeStage, 'EXPOSE').flatMap((e) => e.args.split(/\s+/).map((p) => Number(p)));
    assert.equal(containerConfig.listen, '0.0.0.0:8080');
    assert.equal(containerConfig.admin.listen, '0.0.0.0:9090');
    assert.ok(exposed.includes(portOf(containerConfig.listen)), `EXPOSE ${portOf(containerConfig.listen)}`);
    assert.ok(exposed.includes(portOf(containerConfig.admin.listen)), 'EXPOSE the admin port');
    const health = last(runtimeStage, 'HEALTHCHECK');
    assert.ok(health, 'HEALTHCHECK');
    assert.match(health.args, /^CMD /);
    const cmd = execForm(health.args.slice(4)) ?? [];
    assert.equal(cmd[0], 'node', 'slim images have no curl or wget');
    assert.ok(
      cmd.join(' ').includes(`http://127.0.0.1:${portOf(containerConfig.admin.listen)}/healthz`),
      'probes /healthz on the admin port',
    );
    for (const flag of ['interval', 'timeout', 'retries']) assert.ok(flag in health.flags, `--${flag}`);
  });

  it('stops on SIGTERM, with a stop timeout documented above the graceful shutdown period', () => {
    assert.equal(last(runtimeStage, 'STOPSIGNAL')?.args, 'SIGTERM');
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const stopSeconds = Number(/docker stop -t (\d+)/.exec(text)?.[1]);
    assert.ok(stopSeconds * 1000 > containerConfig.shutdown.graceMs, 'docker stop -t exceeds graceMs');
    assert.ok(
      execForm(last(runtimeStage, 'ENTRYPOINT')?.args ?? ''),
      'ENTRYPOINT in exec form (signals reach node)',
    );
  });

  it('runs node with the CLI launcher\'s flags and environment (the figures in docs/ARCHITECTURE.md, "Memory")', () => {
    const first = readFileSync(join(ROOT, 'src/cli.ts'), 'utf8').split('\n', 1)[0] ?? '';
    const m = /^#!\/usr\/bin\/env -S ((?:\w+=\S*\s+)*)node((?:\s+--\S+)*)\s*$/.exec(first);
    assert.ok(m, `launcher line: ${first}`);
    const launcherFlags = (m[2] ?? '').trim().split(/\s+/);
    const entrypoint = execForm(last(runtimeStage, 'ENTRYPOINT')?.args ?? '') ?? [];
    assert.equal(entrypoint[0], 'node');
    assert.deepEqual(entrypoint.slice(1, -1), launcherFlags, "ENTRYPOINT node flags = the launcher line's");
    for (const pair of (m[1] ?? '')
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '')) {
      const [name, value] = pair.split('=') as [string, string];
      assert.equal(runtimeEnv().get(name), value, `ENV ${name} as in the launcher line`);
    }
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const must of ['.git', 'node_modules', 'dist'])
      assert.ok(ignored.includes(must), `.dockerignore ${must}`);
    for (const copy of dockerfile.instructions.filter((i) => i.keyword === 'COPY' && !i.flags.from)) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const src of sources) {
        assert.ok(existsSync(join(ROOT, src)), `line ${copy.line}: ${src} does not exist`);
        assert.ok(!ignored.includes(src.split('/')[0] as string), `line ${copy.line}: ${src} is ignored`);
      }
    }
  });
});

describe("the image's command, run outside a container", () => {
  let dir: string;
  let app: string;
  let origin: TestOrigin;

  before(async () => {
    // The runtime stage's /app: package.json, node_modules, dist/ (fresh build), config/.
    dir = mkdtempSync(join(tmpdir(), 'sidecache-image-'));
    app = join(dir, 'app');
    await run(process.execPath, [join(ROOT, 'build.mjs'), join(app, 'dist')]);
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'config'), join(app, 'config'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
    origin = await startOrigin((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ path: req.url, via: req.headers.via ?? null }));
    });
  });
  after(async () => {
    await origin?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Container paths mapped to this machine: /app, the config file and the CA volume. */
  function hostPath(p: string): string {
    if (p === CONFIG_PATH) return containerYaml;
    if (p.startsWith(CA_DIR)) return join(dir, 'ca', p.slice(CA_DIR.length));
    if (p.startsWith('/app/')) return join(app, p.slice('/app/'.length));
    return p;
  }

  /** The image's environment (host paths), on top of ours without any SIDECACHE_* setting. */
  function imageEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIDECACHE_')) env[k] = v;
    for (const [k, v] of runtimeEnv()) env[k] = hostPath(v);
    return env;
  }

  function runCommand(argv: string[], extra: string[], env: NodeJS.ProcessEnv) {
    const [exe, ...args] = argv;
    assert.equal(exe, 'node', 'the image runs node');
    return spawn(process.execPath, [...args.map(hostPath), ...extra], {
      cwd: app,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  it('ENTRYPOINT + CMD with deploy/container.yaml: /healthz, /readyz, a proxied request, HEALTHCHECK, SIGTERM → exit 0', async () => {
    const entrypoint = execForm(last(runtimeStage, 'ENTRYPOINT')?.args ?? '') ?? [];
    const cmd = execForm(last(runtimeStage, 'CMD')?.args ?? '') ?? [];
    assert.deepEqual(cmd, ['serve']);
    // Flags win over the file: loopback and free ports instead of 0.0.0.0:8080 / :9090.
    const child = runCommand(
      [...entrypoint, ...cmd],
      ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--route', `local=${origin.url}`],
      imageEnv(),
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    try {
      const started = await new Promise<{ listen: string; admin: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "sidecache started" in 20 s:\n${out}`)), 20_000);
        const check = (): void => {
          const line = out.split('\n').find((l) => l.includes('"sidecache started"'));
          if (!line) return;
          clearTimeout(timer);
          resolve(JSON.parse(line) as { listen: string; admin: string });
        };
        child.stdout.on('data', check);
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code}:\n${out}`));
        });
      });
      const admin = `http://${started.admin}`;
      const health = await fetch(`${admin}/healthz`);
      assert.equal(health.status, 200);
      const ready = await fetch(`${admin}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { ready: true, why: 'listening' });

      const proxied = await fetch(`http://${started.listen}/local/some/path?q=1`);
      assert.equal(proxied.status, 200);
      const body = (await proxied.json()) as { path: string; via: string };
      assert.equal(body.path, '/some/path?q=1');
      assert.match(body.via, /sidecache/);

      // The HEALTHCHECK command itself: 0 against our admin listener, 1 when nothing answers.
      const healthcheck = execForm(last(runtimeStage, 'HEALTHCHECK')?.args.slice(4) ?? '') ?? [];
      const [, ...hcArgs] = healthcheck;
      await run(process.execPath, hcArgs, {
        env: { ...imageEnv(), SIDECACHE_HEALTHCHECK_URL: `${admin}/healthz` },
      });
      await assert.rejects(
        run(process.execPath, hcArgs, {
          env: { ...imageEnv(), SIDECACHE_HEALTHCHECK_URL: `${admin}/no-such-page` },
        }),
        (err: { code: number }) => err.code === 1,
      );

      const t0 = Date.now();
      child.kill('SIGTERM');
      const [code] = (await once(child, 'exit')) as [number | null];
      assert.equal(code, 0, out);
      assert.ok(Date.now() - t0 < containerConfig.shutdown.graceMs, 'idle shutdown is prompt');
      assert.match(out, /"sidecache stopped"/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('check-config with the image environment accepts deploy/container.yaml', async () => {
    const entrypoint = execForm(last(runtimeStage, 'ENTRYPOINT')?.args ?? '') ?? [];
    const [, ...args] = entrypoint;
    const { stdout } = await run(process.execPath, [...args.map(hostPath), 'check-config'], {
      cwd: app,
      env: imageEnv(),
    });
    assert.match(stdout, /^config OK/);
    assert.match(stdout, /0\.0\.0\.0:8080/);
  });

  // The shared tiers' clients (ioredis, memjs) are bundled into dist/ (build.mjs): two processes of
  // the built program on one real Redis or memcached, what one stores the other serves from it.
  for (const tier of ['redis', 'memcached'] as const) {
    const skip = (tier === 'redis' ? redisUnavailable() : memcachedUnavailable()) ?? false;
    it(`the bundle's ${tier} tier: what one process stores, another serves from ${tier}`, {
      skip,
    }, async () => {
      const server = tier === 'redis' ? await startTestRedis() : await startTestMemcached();
      let fetched = 0;
      const cacheable = await startOrigin((_req, res) => {
        fetched++;
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=300' });
        res.end(`answer ${fetched}`);
      });
      const tierYaml =
        'url' in server
          ? `cache:\n  redis:\n    url: ${server.url}\n    keyPrefix: "bundle-${process.pid}:"\n`
          : `cache:\n  memcached:\n    servers: ["${server.server}"]\n    keyPrefix: "bundle-${process.pid}:"\n`;
      const configFile = join(dir, `${tier}.yaml`);
      writeFileSync(configFile, tierYaml);
      const program = [join(app, 'dist', 'cli.js')];
      const args = ['--config', configFile, '--route', `o=${cacheable.url}`];
      const a = await spawnSidecache(args, {}, { program });
      const b = await spawnSidecache(args, {}, { program });
      try {
        const first = await fetch(`${a.url}/o/item`);
        assert.equal(await first.text(), 'answer 1');
        await waitFor(
          async () =>
            /sidecache_cache_l2_duration_seconds_count\{op="put"\} [1-9]/.test(
              await (await fetch(`${a.adminUrl}/metrics`)).text(),
            ),
          10_000,
          `A's write to ${tier}`,
        );
        const second = await fetch(`${b.url}/o/item`);
        assert.equal(await second.text(), 'answer 1', 'served from the shared tier, not fetched again');
        assert.match(second.headers.get('cache-status') ?? '', /hit/);
        assert.equal(fetched, 1);
        assert.match(
          await (await fetch(`${b.adminUrl}/metrics`)).text(),
          /sidecache_cache_l2_lookups_total\{result="hit"\} 1/,
        );
      } finally {
        await Promise.all([a.stop(), b.stop()]);
        await cacheable.close();
        await server.close();
      }
    });
  }

  it('finds its own package files from the bundle: the version, and config/default.yaml without a config', async () => {
    const cli = join(app, 'dist', 'cli.js');
    // No SIDECACHE_* variable and another working directory: the files are found from dist/ alone.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SIDECACHE_')) env[k] = v;
    const version = await run(process.execPath, [cli, '--version'], { cwd: dir, env });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout.trim(), pkg.version);
    const { stdout } = await run(process.execPath, [cli, 'check-config'], { cwd: dir, env });
    assert.match(stdout, /^config OK/);
    assert.match(stdout, /proxy listens on 127\.0\.0\.1:8080/, 'the embedded default config');
  });
});
