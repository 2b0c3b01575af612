/**
 * The diagnostics channels of cache/ (channels.ts at the root names them): what the cache stage
 * and its shared tier cannot put on one Exchange (removals, background refreshes, store failures,
 * upstream coding, L2 lookups and errors). The publishers below are the observers the stage and the
 * shared tier report to when given none of their own; a hit publishes nothing but the rare
 * refresh-ahead hit, whose message is made once.
 */
import { channel, type Instance } from '../channels.js';
import type { CacheObserver, SharedTierObserver } from '../observers.js';

export const cacheChannels = Object.freeze({
  remove: channel('sidecache:cache:remove'),
  refreshError: channel('sidecache:cache:refresh-error'),
  storeError: channel('sidecache:cache:store-error'),
  refreshAhead: channel('sidecache:cache:refresh-ahead'),
  refreshAheadDeferred: channel('sidecache:cache:refresh-ahead-deferred'),
  refreshAheadHit: channel('sidecache:cache:refresh-ahead-hit'),
  upstreamCoding: channel('sidecache:cache:upstream-coding'),
});

export const sharedTierChannels = Object.freeze({
  lookup: channel('sidecache:shared-tier:lookup'),
  command: channel('sidecache:shared-tier:command'),
  error: channel('sidecache:shared-tier:error'),
  lockWait: channel('sidecache:shared-tier:lock-wait'),
  writeDropped: channel('sidecache:shared-tier:write-dropped'),
});

/** The cache stage's observer that publishes every event on its `sidecache:cache:*` channel. */
export function publishCache(instance: Instance | undefined): Required<CacheObserver> {
  const c = cacheChannels;
  const bare = Object.freeze({ instance, event: undefined });
  return {
    onRemove(info) {
      if (c.remove.hasSubscribers) c.remove.publish({ instance, event: info });
    },
    onRefreshError(err, url) {
      if (c.refreshError.hasSubscribers) c.refreshError.publish({ instance, event: { err, url } });
    },
    onStoreError(err, op) {
      if (c.storeError.hasSubscribers) c.storeError.publish({ instance, event: { err, op } });
    },
    onRefreshAhead(result) {
      if (c.refreshAhead.hasSubscribers) c.refreshAhead.publish({ instance, event: { result } });
    },
    onRefreshAheadDeferred() {
      if (c.refreshAheadDeferred.hasSubscribers) c.refreshAheadDeferred.publish(bare);
    },
    onRefreshAheadHit() {
      if (c.refreshAheadHit.hasSubscribers) c.refreshAheadHit.publish(bare);
    },
    onUpstreamCoding(codedBytes, identityBytes) {
      if (c.upstreamCoding.hasSubscribers) {
        c.upstreamCoding.publish({ instance, event: { codedBytes, identityBytes } });
      }
    },
  };
}

/** The shared tier's observer that publishes every event on its `sidecache:shared-tier:*` channel. */
export function publishSharedTier(instance: Instance | undefined): Required<SharedTierObserver> {
  const c = sharedTierChannels;
  return {
    onLookup(result, seconds) {
      if (c.lookup.hasSubscribers) c.lookup.publish({ instance, event: { result, seconds } });
    },
    onCommand(op, seconds) {
      if (c.command.hasSubscribers) c.command.publish({ instance, event: { op, seconds } });
    },
    onError(op, err) {
      if (c.error.hasSubscribers) c.error.publish({ instance, event: { op, err } });
    },
    onLockWait(result, seconds) {
      if (c.lockWait.hasSubscribers) c.lockWait.publish({ instance, event: { result, seconds } });
    },
    onWriteDropped(bytes) {
      if (c.writeDropped.hasSubscribers) c.writeDropped.publish({ instance, event: { bytes } });
    },
  };
}
