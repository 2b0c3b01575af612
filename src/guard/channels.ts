/**
 * The diagnostics channels of guard/ (channels.ts at the root names them): proxy-authentication
 * failures and the attempts the auth throttle held back.
 */
import { channel, type Instance } from '../channels.js';

export const authChannels = Object.freeze({
  failure: channel('sidecache:auth:failure'),
  throttled: channel('sidecache:auth:throttled'),
});

export interface AuthEvents {
  onFailure(blockedMs: number): void;
  onThrottled(): void;
}

/** The auth throttle's default reporting: `sidecache:auth:failure` and `sidecache:auth:throttled`. */
export function publishAuth(instance: Instance | undefined): AuthEvents {
  const { failure, throttled } = authChannels;
  const throttledMessage = Object.freeze({ instance, event: undefined });
  return {
    onFailure(blockedMs) {
      if (failure.hasSubscribers) failure.publish({ instance, event: { blockedMs } });
    },
    onThrottled() {
      if (throttled.hasSubscribers) throttled.publish(throttledMessage);
    },
  };
}
