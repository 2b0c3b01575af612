/**
 * Applies a configuration reload (SIGHUP, `POST /reload`) to a running instance: load the sources
 * again, compile, check what may change without a restart (config/reload.ts), build every derived
 * part for the candidate (RuntimeRef.prepare), then swap. Any failure rejects the reload as a
 * whole, logs the precise messages and keeps the running config; exchanges in flight are never
 * touched (they keep the runtime they started with). Each outcome is published on
 * `sidecache:config:reload` (channels.ts).
 */
import { channel, type Instance } from './channels.js';
import { type ReloadSummary, reloadProblems, summariseReload } from './config/reload.js';
import type { Runtime } from './config/runtime.js';
import type { RuntimeRef } from './config/runtime-ref.js';
import { ConfigError } from './errors.js';
import type { Logger } from './log.js';
import type { ReloadResult } from './observers.js';

const reloadChannel = channel('sidecache:config:reload');

export type ReloadOutcome =
  | { readonly result: 'ok'; readonly summary: ReloadSummary }
  | { readonly result: 'rejected'; readonly problems: readonly string[] };

export interface ReloaderDeps {
  readonly ref: RuntimeRef;
  readonly logger: Logger;
  /** Whether the interception CA was loaded at start (needed to turn `intercept` on). */
  readonly interceptionReady: boolean;
  /** Told about each outcome; default: published on `sidecache:config:reload` for `instance`. */
  readonly observe?: (result: ReloadResult, atMs: number) => void;
  readonly instance?: Instance;
  readonly now?: () => number;
}

/** Problems of a thrown error: a ConfigError's issues, else its message. */
function problemsOf(err: unknown): string[] {
  if (err instanceof ConfigError) return [...err.issues];
  return [err instanceof Error ? err.message : String(err)];
}

export function createReloader(deps: ReloaderDeps): (load: () => Runtime) => ReloadOutcome {
  const now = deps.now ?? Date.now;
  const { instance } = deps;
  const observe =
    deps.observe ??
    ((result: ReloadResult, atMs: number): void => {
      if (reloadChannel.hasSubscribers) reloadChannel.publish({ instance, event: { result, atMs } });
    });
  return (load) => {
    const reject = (problems: string[]): ReloadOutcome => {
      observe('rejected', now());
      deps.logger.error({ problems }, `config reload rejected, running config kept: ${problems.join('; ')}`);
      deps.logger.flush();
      return { result: 'rejected', problems };
    };
    // Synchronous from load to swap: two reloads never interleave.
    const prev = deps.ref.current();
    let next: Runtime;
    try {
      next = load();
    } catch (err) {
      return reject(problemsOf(err));
    }
    const problems = reloadProblems(prev.config, next.config, deps.interceptionReady);
    if (problems.length > 0) return reject(problems);
    try {
      deps.ref.prepare(next);
    } catch (err) {
      return reject(problemsOf(err));
    }
    const summary = summariseReload(prev, next);
    try {
      deps.ref.swap(next);
    } catch (err) {
      // The new config is running; a listener (pool retirement, warm start) failed on its own.
      const failures = err instanceof AggregateError ? err.errors : [err];
      for (const failure of failures) deps.logger.warn({ err: failure }, 'config reload: a listener failed');
    }
    observe('ok', now());
    deps.logger.info({ ...summary, routes: next.routes.map((r) => r.name) }, 'config reloaded');
    deps.logger.flush();
    return { result: 'ok', summary };
  };
}
