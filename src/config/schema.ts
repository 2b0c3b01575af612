/**
 * The one configuration schema: it validates (with precise errors, see load.ts), fills defaults,
 * and gives the TypeScript type. Every key carries its unit in its name and a description. The
 * `cache:`, `dns:` and `upstream:` slices are in cache-schema.ts, dns-schema.ts and
 * upstream-schema.ts. The stages read these types and schemas; config/ imports nothing of theirs.
 */
import { z } from 'zod';
import { parseCidr } from '../address-ranges.js';
import { cacheSchema, DEFAULT_ROUTE_POLICY, routeCachePolicySchema } from './cache-schema.js';
import { DNS_DEFAULTS, dnsSchema } from './dns-schema.js';
import { HOST_PATTERN, parseInterceptEntry } from './intercept-entry.js';
import { routeUpstreamSchema, upstreamSchema, type warmSchema } from './upstream-schema.js';

export { routeUpstreamSchema, upstreamSchema, warmSchema } from './upstream-schema.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** `HOST:PORT`, `[v6]:PORT` or `:PORT`. */
export const hostPortSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:8080')
  .refine((s) => {
    // Only a HOST:PORT whose port is a number has a range to check: one message per mistake.
    if (!/:\d{1,5}$/.test(s)) return true;
    const port = Number(s.slice(s.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be between 0 and 65535');

const httpUrlSchema = z.string().refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && !u.search && !u.hash;
  } catch {
    return false;
  }
}, 'expected an http(s) URL without query or fragment, e.g. https://api.github.com');

const hostPatternSchema = z
  .string()
  .regex(HOST_PATTERN, 'expected a host name, "*.example.com", "*" or an IP address');

/** An `intercept` entry: `HOST[:PORT]` (config/intercept-entry.ts). */
const interceptEntrySchema = z.string().superRefine((value, ctx) => {
  const entry = parseInterceptEntry(value);
  if (typeof entry === 'string') ctx.addIssue({ code: 'custom', message: entry });
});

/** A host pattern, or an address block (`10.0.0.0/8`, `::1/128`) whose addresses may be reached. */
const allowEntrySchema = z.union([
  hostPatternSchema,
  z
    .string()
    .regex(
      /^[0-9a-fA-F:.]+\/\d{1,3}$/,
      'expected a host name, "*.example.com", "*", an IP address or a CIDR',
    ),
]);

/** An address or address block (`10.0.0.0/8`, `::1/128`, `127.0.0.1`) of clients. */
const trustedClientSchema = z
  .string()
  .refine((s) => parseCidr(s) !== null, 'expected an IP address or a CIDR block ("10.0.0.0/8", "::1/128")');

/** `proxy.acceptors` (src/front/acceptors.ts; measured in bench/README.md). */
const ACCEPTORS_DEFAULT = 16;

/** Headers that change what an origin answers but are not part of the cache key (cache poisoning). */
export const DEFAULT_STRIPPED_REQUEST_HEADERS = [
  'x-host',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

export const proxyAuthSchema = z
  .object({
    enabled: z.boolean().default(false).describe('Require Proxy-Authorization: Basic credentials.'),
    realm: z
      .string()
      .regex(/^[^"\\\r\n]+$/)
      .default('sidecache')
      .describe('Realm named in Proxy-Authenticate.'),
    users: z
      .array(
        z
          .object({
            name: z
              .string()
              .min(1)
              .regex(/^[^:]+$/, 'expected a user name without ":"'),
            passwordSha256: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'expected the SHA-256 of the password as 64 hex digits')
              .describe('SHA-256 of the password, hex (echo -n PASSWORD | sha256sum).'),
          })
          .strict(),
      )
      .default([])
      .describe('Who may use the proxy.'),
    modes: z
      .array(z.enum(['route', 'forward', 'tunnel']))
      .default(['forward', 'tunnel'])
      .describe('Which requests must authenticate: forward proxy, CONNECT tunnels, reverse routes.'),
    throttle: z
      .object({
        maxFailures: z
          .number()
          .int()
          .min(0)
          .default(5)
          .describe(
            'Wrong credentials in a row from one client address before it is held back; 0: no throttle.',
          ),
        backoffMs: z
          .number()
          .int()
          .min(1)
          .default(1_000)
          .describe('First back-off (429 with Retry-After); doubles with each further failure.'),
        maxBackoffMs: z.number().int().min(1).default(60_000).describe('Longest back-off.'),
      })
      .strict()
      .default({ maxFailures: 5, backoffMs: 1_000, maxBackoffMs: 60_000 })
      .describe('Back-off against password guessing, per client address (read at start).'),
  })
  .strict()
  .refine((a) => !a.enabled || a.users.length > 0, {
    message: 'proxy.auth.enabled needs at least one user',
    path: ['users'],
  });

export const egressSchema = z
  .object({
    ports: z
      .array(z.number().int().min(1).max(65535))
      .default([80, 443])
      .describe(
        "Ports a forward-proxy request may reach on an allowed host; a route origin's own port is always allowed (CONNECT: tunnel.ports).",
      ),
  })
  .strict();

export const limitsSchema = z
  .object({
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .default(16_384)
      .describe('Largest request head (request line and headers) accepted; larger gets 431.'),
    maxHeaderCount: z
      .number()
      .int()
      .min(8)
      .default(200)
      .describe('Most request header fields accepted; more gets 431.'),
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .default(10 * 1024 * 1024)
      .describe('Largest request body accepted, counted as it streams; larger gets 413.'),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Most client connections open at once; more are answered 503 and closed.'),
    maxConnectionsPerClient: z
      .number()
      .int()
      .min(1)
      .default(1_000)
      .describe(
        'Most connections open at once from one client IP address; more are answered 503 and closed.',
      ),
    headersTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(30_000)
      .describe('Time a client has to send the request head (slowloris); then 408.'),
    requestTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(300_000)
      .describe('Time a client has to send the whole request, body included; then 408.'),
  })
  .strict();

export const routeSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, 'expected a name of letters, digits, "-" and "_"')
      .describe('Route name: a metric label and, by default, the path prefix /NAME/.'),
    origin: httpUrlSchema.describe(
      'Where requests go, e.g. https://api.github.com (a path is prepended). Operator intent: reached at whatever address its name resolves to, private ones included (a service name in a cluster), also by forward-proxy and CONNECT requests to this host and port (docs/https.md).',
    ),
    prefix: z
      .union([
        z.string().regex(/^\/(.*\/)?$/, 'expected a path that starts and ends with "/"'),
        z.literal(false),
      ])
      .optional()
      .describe('Reverse-proxy path prefix, stripped before forwarding; default /NAME/; false for none.'),
    hosts: z
      .array(hostPatternSchema)
      .default([])
      .describe('Host header values that select this route (requests keep their path).'),
    upstream: routeUpstreamSchema.default({}).describe('Per-route overrides of the upstream settings.'),
    observability: z
      .object({
        serverTiming: z
          .boolean()
          .optional()
          .describe('Send Server-Timing on this route (default: observability.serverTiming).'),
      })
      .strict()
      .default({})
      .describe('Per-route observability overrides.'),
    tracing: z
      .object({
        propagateUpstream: z
          .boolean()
          .optional()
          .describe(
            "Send the trace context (traceparent, tracestate) to this route's origin, as a child of sidecache's span (default: tracing.propagateUpstream).",
          ),
      })
      .strict()
      .default({})
      .describe('Per-route tracing overrides.'),
    cache: routeCachePolicySchema
      .default(DEFAULT_ROUTE_POLICY)
      .describe("The route's cache policy (docs/cache.md)."),
  })
  .strict();

