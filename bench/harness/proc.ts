// What the bench reads from /proc: CPU time (utime + stime of every thread, not of children), memory
// (VmRSS now, VmHWM the peak since start), and a process's children (Varnish's cache worker).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null; // the process went away
  }
}

/** The fields after the command name (in parentheses, it may hold spaces) of /proc/PID/stat. */
function statFields(pid: number): string[] | null {
  const stat = read(`/proc/${pid}/stat`);
  return stat === null ? null : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

let ticks: number | undefined;
/** USER_HZ, the unit of utime and stime: `getconf CLK_TCK`, 100 on every Linux Node supports. */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 })) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** User + system CPU seconds `pid` has used so far (fields 14 and 15), or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  return fields === null ? null : (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** A memory field of /proc/PID/status in MiB (VmRSS: now; VmHWM: the peak since start), or null. */
export function statusMib(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number | null {
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(read(`/proc/${pid}/status`) ?? '');
  return match ? Number(match[1]) / 1024 : null;
}

/** Child pids of `pid` (field 4 of /proc/PID/stat is the parent). */
export function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && statFields(Number(entry))?.[1] === String(pid))
    .map(Number);
}

/** VmHWM summed over `rootPid` and its descendants (at most 64 processes), MiB; null when it is gone. */
export function peakRssMib(rootPid: number): number | null {
  const root = statusMib(rootPid, 'VmHWM');
  if (root === null) return null;
  const tree = [rootPid];
  for (let i = 0; i < tree.length && tree.length < 64; i++) tree.push(...childPids(tree[i] as number));
  return tree.slice(1).reduce((sum, pid) => sum + (statusMib(pid, 'VmHWM') ?? 0), root);
}
