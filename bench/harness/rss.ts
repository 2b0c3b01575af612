// Peak resident memory of a target: VmHWM ("high water mark") from /proc/PID/status, summed over
// the process the harness started and all its descendants (Varnish's manager and cache worker,
// any helper a server forks). VmHWM only grows, so a reading is the peak since the process started.
import { readFileSync } from 'node:fs';
import { childPids } from '../targets/caches.js';

/** VmHWM of one process in KiB, or null when it is gone or /proc is not readable. */
export function vmHwmKb(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** `rootPid` and every descendant, breadth first, bounded to 64 processes. */
export function processTree(rootPid: number): number[] {
  const out = [rootPid];
  for (let i = 0; i < out.length && out.length < 64; i++) out.push(...childPids(out[i] as number));
  return out;
}

/** Sum of VmHWM over the process tree under `rootPid`, in MiB; null when the root is gone. */
export function peakRssMib(rootPid: number): number | null {
  const root = vmHwmKb(rootPid);
  if (root === null) return null;
  const rest = processTree(rootPid)
    .slice(1)
    .reduce((sum, pid) => sum + (vmHwmKb(pid) ?? 0), 0);
  return (root + rest) / 1024;
}

/** Current VmRSS of one process in MiB (the entries sweep reports what the stored entries take). */
export function rssMib(pid: number): number | null {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}