export const tracingSchema = z
  .object({
    endpoint: httpUrlSchema
      .nullable()
      .default(null)
      .describe(
        "The collector's OTLP/HTTP endpoint, e.g. http://otel-collector:4318 (/v1/traces is added unless the URL ends with it); also OTEL_EXPORTER_OTLP_ENDPOINT. Tracing is on when set.",
      ),
    serviceName: z
      .string()
      .min(1)
      .default('sidecache')
      .describe('service.name of the exported spans; also OTEL_SERVICE_NAME.'),
    sampler: z
      .enum([
        'parentbased_traceidratio',
        'parentbased_always_on',
        'parentbased_always_off',
        'traceidratio',
        'always_on',
        'always_off',
      ])
      .default('parentbased_traceidratio')
      .describe(
        "Head sampling, named as OTEL_TRACES_SAMPLER: parent-based follows the caller's sampled flag.",
      ),
    ratio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe('Share of new traces sampled by the traceidratio samplers; also OTEL_TRACES_SAMPLER_ARG.'),
    alwaysSample: z
      .object({
        errors: z
          .boolean()
          .default(false)
          .describe('Also export exchanges that failed or answered 5xx, whatever head sampling said.'),
        slowMs: z
          .number()
          .int()
          .min(0)
          .nullable()
          .default(null)
          .describe('Also export exchanges that took at least this long, ms (null: off).'),
      })
      .strict()
      .default({ errors: false, slowMs: null })
      .describe('Tail sampling: decided on the finished exchange, which is when its spans are made.'),
    propagateUpstream: z
      .boolean()
      .default(false)
      .describe(
        "Send the trace context to origins (routes override it); when off, the client's traceparent and tracestate are removed from upstream requests.",
      ),
    queue: z
      .object({
        maxSpans: z
          .number()
          .int()
          .min(1)
          .default(2048)
          .describe('Spans waiting for export; more are dropped and counted.'),
        batchSpans: z.number().int().min(1).default(512).describe('Spans per export request at most.'),
        delayMs: z.number().int().min(1).default(2000).describe('Longest wait before a batch is sent.'),
        exportTimeoutMs: z
          .number()
          .int()
          .min(1)
          .default(10_000)
          .describe('Time limit of one export request.'),
      })
      .strict()
      .default({ maxSpans: 2048, batchSpans: 512, delayMs: 2000, exportTimeoutMs: 10_000 })
      .describe('The bounded export queue.'),
  })
  .strict();

