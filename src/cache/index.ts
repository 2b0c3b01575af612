/** The cache stage's public surface (see docs/cache.md). */

export { createMemoryStore, type MemoryStore, type MemoryStoreOptions } from './memory-store.js';
export {
  type CacheOptions,
  type CacheOptionsInput,
  cacheSchema,
  DEFAULT_ROUTE_POLICY,
  explainPolicy,
  parseCacheOptions,
  parseRouteCachePolicy,
  type RouteCachePolicy,
  type RouteCachePolicyInput,
  routeCachePolicySchema,
} from './options.js';
export {
  type CacheDeps,
  type CacheObserver,
  type CacheStage,
  type CacheStats,
  createCacheStage,
  type InspectedEntry,
  policyByRoute,
} from './stage.js';
export type { CacheStore, EvictionInfo, RemovalReason, StoredResponse, StoreStats } from './store.js';
