/**
 * Targeted cache-control fields (RFC 9213): `CDN-Cache-Control` and fields such as
 * `Sidecache-Cache-Control` that address one cache or class of caches. Pure: no I/O, no clock.
 *
 * A cache has a target list of field names, most specific first. It uses the first field on that
 * list that is present with a valid, non-empty value, and then ignores `Cache-Control` and
 * `Expires` for its own freshness and storability (§2.1). A targeted field is a Structured Field
 * Dictionary (RFC 8941 §3.2); one that does not parse, or whose known directive has a value of the
 * wrong type (`max-age="60"`, `max-age=-1`, `no-store=5`), is ignored as if absent (§2.1), so
 * `Cache-Control` applies. Unknown directives are extensions and are ignored (§2.1). The fields are
 * left in the response: they are not hop-by-hop, and a cache further down may be their target.
 *
 * The rest of the cache reads freshness from `Cache-Control` and `Expires`, so the result is a
 * view of the response headers: `cache-control` replaced by the targeted directives written in
 * Cache-Control syntax, `expires` removed. The view is used for decisions only; clients get the
 * origin's headers.
 */
import { MAX_DELTA_SECONDS } from './cache-control.js';
import { firstValue, type HeaderSource } from './headers.js';

/** The targets sidecache answers to by default, most specific first. */
export const DEFAULT_TARGETED_FIELDS: readonly string[] = ['sidecache-cache-control', 'cdn-cache-control'];

// ------------------------------------------------------------- RFC 8941 Dictionary parsing

/** A bare item (RFC 8941 §3.3); tokens and byte sequences are kept apart from strings. */
export type BareItem =
  | { readonly type: 'integer'; readonly value: number }
  | { readonly type: 'decimal'; readonly value: number }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'token'; readonly value: string }
  | { readonly type: 'bytes'; readonly value: string }
  | { readonly type: 'boolean'; readonly value: boolean };

/** A dictionary member's value: an item or an inner list (parameters are parsed and dropped). */
export type MemberValue = BareItem | { readonly type: 'inner-list'; readonly items: readonly BareItem[] };

class SfParseError extends Error {}

/** Parses a Structured Field Dictionary; `null` when the value is not one (RFC 8941 §4.2). */
export function parseSfDictionary(input: string): Map<string, MemberValue> | null {
  try {
    return new SfParser(input).dictionary();
  } catch (err) {
    if (err instanceof SfParseError) return null;
    throw err;
  }
}

class SfParser {
  private i = 0;
  constructor(private readonly s: string) {}

  private fail(): never {
    throw new SfParseError(`invalid structured field at ${this.i}`);
  }
  private peek(): string {
    return this.s[this.i] ?? '';
  }
  private skipSp(): void {
    while (this.peek() === ' ') this.i++;
  }
  private skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
  }

  dictionary(): Map<string, MemberValue> {
    const out = new Map<string, MemberValue>();
    this.skipSp();
    if (this.i === this.s.length) return out;
    for (;;) {
      const key = this.key();
      let value: MemberValue;
      if (this.peek() === '=') {
        this.i++;
        value = this.itemOrInnerList();
      } else {
        value = { type: 'boolean', value: true };
        this.parameters();
      }
      out.delete(key); // the last occurrence wins (§4.2.2), and takes the last position
      out.set(key, value);
      this.skipOws();
      if (this.i === this.s.length) return out;
      if (this.peek() !== ',') this.fail();
      this.i++;
      this.skipOws();
      if (this.i === this.s.length) this.fail(); // trailing comma
    }
  }

  private key(): string {
    const start = this.i;
    if (!/[a-z*]/.test(this.peek())) this.fail();
    this.i++;
    while (/[a-z0-9_\-.*]/.test(this.peek())) this.i++;
    return this.s.slice(start, this.i);
  }

  private itemOrInnerList(): MemberValue {
    if (this.peek() === '(') return this.innerList();
    const item = this.bareItem();
    this.parameters();
    return item;
  }

  private innerList(): MemberValue {
    this.i++; // (
    const items: BareItem[] = [];
    for (;;) {
      this.skipSp();
      if (this.peek() === ')') {
        this.i++;
        this.parameters();
        return { type: 'inner-list', items };
      }
      items.push(this.bareItem());
      this.parameters();
      const c = this.peek();
      if (c !== ' ' && c !== ')') this.fail();
    }
  }

  private parameters(): void {
    while (this.peek() === ';') {
      this.i++;
      this.skipSp();
      this.key();
      if (this.peek() === '=') {
        this.i++;
        this.bareItem();
      }
    }
  }

  private bareItem(): BareItem {
    const c = this.peek();
    if (c === '-' || /[0-9]/.test(c)) return this.number();
    if (c === '"') return this.string();
    if (c === '*' || /[A-Za-z]/.test(c)) return this.token();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    return this.fail();
  }

  private number(): BareItem {
    const m = /^-?(\d+)(\.(\d*))?/.exec(this.s.slice(this.i));
    if (m === null) return this.fail();
    const [all, intPart, dot, frac] = m;
    if (dot === undefined) {
      if (intPart!.length > 15) this.fail();
      this.i += all.length;
      return { type: 'integer', value: Number(all) };
    }
    if (intPart!.length > 12 || frac === undefined || frac.length < 1 || frac.length > 3) this.fail();
    this.i += all.length;
    return { type: 'decimal', value: Number(all) };
  }

  private string(): BareItem {
    this.i++; // "
    let out = '';
    for (;;) {
      if (this.i >= this.s.length) this.fail();
      const c = this.s[this.i++]!;
      if (c === '\\') {
        const n = this.s[this.i++];
        if (n !== '"' && n !== '\\') this.fail();
        out += n;
      } else if (c === '"') {
        return { type: 'string', value: out };
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail();
        out += c;
      }
    }
  }

  private token(): BareItem {
    const m = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*/.exec(this.s.slice(this.i));
    if (m === null) return this.fail();
    this.i += m[0].length;
    return { type: 'token', value: m[0] };
  }

  private bytes(): BareItem {
    const m = /^:([A-Za-z0-9+/=]*):/.exec(this.s.slice(this.i));
    if (m === null) return this.fail();
    this.i += m[0].length;
    return { type: 'bytes', value: m[1]! };
  }

  private boolean(): BareItem {
    const c = this.s[this.i + 1];
    if (c !== '0' && c !== '1') this.fail();
    this.i += 2;
    return { type: 'boolean', value: c === '1' };
  }
}