export const tunnelSchema = z
  .object({
    idleTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(300_000)
      .describe(
        'A CONNECT tunnel (or upgraded connection) with no bytes either way for this long is closed.',
      ),
    ports: z
      .array(z.number().int().min(1).max(65535))
      .default([443])
      .describe("Ports CONNECT may reach on an allowed host; a route origin's own port is always allowed."),
  })
  .strict();

export const tlsSchema = z
  .object({
    caDir: z
      .string()
      .min(1)
      .default('.sidecache/ca')
      .describe(
        "Directory of sidecache's interception CA (ca.pem, ca-key.pem mode 0600), made on first use; relative to the working directory.",
      ),
    caValidityDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(3650)
      .describe('Validity of a newly made interception CA, days (an existing CA is kept as it is).'),
    caNameConstraints: z
      .boolean()
      .default(false)
      .describe(
        'Make a new CA with X.509 Name Constraints permitting only the hosts in "intercept" (a later addition needs a new CA).',
      ),
    leafValidityMs: z
      .number()
      .int()
      .min(60_000)
      .max(30 * 24 * 3600_000)
      .default(7 * 24 * 3600_000)
      .describe(
        'Validity of each minted leaf certificate, at most 30 days (renewed when a quarter is left).',
      ),
    leafCacheEntries: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Most leaf certificates kept in memory.'),
    handshakeTimeoutMs: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe('Time a client has to complete TLS with an intercepted tunnel.'),
  })
  .strict();

