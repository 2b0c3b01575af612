// CPU time of a process, from /proc/PID/stat: utime + stime (fields 14 and 15), in clock ticks.
// These cover every thread of the process (libuv pool, GC helpers), not its children.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuClock {
  readonly ticksPerSecond: number;
  /** User + system CPU seconds the process has used so far. */
  cpuSeconds(pid: number): number;
}

function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100; // USER_HZ on every Linux architecture Node supports
  }
}

export function parseProcStat(stat: string): { utimeTicks: number; stimeTicks: number } {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utimeTicks = Number(rest[11]);
  const stimeTicks = Number(rest[12]);
  if (!Number.isFinite(utimeTicks) || !Number.isFinite(stimeTicks)) {
    throw new Error(`unexpected /proc/PID/stat format: ${stat.slice(0, 120)}`);
  }
  return { utimeTicks, stimeTicks };
}

/** A clock over /proc, or null where /proc/self/stat cannot be read (not Linux). */
export function createCpuClock(): CpuClock | null {
  try {
    parseProcStat(readFileSync('/proc/self/stat', 'utf8'));
  } catch {
    return null;
  }
  const ticksPerSecond = clockTicksPerSecond();
  return {
    ticksPerSecond,
    cpuSeconds(pid: number): number {
      const { utimeTicks, stimeTicks } = parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      return (utimeTicks + stimeTicks) / ticksPerSecond;
    },
  };
}