// ------------------------------------------------------------- directives from a targeted field

/** Directives whose value is a delta-seconds: an sf-integer ≥ 0 in a targeted field. */
const SECONDS = new Set(['max-age', 's-maxage', 'stale-while-revalidate', 'stale-if-error']);
/** Directives that take no value: Boolean true (`?0` means absent). */
const FLAGS = new Set([
  'no-store',
  'public',
  'must-revalidate',
  'proxy-revalidate',
  'must-understand',
  'immutable',
  'no-transform',
]);
/** Directives that are bare, or qualified by field names (a String, as in Cache-Control). */
const QUALIFIED = new Set(['no-cache', 'private']);

/**
 * The directives of one targeted field value in Cache-Control syntax, or `null` when the field
 * must be ignored: absent, empty, not a Dictionary, or a known directive of the wrong type.
 */
export function targetedDirectives(value: string | undefined): string | null {
  if (value === undefined || value.trim() === '') return null;
  const dict = parseSfDictionary(value);
  if (dict === null || dict.size === 0) return null;
  const parts: string[] = [];
  for (const [name, v] of dict) {
    if (SECONDS.has(name)) {
      if (v.type !== 'integer' || v.value < 0) return null;
      parts.push(`${name}=${Math.min(v.value, MAX_DELTA_SECONDS)}`);
    } else if (FLAGS.has(name)) {
      if (v.type !== 'boolean') return null;
      if (v.value) parts.push(name);
    } else if (QUALIFIED.has(name)) {
      if (v.type === 'boolean') {
        if (v.value) parts.push(name);
      } else if (v.type === 'string') {
        parts.push(`${name}="${v.value.replace(/["\\]/g, '')}"`);
      } else {
        return null;
      }
    }
    // Anything else is an extension directive this cache does not implement (§2.1: ignored).
  }
  return parts.join(', ');
}

/** Which field decided: the targeted field's name, or `null` for Cache-Control. */
export interface PolicyView {
  readonly headers: HeaderSource;
  readonly field: string | null;
}

/**
 * The headers this cache judges a response by: the first valid targeted field on `targets`
 * replaces Cache-Control, and Expires no longer counts (RFC 9213 §2.1). When no targeted field
 * applies, `headers` itself is returned (same object).
 */
export function policyView(headers: HeaderSource, targets: readonly string[]): PolicyView {
  for (const name of targets) {
    if (headers[name] === undefined) continue;
    const v = headers[name];
    const value = Array.isArray(v) ? v.join(', ') : firstValue(headers, name);
    const cc = targetedDirectives(value);
    if (cc === null) continue;
    return { headers: { ...headers, 'cache-control': cc, expires: undefined }, field: name };
  }
  return { headers, field: null };
}
