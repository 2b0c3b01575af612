/**
 * Cache-Control parsing (RFC 9111 §5.2). Pure: no I/O, no clock.
 *
 * Directive names are case-insensitive (§5.2); arguments may be tokens or quoted strings, and
 * recipients accept both forms for every directive (§5.2). When a directive appears more than once
 * the first occurrence wins (§4.2.1 allows "first occurrence" or "stale"). Multiple field lines
 * are combined as one list (RFC 9110 §5.3).
 */

/** Header value as node gives it: absent, one line, or several lines. */
export type FieldValue = string | number | readonly string[] | undefined;

/** Raw directives: lower-case name → argument (unquoted) or `true` when there is none. */
export type Directives = ReadonlyMap<string, string | true>;

/** The largest delta-seconds we keep (§1.2.2: 2^31 when a value overflows). */
export const MAX_DELTA_SECONDS = 2_147_483_648;

/** Joins the lines of a list-based field into one string. */
export function joinField(value: FieldValue): string {
  if (value === undefined) return '';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return value;
  return value.join(', ');
}

/** Splits a comma-separated list, respecting quoted strings (RFC 9110 §5.6.1 and §5.6.4). */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < value.length) current += value[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (c === ',') {
      if (current.trim() !== '') out.push(current.trim());
      current = '';
    } else {
      current += c;
    }
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

function unquote(s: string): string {
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
    return s.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  return s;
}

/** Parses Cache-Control into lower-case directive names; first occurrence wins. */
export function parseDirectives(value: FieldValue): Directives {
  const out = new Map<string, string | true>();
  for (const item of splitList(joinField(value))) {
    const eq = item.indexOf('=');
    const name = (eq === -1 ? item : item.slice(0, eq)).trim().toLowerCase();
    if (name === '' || out.has(name)) continue;
    out.set(name, eq === -1 ? true : unquote(item.slice(eq + 1).trim()));
  }
  return out;
}

/**
 * A delta-seconds argument (§1.2.2): digits only. Returns `undefined` when the directive is
 * absent and `null` when it is present but invalid (no argument, sign, fraction, letters).
 */
export function deltaSeconds(d: Directives, name: string): number | null | undefined {
  const v = d.get(name);
  if (v === undefined) return undefined;
  if (v === true || !/^\d+$/.test(v)) return null;
  const n = Number(v);
  return Math.min(n, MAX_DELTA_SECONDS);
}

/** A directive that is either bare (`true`) or carries a list of field names (qualified form). */
function fieldNames(d: Directives, name: string): true | readonly string[] | false {
  const v = d.get(name);
  if (v === undefined) return false;
  if (v === true) return true;
  const names = splitList(v).map((s) => s.toLowerCase());
  return names.length === 0 ? true : names;
}

/** Response directives a shared cache acts on (§5.2.2, RFC 5861). Durations in seconds. */
export interface ResponseDirectives {
  readonly noStore: boolean;
  /** `true` for bare no-cache; a list for the qualified form (§5.2.2.4). */
  readonly noCache: true | readonly string[] | false;
  /** `true` for bare private; a list for the qualified form (§5.2.2.7). */
  readonly private: true | readonly string[] | false;
  readonly public: boolean;
  readonly mustRevalidate: boolean;
  readonly proxyRevalidate: boolean;
  readonly mustUnderstand: boolean;
  readonly immutable: boolean;
  /** Invalid values count as 0 (stale), the most restrictive reading. */
  readonly maxAge?: number;
  readonly sMaxAge?: number;
  /** Invalid values are ignored. */
  readonly staleWhileRevalidate?: number;
  readonly staleIfError?: number;
}

/**
 * Parsed Cache-Control values of origin responses, by the field's text: an origin sends the same
 * few values over and over, and parsing one costs a Map, a split list and their strings per
 * response. Results are frozen (shared). Bounded: cleared when full; long values are not kept.
 */
const RESPONSE_DIRECTIVES = new Map<string, ResponseDirectives>();
const RESPONSE_DIRECTIVES_MAX = 256;
const RESPONSE_DIRECTIVES_MAX_CHARS = 256;

export function parseResponseDirectives(value: FieldValue): ResponseDirectives {
  if (typeof value !== 'string') return parseResponseDirectivesOnce(value);
  const known = RESPONSE_DIRECTIVES.get(value);
  if (known !== undefined) return known;
  const parsed = Object.freeze(parseResponseDirectivesOnce(value));
  if (value.length <= RESPONSE_DIRECTIVES_MAX_CHARS) {
    if (RESPONSE_DIRECTIVES.size >= RESPONSE_DIRECTIVES_MAX) RESPONSE_DIRECTIVES.clear();
    RESPONSE_DIRECTIVES.set(value, parsed);
  }
  return parsed;
}

function parseResponseDirectivesOnce(value: FieldValue): ResponseDirectives {
  const d = parseDirectives(value);
  const maxAge = deltaSeconds(d, 'max-age');
  const sMaxAge = deltaSeconds(d, 's-maxage');
  const swr = deltaSeconds(d, 'stale-while-revalidate');
  const sie = deltaSeconds(d, 'stale-if-error');
  // Optional members are added, not spread in: a conditional spread in a literal costs several
  // hundred ns on Node 20, and this runs for every origin response.
  const out: { -readonly [K in keyof ResponseDirectives]: ResponseDirectives[K] } = {
    noStore: d.has('no-store'),
    noCache: fieldNames(d, 'no-cache'),
    private: fieldNames(d, 'private'),
    public: d.has('public'),
    mustRevalidate: d.has('must-revalidate'),
    proxyRevalidate: d.has('proxy-revalidate'),
    mustUnderstand: d.has('must-understand'),
    immutable: d.has('immutable'),
  };
  if (maxAge !== undefined) out.maxAge = maxAge ?? 0;
  if (sMaxAge !== undefined) out.sMaxAge = sMaxAge ?? 0;
  if (swr != null) out.staleWhileRevalidate = swr;
  if (sie != null) out.staleIfError = sie;
  return out;
}

/** Request directives (§5.2.1, RFC 5861 §4). Durations in seconds. */
export interface RequestDirectives {
  readonly noCache: boolean;
  readonly noStore: boolean;
  readonly onlyIfCached: boolean;
  readonly maxAge?: number;
  /** `Infinity` when max-stale has no argument (§5.2.1.2). */
  readonly maxStale?: number;
  readonly minFresh?: number;
  readonly staleIfError?: number;
}

/**
 * Request directives. `Pragma: no-cache` counts as `no-cache` when the request has no
 * Cache-Control (RFC 9111 §5.4 leaves this to caches; it is what HTTP/1.0 clients send).
 * Invalid arguments make a directive void.
 */
export function parseRequestDirectives(cacheControl: FieldValue, pragma?: FieldValue): RequestDirectives {
  // Most requests carry neither field.
  if (cacheControl === undefined && pragma === undefined) return NO_REQUEST_DIRECTIVES;
  const d = parseDirectives(cacheControl);
  const pragmaNoCache =
    cacheControl === undefined && splitList(joinField(pragma)).some((p) => p.toLowerCase() === 'no-cache');
  const maxAge = deltaSeconds(d, 'max-age');
  const minFresh = deltaSeconds(d, 'min-fresh');
  const sie = deltaSeconds(d, 'stale-if-error');
  const rawMaxStale = d.get('max-stale');
  const maxStale = rawMaxStale === true ? Number.POSITIVE_INFINITY : deltaSeconds(d, 'max-stale');
  const out: { -readonly [K in keyof RequestDirectives]: RequestDirectives[K] } = {
    noCache: d.has('no-cache') || pragmaNoCache,
    noStore: d.has('no-store'),
    onlyIfCached: d.has('only-if-cached'),
  };
  if (maxAge != null) out.maxAge = maxAge;
  if (maxStale != null) out.maxStale = maxStale;
  if (minFresh != null) out.minFresh = minFresh;
  if (sie != null) out.staleIfError = sie;
  return out;
}

const NO_REQUEST_DIRECTIVES: RequestDirectives = Object.freeze({
  noCache: false,
  noStore: false,
  onlyIfCached: false,
});
