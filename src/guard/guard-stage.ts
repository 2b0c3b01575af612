/**
 * Admit or refuse, before anything is sent anywhere. Today: a request on a route is admitted by
 * that route; a forward-proxy request to any other origin only when its host is in the allow list
 * (sidecache is never an open proxy); a request that already passed through this very instance
 * (its Via names us) is a loop and gets 508.
 */

import type { HostMatcher } from '../config/runtime.js';
import { EgressDeniedError, LoopDetectedError } from '../errors.js';
import type { Exchange, Stage } from '../exchange.js';

export interface GuardOptions {
  readonly allow: HostMatcher;
  /** The token this instance writes into Via; seeing it on a request means a loop. */
  readonly viaToken: string;
}

export function createGuardStage(opts: GuardOptions): Stage {
  return (next) => async (ex: Exchange) => {
    const via = ex.headers.via;
    if (via?.includes(opts.viaToken)) {
      throw new LoopDetectedError(`request to ${ex.origin} already passed through this sidecache`, {
        detail: { upstream: ex.origin },
      });
    }
    if (ex.route !== null) {
      ex.admission = { decision: 'admit', by: `route:${ex.route.name}` };
      return next(ex);
    }
    const by = opts.allow(ex.target.hostname);
    if (by === null) {
      ex.admission = { decision: 'refuse', by: 'default-deny' };
      throw new EgressDeniedError(
        `${ex.target.host} is not a route origin nor in the allow list; add it to "allow" or configure a route`,
        { detail: { upstream: ex.origin } },
      );
    }
    ex.admission = { decision: 'admit', by: `allow:${by}` };
    return next(ex);
  };
}
