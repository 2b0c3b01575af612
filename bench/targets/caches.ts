// Reference caches, run only where their binaries are installed: nginx proxy_cache (one process:
// master_process off), Varnish (its cache worker process is measured, not its manager) and Squid
// (`squid -N`: no daemon, no SMP kids; an accelerator with the origin as its only parent, memory
// only), plus redis-server and memcached for the shared tiers. Each gets a throw-away directory for
// its config, removed when it exits, and the same route as every other target: /origin/x → ORIGIN/x.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/ports.js';
import { type Child, type ChildGroup, waitUntilReady } from '../harness/children.js';
import { childPids } from '../harness/proc.js';
import { ROUTE_NAME } from './route-table.js';

/** Absolute path of an executable found on PATH (plus the sbin directories), or null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  return dirs.map((dir) => join(dir, name)).find((path) => path !== name && existsSync(path)) ?? null;
}

export interface Daemon {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Its throw-away directory (config, pid file, logs). */
  readonly dir: string;
  readonly child: Child;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts `binary` on a free port with `args(dir, port)`, after writing `files(dir, port)` (name →
 * text) into its directory; resolves once it accepts TCP connections on 127.0.0.1:port.
 */
export async function startDaemon(
  children: ChildGroup,
  binary: string,
  args: (dir: string, port: number) => readonly string[],
  files: (dir: string, port: number) => Readonly<Record<string, string>> = () => ({}),
): Promise<Daemon> {
  const command = findBinary(binary);
  if (command === null) throw new Error(`${binary} is not installed`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `sidecache-bench-${binary}-`));
  // Started as root, squid and memcached drop privileges, and must still write their files here.
  if (process.getuid?.() === 0) chmodSync(dir, 0o777);
  for (const [name, text] of Object.entries(files(dir, port))) writeFileSync(join(dir, name), text);
  const child = children.spawn({ label: binary, command, args: args(dir, port) });
  void child.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  await waitUntilReady(child, `port ${port}`, () => accepts(port));
  return { url: `http://127.0.0.1:${port}`, port, dir, child };
}

export function startNginx(children: ChildGroup, originUrl: string): Promise<Daemon> {
  const origin = new URL(originUrl);
  return startDaemon(
    children,
    'nginx',
    (dir) => ['-p', dir, '-c', join(dir, 'nginx.conf')],
    (dir, port) => ({
      'nginx.conf': `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  proxy_cache_path ${dir}/cache keys_zone=bench:10m max_size=64m;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  upstream origin {
    server ${origin.host};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port};
    location /${ROUTE_NAME}/ {
      proxy_pass http://origin/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache bench;
      add_header X-Cache-Status $upstream_cache_status;
    }
  }
}
`,
    }),
  );
}

/** varnishd with malloc storage of `mallocSize` (e.g. `64m`); its child is the cache worker process. */
export async function startVarnish(
  children: ChildGroup,
  originUrl: string,
  mallocSize: string,
): Promise<Daemon> {
  const origin = new URL(originUrl);
  const manager = await startDaemon(
    children,
    'varnishd',
    (dir, port) => [
      ...['-F', '-j', 'none', '-n', join(dir, 'work'), '-a', `127.0.0.1:${port}`],
      ...['-f', join(dir, 'bench.vcl'), '-s', `malloc,${mallocSize}`],
    ],
    () => ({
      'bench.vcl': `vcl 4.1;
backend origin { .host = "${origin.hostname}"; .port = "${origin.port}"; }
sub vcl_recv {
  if (req.url ~ "^/${ROUTE_NAME}/") { set req.url = regsub(req.url, "^/${ROUTE_NAME}", ""); }
}
`,
    }),
  );
  const workers = childPids(manager.child.pid);
  if (workers.length !== 1) {
    await manager.child.stop();
    throw new Error(`varnish: expected one cache worker, found ${workers.length}`);
  }
  return { ...manager, child: { ...manager.child, pid: workers[0] as number } };
}

/**
 * Squid as an accelerator: it cannot rewrite `/origin/x` to `/x` without a helper process, so it
 * forwards the prefix as is and the bench origin accepts `/origin/` as an alias.
 */
export function startSquid(children: ChildGroup, originUrl: string): Promise<Daemon> {
  const origin = new URL(originUrl);
  return startDaemon(
    children,
    'squid',
    (dir) => ['-N', '-d', '1', '-f', join(dir, 'squid.conf')],
    (dir, port) => ({
      'squid.conf': `http_port 127.0.0.1:${port} accel defaultsite=${origin.host} no-vhost
cache_peer ${origin.hostname} parent ${origin.port} 0 no-query no-digest originserver name=origin
acl bench_clients src 127.0.0.0/8
http_access allow bench_clients
http_access deny all
cache_peer_access origin allow all
never_direct allow all
cache_mem 64 MB
maximum_object_size_in_memory 1 MB
memory_cache_mode always
server_persistent_connections on
client_persistent_connections on
pid_filename ${dir}/squid.pid
cache_log ${dir}/cache.log
access_log none
cache_store_log none
logfile_rotate 0
coredump_dir ${dir}
visible_hostname sidecache-bench
pinger_enable off
shutdown_lifetime 0 seconds
max_filedescriptors 16384
`,
    }),
  );
}

/** A shared tier server without persistence: redis-server, or memcached (256 MiB). */
export function startTierServer(children: ChildGroup, kind: 'redis' | 'memcached'): Promise<Daemon> {
  return kind === 'redis'
    ? startDaemon(children, 'redis-server', (_, port) => [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      ])
    : startDaemon(children, 'memcached', (_, port) => [
        ...['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '256'],
        ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []),
      ]);
}
