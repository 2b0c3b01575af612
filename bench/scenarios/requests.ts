// A scenario is one request shape sent to every target. Adding one is adding an entry to SCENARIOS:
// the origin path (its first segment picks the caching headers, see targets/origin.ts), how proxies
// are addressed, and optionally a fixed number of connections.
import type { LoadRequest } from '../harness/load.js';
import type { Endpoint } from '../targets/index.js';
import { ROUTE_NAME } from '../targets/route-table.js';

/** How a proxy is addressed; the names follow sidecache's front modes. */
export type AddressingMode = 'route' | 'forward';

export interface Scenario {
  readonly name: string;
  /** One sentence for the README and `--help`. */
  readonly description: string;
  /** Path and query on the origin, starting with `/`. */
  readonly originPath: string;
  readonly mode: AddressingMode;
  /** Fixed concurrency; when absent, the run's `--connections`. */
  readonly connections?: number;
  /** Accept-Encoding the load generator sends (the probe never sends one). */
  readonly acceptEncoding?: string;
  /** Run when no `--scenario` is given. */
  readonly byDefault: boolean;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'pass-through',
    description:
      'reverse route, uncacheable 1 KiB JSON (no-store), at saturation: throughput and CPU per request',
    originPath: '/no-store/item',
    mode: 'route',
    byDefault: true,
  },
  {
    name: 'pass-through-1conn',
    description:
      'reverse route, uncacheable 1 KiB JSON, one connection: latency added by the proxy when idle',
    originPath: '/no-store/item',
    mode: 'route',
    connections: 1,
    byDefault: true,
  },
  {
    name: 'forward-proxy',
    description: 'forward proxy (absolute-form request-target), uncacheable 1 KiB JSON, at saturation',
    originPath: '/no-store/item',
    mode: 'forward',
    byDefault: true,
  },
  {
    // sidecache serves it from its cache after the probe; bare-node, nginx and Varnish run here only.
    name: 'fresh-hit',
    description:
      'reverse route, 1 KiB JSON with Cache-Control: public, max-age=3600: a cache serves it from memory',
    originPath: '/fresh/item',
    mode: 'route',
    byDefault: true,
  },
  {
    // The origin answers gzip when asked (as real APIs do); clients send what Python requests sends.
    name: 'fresh-hit-gzip',
    description:
      'as fresh-hit, but the origin gzips when asked and clients send Accept-Encoding: gzip, deflate (a stored gzip body sent as it is)',
    originPath: '/fresh-gzip/item',
    mode: 'route',
    acceptEncoding: 'gzip, deflate',
    byDefault: true,
  },
];

/** The request the load generator sends to `endpoint` for `scenario`; the origin is always hit directly. */
export function requestFor(scenario: Scenario, endpoint: Endpoint, originUrl: string): LoadRequest {
  const at = addressFor(scenario, endpoint, originUrl);
  return scenario.acceptEncoding === undefined ? at : { ...at, acceptEncoding: scenario.acceptEncoding };
}

function addressFor(scenario: Scenario, endpoint: Endpoint, originUrl: string): LoadRequest {
  const originHost = new URL(originUrl).host;
  if (endpoint.role === 'origin') {
    return { connectUrl: endpoint.url, requestTarget: scenario.originPath, host: originHost };
  }
  switch (scenario.mode) {
    case 'route':
      return {
        connectUrl: endpoint.url,
        requestTarget: `/${ROUTE_NAME}${scenario.originPath}`,
        host: new URL(endpoint.url).host,
      };
    case 'forward':
      return {
        connectUrl: endpoint.url,
        requestTarget: `${originUrl}${scenario.originPath}`,
        host: originHost,
      };
    default: {
      const unknown: never = scenario.mode;
      throw new Error(`unknown addressing mode ${String(unknown)}`);
    }
  }
}
