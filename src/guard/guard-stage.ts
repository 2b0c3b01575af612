/**
 * Admit or refuse, before anything is sent anywhere. A request on a route is admitted by that
 * route; a forward-proxy request to any other origin only when its host is in the allow list
 * (sidecache is never an open proxy) and its port in `egress.ports`; an IP literal only when the
 * egress policy lets its address be reached (names are judged at connect time, in the lookup: see
 * egress-policy.ts); a request that already passed through this very instance (its Via names us)
 * is a loop and gets 508.
 */

import { LRUCache } from 'lru-cache';
import type { HostMatcher, Route } from '../config/runtime.js';
import { EgressDeniedError, LoopDetectedError, PortNotAllowedError } from '../errors.js';
import type { Admission, Exchange, Stage } from '../exchange.js';
import type { EgressPolicy } from './egress-policy.js';

export interface GuardOptions {
  readonly allow: HostMatcher;
  /** The token this instance writes into Via; seeing it on a request means a loop. */
  readonly viaToken: string;
  /** Address policy for IP literals; none checked when absent (unit tests of other stages). */
  readonly egress?: EgressPolicy;
  /** Ports forward-proxy requests may reach on allowed hosts; any when absent. */
  readonly ports?: readonly number[];
  /** Runs first (proxy authentication); throws to refuse. */
  readonly authenticate?: (ex: Exchange) => void;
}

/** Origins whose forward admission is remembered (per guard, so per runtime). */
const ADMITTED_ORIGINS = 1024;

function portOf(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

export function createGuardStage(opts: GuardOptions): Stage {
  const ports = opts.ports ? new Set(opts.ports) : null;
  /** The admission of each route, made once (admissions are read-only). */
  const byRoute = new WeakMap<Route, Admission>();
  const routeAdmission = (route: Route): Admission => {
    let admission = byRoute.get(route);
    if (admission === undefined) {
      admission = Object.freeze({ decision: 'admit', by: `route:${route.name}` });
      byRoute.set(route, admission);
    }
    return admission;
  };
  /**
   * The admission of each origin a request without a route was admitted to, by mode: it depends
   * on the origin and the mode alone (allow list, egress ports, address policy of an IP literal;
   * names are judged at connect time). Refusals are not remembered: each is worked out and thrown.
   */
  const byOrigin = new LRUCache<string, Admission>({ max: ADMITTED_ORIGINS });
  // Not an async function: a refusal is a rejected promise, an admitted exchange goes straight on
  // to `next` in the same tick, without an extra promise and microtask per request.
  return (next) => (ex: Exchange) => {
    try {
      admit(ex);
    } catch (err) {
      return Promise.reject(err);
    }
    return next(ex);
  };

  /** Sets `ex.admission` when admitted; throws the refusal otherwise. */
  function admit(ex: Exchange): void {
    opts.authenticate?.(ex);
    const via = ex.headers.via;
    if (via?.includes(opts.viaToken)) {
      throw new LoopDetectedError(`request to ${ex.origin} already passed through this sidecache`, {
        detail: { upstream: ex.origin },
      });
    }
    if (ex.route !== null) {
      // A route's own origin was admitted when the config was compiled (operator intent: a literal
      // address there, or whatever its name resolves to, see egress-policy.ts): only a forward
      // request that picked up a route by another origin (none today) would need the literal check.
      if (ex.origin !== ex.route.origin) opts.egress?.checkLiteral(ex.target.hostname, portOf(ex.target));
      ex.admission = routeAdmission(ex.route);
      return;
    }
    const originKey = `${ex.mode} ${ex.origin}`;
    const known = byOrigin.get(originKey);
    if (known !== undefined) {
      ex.admission = known;
      return;
    }
    ex.admission = admitOrigin(ex);
    byOrigin.set(originKey, ex.admission);
  }

  /** The admission of a request without a route; throws the refusal (with `ex.admission` set). */
  function admitOrigin(ex: Exchange): Admission {
    const port = portOf(ex.target);
    const by = opts.allow(ex.target.hostname) ?? opts.egress?.allowsLiteral(ex.target.hostname) ?? null;
    if (by === null) {
      ex.admission = { decision: 'refuse', by: 'default-deny' };
      throw new EgressDeniedError(
        `${ex.target.host} is not a route origin nor in the allow list; add it to "allow" or configure a route`,
        { detail: { upstream: ex.origin } },
      );
    }
    // CONNECT ports are checked against tunnel.ports (tunnels.ts); decrypted requests inherit them.
    if (ports !== null && ex.mode === 'forward' && !ports.has(port)) {
      ex.admission = { decision: 'refuse', by: 'egress-ports' };
      throw new PortNotAllowedError(
        `${ex.target.host}: port ${port} is not allowed; allowed ports: ${[...ports].sort((a, b) => a - b).join(', ')} (egress.ports, and a route origin's own port)`,
        { detail: { upstream: ex.origin } },
      );
    }
    try {
      opts.egress?.checkLiteral(ex.target.hostname, port);
    } catch (err) {
      ex.admission = { decision: 'refuse', by: 'private-address' };
      throw err;
    }
    return Object.freeze({ decision: 'admit', by: `allow:${by}` });
  }
}
