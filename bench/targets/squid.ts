// Squid as a reference cache (only where the `squid` binary is installed): a reverse proxy
// (accelerator) with the origin as its only parent (`cache_peer ... originserver`), caching in
// memory only (no cache_dir), one process (`-N`: no daemon, no SMP kids). Squid cannot rewrite
// paths without a helper process, so it forwards `/origin/x` as is; the bench origin serves
// `/origin/x` as `/x` (bench/targets/origin.ts). Its own throw-away directory holds the config, the
// pid file and cache.log; Debian's system service is never used.
import { chmodSync } from 'node:fs';
import type { ChildGroup } from '../harness/children.js';
import { findBinary, scratchDir, waitForPort, writeFile } from './caches.js';

export function squidConfig(dir: string, port: number, originUrl: string): string {
  const origin = new URL(originUrl);
  return `http_port 127.0.0.1:${port} accel defaultsite=${origin.host} no-vhost
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
`;
}

export function squidBinary(): string | null {
  return findBinary('squid');
}

export interface RunningSquid {
  readonly url: string;
  readonly child: ReturnType<ChildGroup['spawn']>;
}

/** Starts `squid -N` on 127.0.0.1:port in front of `originUrl`; resolves once it accepts connections. */
export async function startSquid(
  children: ChildGroup,
  port: number,
  originUrl: string,
  readyTimeoutMs: number,
): Promise<RunningSquid> {
  const binary = squidBinary();
  if (binary === null) throw new Error('squid is not installed');
  const scratch = scratchDir('squid');
  // Started as root, squid drops to its cache_effective_user (Debian: proxy), which must still be
  // able to write its pid file and cache.log here.
  if (process.getuid?.() === 0) chmodSync(scratch.dir, 0o777);
  const conf = writeFile(scratch.dir, 'squid.conf', squidConfig(scratch.dir, port, originUrl));
  const child = children.spawn({ label: 'squid', command: binary, args: ['-N', '-d', '1', '-f', conf] });
  void child.exited.then(() => scratch.remove());
  try {
    await waitForPort(port, child, readyTimeoutMs);
  } catch (err) {
    await child.stop();
    throw new Error(`${(err as Error).message}\n${child.outputTail()}`);
  }
  return { url: `http://127.0.0.1:${port}`, child };
}
