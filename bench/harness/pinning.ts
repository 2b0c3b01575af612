// On a small machine the load generator and the measured process fight for the same cores.
// With `taskset` (util-linux) the measured process gets the last CPU to itself; the load generator,
// the origin (when it is not the one measured), idle targets and the harness share the others.
import { execFileSync, spawnSync } from 'node:child_process';

export interface Pinning {
  /** One line for the table header. */
  readonly description: string;
  /** CPU list for the load generator (taskset -c syntax), or null when not pinning. */
  readonly loadCpus: string | null;
  /** Moves `measuredPid` (all its threads) onto the measured CPU and every pid in `others` off it. */
  isolate(measuredPid: number, others: readonly number[]): void;
  /** Wraps a command so that it starts on the load generator's CPUs. */
  wrap(command: string, args: readonly string[]): { command: string; args: string[] };
}

export function expandCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const [from, to] = part.trim().split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) continue;
    for (let cpu = from; cpu <= (to ?? from); cpu++) cpus.push(cpu);
  }
  return cpus;
}

function allowedCpus(): number[] | null {
  const probe = spawnSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8', timeout: 5000 });
  if (probe.status !== 0) return null;
  const list = /list:\s*(\S+)/.exec(probe.stdout)?.[1];
  return list ? expandCpuList(list) : null;
}

function unpinned(description: string): Pinning {
  return {
    description,
    loadCpus: null,
    isolate: () => {},
    wrap: (command, args) => ({ command, args: [...args] }),
  };
}

export function createPinning(wanted: boolean): Pinning {
  if (!wanted) return unpinned('not pinned (--no-pin): load generator and target share all CPUs');
  const cpus = allowedCpus();
  if (cpus === null)
    return unpinned('not pinned (taskset not found): load generator and target share all CPUs');
  if (cpus.length < 2) return unpinned(`not pinned (only CPU ${cpus.join(',')} available)`);
  const measured = String(cpus[cpus.length - 1]);
  const load = cpus.slice(0, -1).join(',');
  const setAffinity = (cpuList: string, pid: number): void => {
    execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore', timeout: 5000 });
  };
  return {
    description: `pinned with taskset: measured process on CPU ${measured}; load generator, origin (when not measured) and harness on CPU ${load}`,
    loadCpus: load,
    isolate(measuredPid, others) {
      setAffinity(measured, measuredPid);
      for (const pid of others) if (pid !== measuredPid) setAffinity(load, pid);
    },
    wrap: (command, args) => ({ command: 'taskset', args: ['-c', load, command, ...args] }),
  };
}
