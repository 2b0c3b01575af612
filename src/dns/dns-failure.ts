/**
 * DNS error codes, and the two error shapes a lookup fails with: a `DnsError` (SC_ERR_DNS, with
 * `detail.dnsCode` and `detail.host`) for the promise API, and a plain Error whose `code` is the DNS code
 * for `net`/undici's `lookup` callback, carrying the `DnsError` as its `cause`.
 */
import { DnsError } from '../errors.js';

/** Answers that say the name or the record type does not exist; they are cached (negative caching). */
export const NEGATIVE_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'ENODATA']);

/** Codes that only a caller's mistake produces; no point serving stale for them. */
const NOT_A_SERVER_FAILURE: ReadonlySet<string> = new Set(['EBADNAME', 'EBADFAMILY', 'ECANCELLED']);

export function isNegativeCode(code: string): boolean {
  return NEGATIVE_CODES.has(code);
}

/** A failure of the nameservers (timeout, SERVFAIL, refused, unreachable...): a stale answer may stand in. */
export function isServerFailureCode(code: string): boolean {
  return !NEGATIVE_CODES.has(code) && !NOT_A_SERVER_FAILURE.has(code);
}

/**
 * The resolver could not reach its server (DoH: the TCP connect, TLS or HTTP exchange failed);
 * `code` is that failure's (ECONNREFUSED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) and the message says
 * which server and why, so that the lookup's error can name the cause.
 */
export class DnsTransportError extends Error {
  override readonly name = 'DnsTransportError';
  constructor(
    readonly code: string,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts);
  }
}

export function dnsError(host: string, dnsCode: string, cause?: unknown): DnsError {
  const why = cause instanceof DnsTransportError ? ` (${cause.message})` : '';
  return new DnsError(`DNS lookup of ${host} failed: ${dnsCode}${why}`, {
    detail: { dnsCode, host },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The DNS code of whatever a resolver threw (`code` of a Node or tangerine error), `EUNKNOWN` if none. */
export function dnsCodeOf(err: unknown): string {
  if (err instanceof DnsError) return String(err.detail.dnsCode ?? 'EUNKNOWN');
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code !== '' ? code : 'EUNKNOWN';
}

export interface LookupError extends Error {
  /** The DNS code (ENOTFOUND, ETIMEOUT, ...), as `net` and undici expect on a lookup error. */
  code: string;
  hostname: string;
  syscall: 'lookup';
  cause: DnsError;
}

/** The error handed to a `lookup` callback: `code` is the DNS code, `cause` the `DnsError`. */
export function lookupErrorFrom(err: DnsError): LookupError {
  const host = String(err.detail.host ?? '');
  const code = String(err.detail.dnsCode ?? 'EUNKNOWN');
  const e = new Error(`lookup ${code} ${host}`, { cause: err }) as LookupError;
  e.code = code;
  e.hostname = host;
  e.syscall = 'lookup';
  return e;
}

/**
 * Recovers the `DnsError` from an error undici (or `net`) reported for a connect, by walking the `cause`
 * chain; undefined when the failure was not a lookup made by this module.
 */
export function dnsErrorFrom(err: unknown): DnsError | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && e !== null && typeof e === 'object'; depth++) {
    if (e instanceof DnsError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
