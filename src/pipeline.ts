/**
 * The only file that lists the order of the stages: guard → advisor → cache → upstream (the
 * advisor, src/advisor/, only watches origin answers on their way out of the cache stage).
 * Each stage is `(next) => (exchange) => Reply | Promise<Reply>`; upstream is the terminal `Next`.
 * A reply that needs no I/O (a remembered cache hit) is returned as it is, not in a promise, by
 * every stage it passes, so front/ writes it in the tick the request arrived; a stage that looks at
 * the reply on its way back handles both (advisor/observe.ts).
 */
import type { Next, Stage } from './exchange.js';

export interface PipelineParts {
  /** Admit or refuse (allow list, loops; later SSRF, limits, proxy auth). */
  readonly guard: Stage;
  /** The policy advisor's observation: sees what the cache stage did not answer itself. */
  readonly advisor?: Stage | undefined;
  /** RFC 9111 cache; absent while caching is off. */
  readonly cache?: Stage | undefined;
  /** Sends the exchange to its origin: the terminal step. */
  readonly upstream: Next;
}

export function createPipeline(parts: PipelineParts): Next {
  const stages: Stage[] = [parts.guard];
  if (parts.advisor) stages.push(parts.advisor);
  if (parts.cache) stages.push(parts.cache);
  return composePipeline(stages, parts.upstream);
}

export function composePipeline(stages: readonly Stage[], terminal: Next): Next {
  let next = terminal;
  for (let i = stages.length - 1; i >= 0; i--) {
    const stage = stages[i];
    if (stage) next = stage(next);
  }
  return next;
}
