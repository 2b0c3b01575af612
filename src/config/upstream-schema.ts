/**
 * The upstream slice of the configuration (schema.ts composes it): `upstream:` with its keep-warm
 * settings, and a route's `upstream:` overrides.
 */
import { z } from 'zod';

/** Keep-warm (upstream/warm.ts): connections opened before requests need them, and kept open. */
export const warmSchema = z
  .object({
    connections: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(2)
      .describe(
        'Connections opened to each route origin at start (DNS, TCP, TLS done), before any request; 0: none.',
      ),
    minIdle: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(1)
      .describe(
        'Idle connections kept open to each route origin, re-opened when the origin or an idle timeout closes them; 0: none.',
      ),
    timeoutMs: z
      .number()
      .int()
      .min(1)
      .default(5_000)
      .describe(
        'Longest the warm start (resolve and connect every route origin) may take before it counts as done.',
      ),
    readyWait: z
      .boolean()
      .default(true)
      .describe('/readyz answers 503 "warming" until the warm start is done or timed out.'),
    retryMinMs: z
      .number()
      .int()
      .min(10)
      .default(500)
      .describe(
        'First wait before re-opening a connection to an origin that failed to connect; doubles per failure.',
      ),
    retryMaxMs: z
      .number()
      .int()
      .min(10)
      .default(30_000)
      .describe('Longest wait between attempts to re-open connections to an origin that is down.'),
  })
  .strict();

export const upstreamSchema = z
  .object({
    connectionsPerOrigin: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(32)
      .describe('Most connections kept open to one origin.'),
    keepAliveTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(60_000)
      .describe('How long an idle pooled connection is kept open when the origin does not say.'),
    keepAliveMaxTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(600_000)
      .describe('Upper bound on the keep-alive timeout an origin may ask for.'),
    connectTimeoutMs: z.number().int().min(1).default(10_000).describe('TCP + TLS connect timeout.'),
    headersTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(60_000)
      .describe('Time allowed for the origin to send the response headers.'),
    bodyTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(60_000)
      .describe('Longest silence allowed between two chunks of the response body.'),
    http2: z.boolean().default(false).describe('Offer HTTP/2 (ALPN h2) to TLS origins.'),
    caFile: z
      .string()
      .nullable()
      .default(null)
      .describe('PEM file of extra CAs trusted for upstream TLS, on top of the system CAs.'),
    retryDeadSocket: z
      .boolean()
      .default(true)
      .describe('Retry an idempotent, bodiless request once when its pooled socket turns out dead.'),
    warm: warmSchema
      .default(warmSchema.parse({}))
      .describe(
        'Keep-warm: connections opened at start and kept idle per route origin (README, "Keep warm").',
      ),
  })
  .strict();

/** Per-route overrides: the same keys as `upstream`, without defaults (unset keys inherit). */
export const routeUpstreamSchema = z
  .object({
    connectionsPerOrigin: z.number().int().min(1).max(1024).optional(),
    keepAliveTimeoutMs: z.number().int().min(1).optional(),
    connectTimeoutMs: z.number().int().min(1).optional(),
    headersTimeoutMs: z.number().int().min(1).optional(),
    bodyTimeoutMs: z.number().int().min(1).optional(),
    http2: z.boolean().optional(),
    retryDeadSocket: z.boolean().optional(),
    warm: z
      .object({
        connections: z.number().int().min(0).max(64).optional(),
        minIdle: z.number().int().min(0).max(64).optional(),
      })
      .strict()
      .optional()
      .describe("Per-route keep-warm: connections and minIdle (unset keys inherit upstream.warm's)."),
  })
  .strict();
