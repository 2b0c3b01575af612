/**
 * What a configuration reload (SIGHUP, `POST /reload`) may change, and what it changed. Pure: no
 * I/O, no clock. server.ts swaps the runtime only when `reloadProblems` finds nothing.
 *
 * Reloadable: routes (added, removed, changed: origin, prefix, hosts, upstream overrides, cache
 * policy, Server-Timing), `allow`, `egress`, `intercept` (when interception was on at start),
 * `tunnel.ports`, `proxy.auth`, `proxy.stripRequestHeaders`, `proxy.trustForwarded`, `proxy.maxUrlBytes`, `upstream` (all
 * but `caFile`) and `observability`. Everything else is bound at start (listeners, the cache and
 * its backend, DNS, TLS, limits, logging, Via and X-Forwarded-*, the tunnel idle timeout, the
 * upstream CA file, the shutdown grace): a reload that changes any of it is refused as a whole,
 * naming each key, so that after a successful reload the running config is exactly the file's.
 */

import type { Runtime } from './runtime.js';
import type { Config, UpstreamConfig } from './schema.js';

/** Dotted key paths a reload may change (a path covers everything below it). */
export const RELOADABLE_KEYS: readonly string[] = Object.freeze([
  'routes',
  'allow',
  'egress',
  'intercept',
  'tunnel.ports',
  'proxy.auth',
  'proxy.stripRequestHeaders',
  'proxy.trustForwarded',
  'proxy.maxUrlBytes',
  'upstream.connectionsPerOrigin',
  'upstream.keepAliveTimeoutMs',
  'upstream.keepAliveMaxTimeoutMs',
  'upstream.connectTimeoutMs',
  'upstream.headersTimeoutMs',
  'upstream.bodyTimeoutMs',
  'upstream.http2',
  'upstream.retryDeadSocket',
  'observability',
]);

export interface ReloadSummary {
  readonly routesAdded: readonly string[];
  readonly routesRemoved: readonly string[];
  readonly routesChanged: readonly string[];
  /** Other reloadable keys whose value changed (dotted paths). */
  readonly changed: readonly string[];
}

type Plain = null | boolean | number | string | Plain[] | { [k: string]: Plain };

function isObject(v: unknown): v is Record<string, Plain> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Leaf paths where `a` and `b` differ; arrays compare as a whole. */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => changedPaths(a[k], b[k], prefix === '' ? k : `${prefix}.${k}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

function isReloadable(path: string): boolean {
  return RELOADABLE_KEYS.some((k) => path === k || path.startsWith(`${k}.`));
}

/**
 * Why `next` cannot replace `prev` without a restart, one line per key; empty when it can.
 * `interceptionReady`: whether the interception CA was loaded at start (it is only when
 * `intercept` named a host then), without which `intercept` cannot be turned on by a reload.
 */
export function reloadProblems(prev: Config, next: Config, interceptionReady: boolean): string[] {
  const problems = changedPaths(prev, next)
    .filter((p) => !isReloadable(p))
    .map((p) => `${p}: changing requires a restart`);
  if (!interceptionReady && next.intercept.length > 0) {
    problems.push('intercept: turning interception on requires a restart (the CA is loaded at start)');
  }
  return problems;
}

export function summariseReload(prev: Runtime, next: Runtime): ReloadSummary {
  const before = new Map(prev.config.routes.map((r) => [r.name, r]));
  const after = new Map(next.config.routes.map((r) => [r.name, r]));
  const routesAdded = [...after.keys()].filter((n) => !before.has(n));
  const routesRemoved = [...before.keys()].filter((n) => !after.has(n));
  const routesChanged = [...after.keys()].filter(
    (n) => before.has(n) && changedPaths(before.get(n), after.get(n)).length > 0,
  );
  // Route order matters for prefix and Host lookups only through names; a changed upstream default
  // shows up here and in each route it changes.
  const changed = [
    ...new Set(
      changedPaths(prev.config, next.config)
        .filter((p) => p !== 'routes' && !p.startsWith('routes.'))
        .map((p) => RELOADABLE_KEYS.find((k) => p === k || p.startsWith(`${k}.`)) ?? p),
    ),
  ];
  return { routesAdded, routesRemoved, routesChanged, changed };
}

/**
 * Whether an upstream pool (origin, settings) still serves new exchanges under `next`: some route
 * of that origin has those settings, or no route names the origin (forward proxy) and they are the
 * defaults. Other pools are retired after a reload.
 */
export function poolStillCurrent(next: Runtime): (origin: string, settings: UpstreamConfig) => boolean {
  const current = new Set(next.routes.map((r) => `${r.origin} ${JSON.stringify(r.upstream)}`));
  const defaults = JSON.stringify(next.config.upstream);
  return (origin, settings) =>
    current.has(`${origin} ${JSON.stringify(settings)}`) ||
    (!next.routeByOrigin.has(origin) && JSON.stringify(settings) === defaults);
}
