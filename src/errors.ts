/**
 * Every error sidecache raises on purpose. Each carries a stable `code` (listed in docs/ERRORS.md),
 * the HTTP `status` a client sees when it ends an exchange, and the exchange `reason` it maps to.
 * `front/` is the only place that turns one of these into a reply.
 */
import type { Reason } from './reasons.js';

export type ErrorCode =
  | 'SC_ERR_CONFIG'
  | 'SC_ERR_BAD_REQUEST'
  | 'SC_ERR_URI_TOO_LONG'
  | 'SC_ERR_NO_ROUTE'
  | 'SC_ERR_EGRESS_DENIED'
  | 'SC_ERR_LOOP_DETECTED'
  | 'SC_ERR_HEADERS_TOO_LARGE'
  | 'SC_ERR_BODY_TOO_LARGE'
  | 'SC_ERR_REQUEST_TIMEOUT'
  | 'SC_ERR_TOO_MANY_CONNECTIONS'
  | 'SC_ERR_PROXY_AUTH_REQUIRED'
  | 'SC_ERR_PROXY_AUTH_THROTTLED'
  | 'SC_ERR_METHOD_NOT_SUPPORTED'
  | 'SC_ERR_DNS'
  | 'SC_ERR_UPSTREAM_CONNECT'
  | 'SC_ERR_UPSTREAM_RESET'
  | 'SC_ERR_UPSTREAM_TLS'
  | 'SC_ERR_UPSTREAM_CONNECT_TIMEOUT'
  | 'SC_ERR_UPSTREAM_HEADERS_TIMEOUT'
  | 'SC_ERR_UPSTREAM_BODY_TIMEOUT'
  | 'SC_ERR_UPSTREAM_PROTOCOL'
  | 'SC_ERR_CLIENT_ABORTED'
  | 'SC_ERR_SHUTTING_DOWN'
  | 'SC_ERR_INTERNAL'
  | 'SC_ERR_ADMIN_HOST_NOT_ALLOWED'
  | 'SC_ERR_ADMIN_CROSS_SITE';

export interface SidecacheErrorOptions {
  cause?: unknown;
  /** Extra fields for the JSON error body and the log line (e.g. `upstream`, `dnsCode`). */
  detail?: Record<string, string | number>;
}

export class SidecacheError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly reason: Reason;
  readonly detail: Record<string, string | number>;

  constructor(
    code: ErrorCode,
    status: number,
    reason: Reason,
    message: string,
    opts: SidecacheErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.reason = reason;
    this.detail = opts.detail ?? {};
  }
}

/** A configuration that cannot be used. The message names the key path, the value and what was expected. */
export class ConfigError extends SidecacheError {
  readonly issues: readonly string[];
  constructor(issues: readonly string[], opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_CONFIG', 500, 'internal_error', issues.join('\n'), opts);
    this.issues = issues;
  }
}

export class BadRequestError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_BAD_REQUEST', 400, 'bad_request', message, opts);
  }
}

export class UriTooLongError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_URI_TOO_LONG', 414, 'uri_too_long', message, opts);
  }
}

export class NoRouteError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_NO_ROUTE', 403, 'no_route', message, opts);
  }
}

export class EgressDeniedError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_EGRESS_DENIED', 403, 'guard_host_not_allowed', message, opts);
  }
}

/**
 * The egress policy refused the address a name resolved to (or an IP literal): private, loopback,
 * link-local, CGNAT, multicast, reserved... and not in `allow`. Raised inside the lookup handed to
 * the connectors, so the address checked is the address connected to (no DNS rebinding).
 */
export class PrivateAddressError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_EGRESS_DENIED', 403, 'guard_private_address', message, opts);
  }
}

/** An allowed host on a port outside `egress.ports` (and not a route origin's own port). */
export class PortNotAllowedError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_EGRESS_DENIED', 403, 'guard_port_not_allowed', message, opts);
  }
}

export class HeadersTooLargeError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_HEADERS_TOO_LARGE', 431, 'request_headers_too_large', message, opts);
  }
}

export class BodyTooLargeError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_BODY_TOO_LARGE', 413, 'request_body_too_large', message, opts);
  }
}

export class RequestTimeoutError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_REQUEST_TIMEOUT', 408, 'request_timeout', message, opts);
  }
}