export const configSchema = z
  .object({
    listen: hostPortSchema.default('127.0.0.1:8080').describe('Proxy listener, HOST:PORT.'),
    admin: z
      .object({
        listen: hostPortSchema
          .default('127.0.0.1:9090')
          .describe('Admin listener (/metrics, /healthz, /readyz).'),
        enabled: z.boolean().default(true).describe('Start the admin listener.'),
        token: z
          .string()
          .min(16, 'expected at least 16 characters')
          .regex(/^[\x21-\x7e]+$/, 'expected visible ASCII characters only (no spaces)')
          .nullable()
          .default(null)
          .describe(
            'Bearer token every admin endpoint but /healthz and /readyz requires (Authorization: Bearer TOKEN); null: no token (env SIDECACHE_ADMIN_TOKEN).',
          ),
        allowedHosts: z
          .array(hostPatternSchema)
          .default([])
          .describe(
            'Host names the admin listener answers to besides IP addresses, localhost and the name in admin.listen ("sidecache", "*.svc.cluster.local"); any other Host gets 403 (DNS rebinding). /healthz and /readyz answer any Host.',
          ),
      })
      .strict()
      .default({ listen: '127.0.0.1:9090', enabled: true, token: null, allowedHosts: [] }),
    log: z
      .object({
        level: z.enum(LOG_LEVELS).default('info').describe('Log level.'),
        access: z.boolean().default(true).describe('Write one JSON access line per request.'),
        format: z
          .enum(['auto', 'json', 'pretty'])
          .default('auto')
          .describe(
            'json: one JSON object per line; pretty: readable lines; auto: pretty when stdout is a terminal, json otherwise (env SIDECACHE_LOG_FORMAT).',
          ),
      })
      .strict()
      .default({ level: 'info', access: true, format: 'auto' }),
    routes: z
      .array(routeSchema)
      .default([])
      .describe('Named origins, reachable by path prefix, Host or forward proxy.'),
    allow: z
      .array(allowEntrySchema)
      .default([])
      .describe(
        'Extra hosts the forward proxy and CONNECT may reach ("api.example.com", "*.example.com", "*"), and address blocks they may connect to ("10.0.0.0/8", "127.0.0.1", "::1/128"). A host here admits the name, not its address: one resolving to a private, loopback, link-local or reserved address is refused (guard_private_address) unless its block is listed. Route origins need no entry.',
      ),
    egress: egressSchema.default(egressSchema.parse({})).describe('Where outgoing connections may go.'),
    limits: limitsSchema.default(limitsSchema.parse({})).describe('Limits on what clients may send.'),
    upstream: upstreamSchema.default(upstreamSchema.parse({})),
    dns: dnsSchema
      .default(DNS_DEFAULTS)
      .describe('How upstream names are resolved and cached (docs/dns.md).'),
    cache: cacheSchema.default(cacheSchema.parse({})).describe('The shared cache (docs/cache.md).'),
    intercept: z
      .array(interceptEntrySchema)
      .default([])
      .describe(
        'Hosts whose CONNECT tunnels are decrypted (leaf from tls.caDir) and served like routes; others are tunnelled as-is. HOST or HOST:PORT ("api.example.test:8443"): with a port only that port is intercepted, and reachable. Each host must be a route origin or in allow. A named host no route covers is kept warm (upstream.warm) on its port or 443.',
      ),
    tunnel: tunnelSchema.default(tunnelSchema.parse({})),
    tls: tlsSchema.default(tlsSchema.parse({})),
    proxy: z
      .object({
        via: z.boolean().default(true).describe('Add a Via header to requests and responses.'),
        forwardedHeaders: z
          .boolean()
          .default(true)
          .describe('Add X-Forwarded-For and X-Forwarded-Proto to upstream requests.'),
        trustForwarded: z
          .union([z.boolean(), z.array(trustedClientSchema)])
          .default(false)
          .describe(
            'Clients whose Forwarded / X-Forwarded-* / X-Real-IP headers are kept: false (none: they are removed and sidecache sets its own X-Forwarded-For and -Proto), true (every client of the proxy listener), or address blocks ("10.0.0.0/8", "::1"). Kept values go to the origin and into the cache key. For a deployment behind another proxy.',
          ),
        maxUrlBytes: z.number().int().min(64).default(8192).describe('Longest request target accepted.'),
        acceptors: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(ACCEPTORS_DEFAULT)
          .describe(
            'Listening handles the event loop watches for the proxy listener: each loop iteration accepts up to this many new connections (libuv accepts one per handle), so clients connecting while the loop is saturated are not left waiting in the kernel. Above 1, a helper process runs for a moment at start to duplicate the socket. Env SIDECACHE_ACCEPTORS, flag --acceptors.',
          ),
        stripRequestHeaders: z
          .array(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'expected a header name'))
          .default([...DEFAULT_STRIPPED_REQUEST_HEADERS])
          .describe(
            'Request headers removed before forwarding: they change what origins answer without being in the cache key.',
          ),
        auth: proxyAuthSchema
          .default(proxyAuthSchema.parse({}))
          .describe('Proxy authentication (Basic), off by default.'),
      })
      .strict()
      .default({
        via: true,
        forwardedHeaders: true,
        trustForwarded: false,
        maxUrlBytes: 8192,
        acceptors: ACCEPTORS_DEFAULT,
        stripRequestHeaders: [...DEFAULT_STRIPPED_REQUEST_HEADERS],
        auth: proxyAuthSchema.parse({}),
      }),
    observability: z
      .object({
        serverTiming: z
          .boolean()
          .default(true)
          .describe('Send a Server-Timing header (dns, connect, tls, upstream, cache, total) on responses.'),
      })
      .strict()
      .default({ serverTiming: true }),
    advisor: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Run the policy advisor (docs/observability.md): observe origin answers on routes and suggest cache policies (/advice.json, sidecache report). false leaves it out of the pipeline: nothing is observed, /advice.json says it is off.',
          ),
      })
      .strict()
      .default({ enabled: true }),
    tracing: tracingSchema
      .default(tracingSchema.parse({}))
      .describe('OpenTelemetry traces (docs/observability.md); off by default.'),
    shutdown: z
      .object({
        graceMs: z
          .number()
          .int()
          .min(0)
          .default(10_000)
          .describe(
            'On SIGTERM/SIGINT, how long in-flight requests may take to finish; then whatever is still open is destroyed and the process exits 1.',
          ),
      })
      .strict()
      .default({ graceMs: 10_000 }),
  })
  .strict();

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = z.output<typeof upstreamSchema>;
export type WarmConfig = z.output<typeof warmSchema>;
export type RouteConfig = z.output<typeof routeSchema>;
export type TunnelConfig = z.output<typeof tunnelSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type EgressConfig = z.output<typeof egressSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type TracingConfig = z.output<typeof tracingSchema>;
