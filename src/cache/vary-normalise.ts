/**
 * Vary matching by meaning (RFC 9111 §4.1: a cache MAY normalise selecting fields). Pure.
 *
 * Every field named by a stored response's `Vary` is compared in a normalised form: field lines
 * combined, list whitespace removed (any field). Fields in the table below are also read by their
 * semantics: `Accept-Language` and `Accept-Encoding` as weighted lists (RFC 9110 §12.4.2), so
 * case, member order within one weight, whitespace and the spelling of weights (`q=1`, `q=1.000`,
 * none) do not make a difference.
 *
 * A field may also have a `selects` rule (RFC 9110 §12.5.4 selection): a stored response chosen
 * for one value may answer another value that would certainly choose it too. For
 * `Accept-Language`: the stored response's `Content-Language` is one tag, and it is exactly the
 * single most preferred language of the new request (`fr;q=0.5, de;q=1.0` takes a stored `de`
 * answer). For `Accept-Encoding`: the request accepts the stored response's content coding.
 *
 * A value that does not parse as its field's grammar (a bad weight, a member listed twice) is
 * compared by bytes after the generic normalisation, and never selects: the cautious reading.
 * Add a field by adding a row to NORMALISERS.
 */
import { joinField, splitList } from './cache-control.js';
import type { HeaderSource } from './headers.js';

export interface FieldNormaliser {
  /** A canonical form of one (combined) field value: equal forms select the same representation. */
  normalise(value: string): string;
  /**
   * Whether the stored response (its headers) is what the origin would select for a request with
   * this value of the field (present), though it was stored for another value.
   */
  selects?(requestValue: string, storedHeaders: HeaderSource): boolean;
}

/** Normalises any request field (§4.1): lines combined, whitespace around list members removed. */
export function normaliseFieldValue(value: HeaderSource[string]): string | null {
  if (value === undefined) return null;
  return genericForm(joinField(value));
}

function genericForm(value: string): string {
  return value
    .split(',')
    .map((s) => s.trim().replace(/\s+/g, ' '))
    .join(',');
}

/** One member of a weighted list: a lower-case token and its weight in thousandths. */
interface Weighted {
  readonly token: string;
  readonly q: number;
}

/** A `qvalue` (RFC 9110 §12.4.2): `0`, `1`, `0.xxx`, `1.000`. In thousandths; null when invalid. */
function parseQ(raw: string): number | null {
  const m = /^(?:0(?:\.(\d{0,3}))?|1(?:\.0{0,3})?)$/.exec(raw);
  if (m === null) return null;
  if (raw.startsWith('1')) return 1000;
  return Number((m[1] ?? '').padEnd(3, '0'));
}

/**
 * A weighted list (`token;q=0.5, other`), tokens lower-cased; null when a member has parameters
 * other than one `q`, a bad weight, an empty or malformed token, or appears twice (the meaning of
 * a duplicate is unclear: compare by bytes instead).
 */
export function parseWeightedList(value: string, token: RegExp): Weighted[] | null {
  const out: Weighted[] = [];
  const seen = new Set<string>();
  for (const member of splitList(value)) {
    const parts = member.split(';');
    const name = parts[0]!.trim().toLowerCase();
    if (!token.test(name) || seen.has(name)) return null;
    seen.add(name);
    let q = 1000;
    if (parts.length > 2) return null;
    if (parts.length === 2) {
      const p = /^\s*q\s*=\s*(\S+)\s*$/i.exec(parts[1]!);
      const parsed = p === null ? null : parseQ(p[1]!);
      if (parsed === null) return null;
      q = parsed;
    }
    out.push({ token: name, q });
  }
  return out;
}

/** Heaviest first; tokens of one weight in code-point order (their order carries no meaning). */
function canonicalList(list: readonly Weighted[]): string {
  return [...list]
    .sort((a, b) => b.q - a.q || (a.token < b.token ? -1 : a.token > b.token ? 1 : 0))
    .map((m) => (m.q === 1000 ? m.token : `${m.token};q=${formatQ(m.q)}`))
    .join(',');
}

