// autocannon as the fallback load generator, run in its own process (autocannon-runner.ts) so that
// its CPU is kept apart from the harness and it can be pinned like wrk.
import { join } from 'node:path';
import type { LoadDeps, LoadGenerator, LoadPlan, LoadResult } from './load.js';
import { parseResultLine, watchdogMs } from './load.js';

export function createAutocannonLoad(deps: LoadDeps): LoadGenerator {
  const runner = join(deps.benchDir, 'harness', 'autocannon-runner.ts');
  return {
    name: 'autocannon',
    async run(plan: LoadPlan): Promise<LoadResult> {
      const { command, args } = deps.pinning.wrap(process.execPath, [
        '--import',
        'tsx',
        runner,
        JSON.stringify(plan),
      ]);
      const child = deps.children.spawn({ label: 'autocannon', command, args });
      const watchdog = setTimeout(() => child.process.kill('SIGKILL'), watchdogMs(plan.durationMs));
      const exit = await child.exited;
      clearTimeout(watchdog);
      const result = parseResultLine(child.stdout()) as LoadResult | null;
      if (exit.code !== 0 || result === null) {
        throw new Error(
          `autocannon failed (code ${exit.code}, signal ${exit.signal}): ${child.outputTail()}`,
        );
      }
      return result;
    },
  };
}
