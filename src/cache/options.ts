/**
 * Options of the cache stage. Their schemas are config's (config/cache-schema.ts: `cache:` and a
 * route's `cache:` policy); here they are checked once, when the stage is built.
 */
import type { z } from 'zod';
import {
  type CacheOptions,
  cacheSchema,
  type RouteCachePolicy,
  routeCachePolicySchema,
} from '../config/cache-schema.js';
import { ConfigError } from '../errors.js';

export * from '../config/cache-schema.js';

function issuesOf(error: z.ZodError, where: string): string[] {
  return error.issues.map((issue) => {
    const path = [where, ...issue.path.map(String)].filter((p) => p !== '').join('.');
    return `${path}: ${issue.message}`;
  });
}

/** Validates and fills defaults; throws ConfigError naming each bad key. */
export function parseCacheOptions(input: unknown, where = 'cache'): CacheOptions {
  const r = cacheSchema.safeParse(input ?? {});
  if (!r.success) throw new ConfigError(issuesOf(r.error, where));
  return Object.freeze(r.data);
}

export function parseRouteCachePolicy(input: unknown, where = 'route.cache'): RouteCachePolicy {
  const r = routeCachePolicySchema.safeParse(input ?? {});
  if (!r.success) throw new ConfigError(issuesOf(r.error, where));
  return Object.freeze(r.data);
}