function formatQ(thousandths: number): string {
  if (thousandths === 0) return '0';
  return `0.${String(thousandths).padStart(3, '0').replace(/0+$/, '')}`;
}

/** The one heaviest member with a weight above 0, or null (none, or a tie at the top). */
function soleFavourite(list: readonly Weighted[]): Weighted | null {
  let best: Weighted | null = null;
  let tie = false;
  for (const m of list) {
    if (best === null || m.q > best.q) {
      best = m;
      tie = false;
    } else if (m.q === best.q) tie = true;
  }
  return best === null || tie || best.q === 0 ? null : best;
}

/** A language range (RFC 4647 §2.1): `*` or alphanumeric subtags joined by `-`. */
const LANGUAGE_RANGE = /^(?:\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*)$/;
/** A content coding token (RFC 9110 §8.4.1), or `*`. */
const CODING = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

function weightedNormaliser(token: RegExp): (value: string) => string {
  return (value) => {
    const list = parseWeightedList(value, token);
    return list === null ? genericForm(value) : canonicalList(list);
  };
}

const acceptLanguage: FieldNormaliser = {
  normalise: weightedNormaliser(LANGUAGE_RANGE),
  selects(requestValue, storedHeaders) {
    const stored = storedHeaders['content-language'];
    if (stored === undefined) return false;
    const tags = splitList(joinField(stored));
    if (tags.length !== 1) return false;
    const tag = tags[0]!.trim().toLowerCase();
    if (tag === '*' || !LANGUAGE_RANGE.test(tag)) return false;
    const list = parseWeightedList(requestValue, LANGUAGE_RANGE);
    if (list === null) return false;
    return soleFavourite(list)?.token === tag;
  },
};

/** Whether a parsed Accept-Encoding takes `coding` (identity when null), RFC 9110 §12.5.3. */
function takesCoding(list: readonly Weighted[], coding: string | null): boolean {
  const name = coding ?? 'identity';
  const exact = list.find((m) => m.token === name || (name === 'gzip' && m.token === 'x-gzip'));
  if (exact !== undefined) return exact.q > 0;
  const star = list.find((m) => m.token === '*');
  if (star !== undefined) return star.q > 0;
  // identity is acceptable unless excluded (above); other codings only when listed.
  return coding === null;
}

const acceptEncoding: FieldNormaliser = {
  normalise: weightedNormaliser(CODING),
  selects(requestValue, storedHeaders) {
    const list = parseWeightedList(requestValue, CODING);
    if (list === null) return false;
    const codings = splitList(joinField(storedHeaders['content-encoding']))
      .map((c) => c.trim().toLowerCase())
      .filter((c) => c !== '' && c !== 'identity');
    if (codings.length > 1) return false;
    return takesCoding(list, codings[0] ?? null);
  },
};

/** Per-field normalisers, by lower-case field name. */
export const NORMALISERS: ReadonlyMap<string, FieldNormaliser> = new Map([
  ['accept-language', acceptLanguage],
  ['accept-encoding', acceptEncoding],
]);

/** A request field's value as Vary matching compares it (null: absent). */
export function varyValue(field: string, value: HeaderSource[string]): string | null {
  const generic = normaliseFieldValue(value);
  if (generic === null) return null;
  const n = NORMALISERS.get(field);
  return n === undefined ? generic : n.normalise(joinField(value));
}

/**
 * Whether one selecting field of a request matches a stored response: the same normalised value,
 * or the field's selection rule takes the stored response.
 */
export function fieldMatches(
  field: string,
  storedValue: string | null,
  requestValue: HeaderSource[string],
  storedHeaders: HeaderSource | undefined,
): boolean {
  // Fast path: the generic form equal to the stored one (canonical forms are fixed points of it).
  const generic = normaliseFieldValue(requestValue);
  if (generic === storedValue) return true;
  const n = NORMALISERS.get(field);
  if (n === undefined || generic === null) return false;
  if (n.normalise(joinField(requestValue)) === storedValue) return true;
  if (n.selects === undefined || storedHeaders === undefined) return false;
  return n.selects(joinField(requestValue), storedHeaders);
}
