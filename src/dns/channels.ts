/**
 * The diagnostics channel of dns/ (channels.ts at the root names it): every lookup through the DNS
 * cache, what the cache reports to when given no `onLookup` of its own.
 */
import { channel, type Instance } from '../channels.js';
import type { DnsLookupEvent } from '../observers.js';

export const lookupChannel = channel('sidecache:dns:lookup');

/** The DNS cache's default `onLookup`: each lookup, on `sidecache:dns:lookup`. */
export function publishLookup(instance: Instance | undefined): (event: DnsLookupEvent) => void {
  return (event) => {
    if (lookupChannel.hasSubscribers) lookupChannel.publish({ instance, event });
  };
}
