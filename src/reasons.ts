/**
 * Every exchange ends with exactly one reason (after Envoy's response code details). Reasons are
 * snake_case, come from this closed list, are logged, and become the `reason` metric label.
 */
export const REASONS = [
  'origin_response',
  'cache_hit',
  'cache_stale',
  'cache_revalidated',
  'cache_coalesced',
  'cache_only_if_cached',
  'bad_request',
  'uri_too_long',
  'no_route',
  'guard_host_not_allowed',
  'guard_private_address',
  'guard_port_not_allowed',
  'proxy_auth_required',
  'proxy_auth_throttled',
  'request_headers_too_large',
  'request_body_too_large',
  'request_timeout',
  'too_many_connections',
  'loop_detected',
  'method_not_supported',
  'dns_error',
  'upstream_connect_failed',
  'upstream_reset',
  'upstream_tls_error',
  'upstream_connect_timeout',
  'upstream_headers_timeout',
  'upstream_body_timeout',
  'upstream_protocol_error',
  'client_disconnected',
  'client_tls_failed',
  'tunnel_closed',
  'tunnel_idle_timeout',
  'shutting_down',
  'internal_error',
] as const;

export type Reason = (typeof REASONS)[number];
