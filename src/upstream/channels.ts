/**
 * The diagnostics channels of upstream/ (channels.ts at the root names them): connection attempts
 * of the pools, and keep-warm's preconnects, warm starts and origin health. The publishers below
 * are what the pools and keep-warm report to when given no observer of their own.
 */
import { channel, type Instance } from '../channels.js';
import type { ConnectEvent, WarmObserver } from '../observers.js';

export const connectChannel = channel('sidecache:upstream:connect');
export const warmChannels = Object.freeze({
  preconnect: channel('sidecache:warm:preconnect'),
  taken: channel('sidecache:warm:taken'),
  start: channel('sidecache:warm:start'),
  health: channel('sidecache:warm:health'),
});

/** The pools' default `onConnect`: each connection attempt, on `sidecache:upstream:connect`. */
export function publishConnect(instance: Instance | undefined): (event: ConnectEvent) => void {
  return (event) => {
    if (connectChannel.hasSubscribers) connectChannel.publish({ instance, event });
  };
}

/** Keep-warm's default observer: every event on its `sidecache:warm:*` channel. */
export function publishWarm(instance: Instance | undefined): WarmObserver {
  const { preconnect, taken, start, health } = warmChannels;
  return {
    onPreconnect(origin, ok, errorCode) {
      if (preconnect.hasSubscribers) preconnect.publish({ instance, event: { origin, ok, errorCode } });
    },
    onTaken(origin) {
      if (taken.hasSubscribers) taken.publish({ instance, event: { origin } });
    },
    onWarmStart(result) {
      if (start.hasSubscribers) start.publish({ instance, event: result });
    },
    onOriginHealth(origin, healthy, errorCode) {
      if (health.hasSubscribers) health.publish({ instance, event: { origin, healthy, errorCode } });
    },
  };
}
