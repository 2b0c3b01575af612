// Reference caches for the cache-hit scenario, run only where their binaries are installed:
// nginx with proxy_cache (one process: master_process off) and Varnish (the cache worker process
// is measured, not its manager). Each gets a throw-away directory with its config, and the same
// route as every other target: /origin/x → ORIGIN/x.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Child } from '../harness/children.js';
import { ROUTE_NAME } from '../scenarios/requests.js';

/** Absolute path of an executable found on PATH (plus the sbin directories), or null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

export function scratchDir(label: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), `sidecache-bench-${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.hasExited()) throw new Error(`${child.label} exited before it was listening`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${child.label}: nothing listening on port ${port} within ${timeoutMs} ms`);
}

export function nginxConfig(dir: string, port: number, originUrl: string): string {
  const origin = new URL(originUrl);
  return `daemon off;
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
`;
}

export function varnishVcl(originUrl: string): string {
  const origin = new URL(originUrl);
  return `vcl 4.1;
backend origin { .host = "${origin.hostname}"; .port = "${origin.port}"; }
sub vcl_recv {
  if (req.url ~ "^/${ROUTE_NAME}/") { set req.url = regsub(req.url, "^/${ROUTE_NAME}", ""); }
}
`;
}

/** Child pids of `pid`, from /proc/PID/stat of every process (field 4 is the parent pid). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch {
      // The process went away while we looked.
    }
  }
  return out;
}

/** A Child whose pid (for CPU and pinning) is another process it started, e.g. Varnish's worker. */
export function measuring(child: Child, pid: number): Child {
  return {
    label: child.label,
    pid,
    process: child.process,
    exited: child.exited,
    hasExited: () => child.hasExited(),
    stdout: () => child.stdout(),
    outputTail: () => child.outputTail(),
    waitForLine: (match, timeoutMs) => child.waitForLine(match, timeoutMs),
    stop: (graceMs) => child.stop(graceMs),
  };
}

export function varnishVersion(binary: string): string {
  try {
    return execFileSync(binary, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]!
      .trim();
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err).split('\n')[0]!;
  }
}

export function writeFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}
