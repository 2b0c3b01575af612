/**
 * The one swappable holder of the running configuration (Envoy's and Varnish's way of reloading):
 * every part that depends on reloadable settings reads `current()` when an exchange starts instead
 * of capturing a Runtime at creation, so a reload is a single `swap(next)`. An exchange keeps what
 * it read (its route, with that route's upstream settings and cache policy), so requests in flight
 * finish under the config they started with.
 *
 * Parts that compile something from the runtime (the guard's matchers, the egress policy, the
 * tunnels' port tables) register a builder with `derive`: it runs once per runtime (memoised in a
 * WeakMap), and `prepare(next)` runs every builder on a candidate runtime before it is swapped in,
 * so a config that one of them refuses is rejected while the old one keeps serving.
 */
import type { Runtime } from './runtime.js';

export type RuntimeListener = (next: Runtime, previous: Runtime) => void;

export interface RuntimeRef {
  current(): Runtime;
  /** A getter for `build(runtime)`, built once per runtime; without an argument, for `current()`. */
  derive<T>(build: (runtime: Runtime) => T): (runtime?: Runtime) => T;
  /** Builds everything `derive` registered for `next`; throws what a builder throws. */
  prepare(next: Runtime): void;
  /** Makes `next` current (after `prepare`), then tells every listener (throws if any threw). */
  swap(next: Runtime): void;
  /** Called after every swap (pool retirement, metrics labels, warm start); returns an unsubscribe. */
  onChange(listener: RuntimeListener): () => void;
}

export function createRuntimeRef(initial: Runtime): RuntimeRef {
  let runtime = initial;
  const builders: Array<(rt: Runtime) => unknown> = [];
  const listeners = new Set<RuntimeListener>();
  return {
    current: () => runtime,
    derive<T>(build: (rt: Runtime) => T) {
      const built = new WeakMap<Runtime, T>();
      // The last runtime asked for, and its value: read per request by some (the guard), so the
      // common case is one comparison instead of two WeakMap lookups.
      let lastRuntime: Runtime | null = null;
      let lastValue: T | undefined;
      const get = (rt: Runtime): T => {
        if (rt === lastRuntime) return lastValue as T;
        let value: T;
        if (built.has(rt)) value = built.get(rt) as T;
        else {
          value = build(rt);
          built.set(rt, value);
        }
        lastRuntime = rt;
        lastValue = value;
        return value;
      };
      builders.push(get);
      return (rt?: Runtime) => get(rt ?? runtime);
    },
    prepare(next) {
      for (const build of builders) build(next);
    },
    swap(next) {
      const previous = runtime;
      runtime = next;
      const failures: unknown[] = [];
      for (const listener of listeners) {
        try {
          listener(next, previous);
        } catch (err) {
          failures.push(err);
        }
      }
      // Every listener ran; the caller (the reloader) logs what failed.
      if (failures.length > 0) throw new AggregateError(failures, 'a runtime listener failed');
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
