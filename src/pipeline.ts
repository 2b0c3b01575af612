/**
 * The only file that lists the order of the stages: guard → cache → upstream.
 * Each stage is `(next) => (exchange) => Promise<Reply>`; upstream is the terminal `Next`.
 */
import type { Next, Stage } from './exchange.js';

export function composePipeline(stages: readonly Stage[], terminal: Next): Next {
  let next = terminal;
  for (let i = stages.length - 1; i >= 0; i--) {
    const stage = stages[i];
    if (stage) next = stage(next);
  }
  return next;
}
