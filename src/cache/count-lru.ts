/**
 * An LRU map bounded by its number of entries that grows as it fills. lru-cache's `max` allocates
 * its key, value and link arrays at that length up front: ~220 KB for 10,000 entries, held from
 * start whether or not the traffic ever uses them. Bounding the size instead (each entry weighs
 * 1) keeps the same bound with arrays that grow. Not for caches with a `ttl` (their timestamp
 * arrays assume `max`).
 */
import { LRUCache } from 'lru-cache';

const one = (): number => 1;

export function countBoundedLru<K extends {}, V extends {}>(maxEntries: number): LRUCache<K, V> {
  return new LRUCache<K, V>({ maxSize: Math.max(1, maxEntries), sizeCalculation: one });
}