export class TooManyConnectionsError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_TOO_MANY_CONNECTIONS', 503, 'too_many_connections', message, opts);
  }
}

export class ProxyAuthRequiredError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_PROXY_AUTH_REQUIRED', 407, 'proxy_auth_required', message, opts);
  }
}

/** Too many wrong proxy credentials from one client address: held back; `retryAfter` in seconds. */
export class ProxyAuthThrottledError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_PROXY_AUTH_THROTTLED', 429, 'proxy_auth_throttled', message, opts);
  }
}

export class LoopDetectedError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_LOOP_DETECTED', 508, 'loop_detected', message, opts);
  }
}

export class MethodNotSupportedError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_METHOD_NOT_SUPPORTED', 501, 'method_not_supported', message, opts);
  }
}

export class DnsError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_DNS', 502, 'dns_error', message, opts);
  }
}

export class UpstreamConnectError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_CONNECT', 502, 'upstream_connect_failed', message, opts);
  }
}

export class UpstreamResetError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_RESET', 502, 'upstream_reset', message, opts);
  }
}

export class UpstreamTlsError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_TLS', 502, 'upstream_tls_error', message, opts);
  }
}

export class UpstreamConnectTimeoutError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_CONNECT_TIMEOUT', 504, 'upstream_connect_timeout', message, opts);
  }
}

export class UpstreamHeadersTimeoutError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_HEADERS_TIMEOUT', 504, 'upstream_headers_timeout', message, opts);
  }
}

export class UpstreamBodyTimeoutError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_BODY_TIMEOUT', 504, 'upstream_body_timeout', message, opts);
  }
}

export class UpstreamProtocolError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_UPSTREAM_PROTOCOL', 502, 'upstream_protocol_error', message, opts);
  }
}

export class ClientAbortedError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_CLIENT_ABORTED', 499, 'client_disconnected', message, opts);
  }
}

export class ShuttingDownError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_SHUTTING_DOWN', 503, 'shutting_down', message, opts);
  }
}

export class InternalError extends SidecacheError {
  constructor(message: string, opts: SidecacheErrorOptions = {}) {
    super('SC_ERR_INTERNAL', 500, 'internal_error', message, opts);
  }
}

/** Every code with its class, so docs/ERRORS.md can be checked against this file. */
export const ERROR_CODES: readonly ErrorCode[] = [
  'SC_ERR_CONFIG',
  'SC_ERR_BAD_REQUEST',
  'SC_ERR_URI_TOO_LONG',
  'SC_ERR_NO_ROUTE',
  'SC_ERR_EGRESS_DENIED',
  'SC_ERR_LOOP_DETECTED',
  'SC_ERR_HEADERS_TOO_LARGE',
  'SC_ERR_BODY_TOO_LARGE',
  'SC_ERR_REQUEST_TIMEOUT',
  'SC_ERR_TOO_MANY_CONNECTIONS',
  'SC_ERR_PROXY_AUTH_REQUIRED',
  'SC_ERR_PROXY_AUTH_THROTTLED',
  'SC_ERR_METHOD_NOT_SUPPORTED',
  'SC_ERR_DNS',
  'SC_ERR_UPSTREAM_CONNECT',
  'SC_ERR_UPSTREAM_RESET',
  'SC_ERR_UPSTREAM_TLS',
  'SC_ERR_UPSTREAM_CONNECT_TIMEOUT',
  'SC_ERR_UPSTREAM_HEADERS_TIMEOUT',
  'SC_ERR_UPSTREAM_BODY_TIMEOUT',
  'SC_ERR_UPSTREAM_PROTOCOL',
  'SC_ERR_CLIENT_ABORTED',
  'SC_ERR_SHUTTING_DOWN',
  'SC_ERR_INTERNAL',
  'SC_ERR_ADMIN_HOST_NOT_ALLOWED',
  'SC_ERR_ADMIN_CROSS_SITE',
];

/** Any thrown value as a SidecacheError: itself, or an InternalError that keeps it as the cause. */
export function toSidecacheError(err: unknown): SidecacheError {
  if (err instanceof SidecacheError) return err;
  return new InternalError(err instanceof Error ? err.message : String(err), { cause: err });
}
