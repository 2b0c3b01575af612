/**
 * Per-path overrides inside a route's cache policy (`paths:`): the first entry whose prefix
 * matches the origin path replaces `enabled`, `ttlMs`, `ignoreNoStore` or `forceRevalidate`.
 * Key settings (query, key headers, credentials) stay the route's, so purges and invalidation
 * see one key space per route. Pure: compiled once per policy by the stage.
 */
import type { RouteCachePolicy } from './options.js';

export interface PathPolicy {
  readonly prefix: string;
  readonly policy: RouteCachePolicy;
}

/** The merged policy of every `paths` entry, in order. */
export function compilePathPolicies(policy: RouteCachePolicy): readonly PathPolicy[] {
  return policy.paths.map((o) =>
    Object.freeze({
      prefix: o.prefix,
      policy: Object.freeze({
        ...policy,
        ...(o.enabled === undefined ? {} : { enabled: o.enabled }),
        ...(o.ttlMs === undefined ? {} : { ttlMs: o.ttlMs }),
        ...(o.ignoreNoStore === undefined ? {} : { ignoreNoStore: o.ignoreNoStore }),
        ...(o.forceRevalidate === undefined ? {} : { forceRevalidate: o.forceRevalidate }),
        paths: [],
      }),
    }),
  );
}

/** The policy that applies to `pathname`: the first matching path entry's, else the route's. */
export function selectPathPolicy(
  route: RouteCachePolicy,
  compiled: readonly PathPolicy[],
  pathname: string,
): RouteCachePolicy {
  for (const p of compiled) if (pathname.startsWith(p.prefix)) return p.policy;
  return route;
}
