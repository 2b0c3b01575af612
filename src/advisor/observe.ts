/**
 * The policy advisor's observation (docs/observability.md, "Policy advisor"): for every answer
 * that came from the origin on a route (not from the cache), what the traffic would have allowed
 * a cache to do. Recorded per route and path template (path-template.ts), in fixed-size records:
 *
 * - calls, upstream time and body bytes;
 * - per cache key (URL + credential hash, in a fixed table of KEY_SLOTS slots per template: a key
 *   whose slot another key took is forgotten), whether the body was byte-identical to the
 *   previous one (a 64-bit hash of it, BodyHash), how long a body stayed unchanged and the
 *   shortest time a body was seen unchanged before it changed;
 * - how many distinct credentials called (a set of at most CREDENTIAL_SLOTS 32-bit hashes under a
 *   per-process random seed: a credential is never stored);
 * - unsafe requests (POST, PUT, PATCH, DELETE, …) on the template, and whether a body change
 *   followed one on the same URL (sidecache invalidates the URL then, RFC 9111 §4.4);
 * - what the origin's headers said: no-store, no-cache, private, validators, explicit freshness,
 *   Set-Cookie, and whether the cache stored the answer.
 *
 * Cost on the pass-through path: no stream of its own. The stage puts a Probe on each exchange
 * on a route (Exchange.bodyTap); upstream/ feeds it the origin's body chunks where it already
 * counts them, and for a GET it hashes them (not cryptographic: a 64-bit multiply-rotate hash over
 * the body's 32-bit words, chunk boundaries aside) up to `hashCapBytes`. The observer does a
 * memoised template lookup, two Map lookups and one or two FNV-1a string hashes. A cache hit costs
 * the Probe and one property check; a hit-memo hit the check. `advisor.enabled: false` leaves the
 * stage and the observer out.
 */
import { randomInt } from 'node:crypto';
import { endianness } from 'node:os';
import { credentialParts } from '../cache/key.js';
import type { BodyTap, ExchangeEnd, Reply, Stage } from '../exchange.js';
import { fnv1a } from '../hash.js';
import { pathTemplate } from './path-template.js';

/** Cache keys remembered per template (a fixed table; colliding keys replace each other). */
export const KEY_SLOTS = 64;
/** The key table's columns (TemplateRecord.slots): one row of ROW numbers per slot. */
const K_KEY = 0;
const K_URL = 1;
const K_HI = 2;
const K_LO = 3;
const K_SINCE = 4;
const K_LAST = 5;
const K_WRITE = 6;
const ROW = 7;
/** Distinct credentials counted per template; more are reported as "at least this many". */
export const CREDENTIAL_SLOTS = 16;
/**
 * Upper bounds (ms) of the buckets for the time between two calls of one key that got the same
 * body: the saved-time estimate counts the repeats a lifetime would have covered.
 */
export const REPEAT_BUCKETS_MS: readonly number[] = [
  250,
  500,
  1_000,
  2_000,
  5_000,
  10_000,
  30_000,
  60_000,
  120_000,
  300_000,
  600_000,
  1_800_000,
  3_600_000,
  Number.POSITIVE_INFINITY,
];

export interface AdvisorOptions {
  /** Most (route, template) records kept; the least recently used is dropped first. */
  readonly maxTemplates?: number;
  /** Largest body hashed, bytes (a longer one is counted but not compared). */
  readonly hashCapBytes?: number;
  /** Wall clock, ms (tests). */
  readonly now?: () => number;
  /** The hash seed (tests, which need to know which keys share a slot); default: random per process. */
  readonly seed?: number;
}

/** One template's record as the suggestions read it (a copy; plain data). */
export interface TemplateObservation {
  readonly route: string;
  readonly template: string;
  readonly firstAt: number;
  readonly lastAt: number;
  /** GET/HEAD answers from the origin. */
  readonly calls: number;
  /** Of those, status 200. */
  readonly ok: number;
  readonly upstreamMs: number;
  readonly bytes: number;
  readonly unsafeCalls: number;
  /** 200 bodies hashed (complete and within the cap). */
  readonly hashed: number;
  /** Hashed bodies whose key had been seen before (a repeat), and of those: same body, changed body. */
  readonly repeats: number;
  readonly sameBody: number;
  readonly changedBody: number;
  /** Changes that followed an unsafe request on the same URL (the cache invalidates those itself). */
  readonly changedAfterWrite: number;
  /** Longest time one key's body was seen unchanged, ms. */
  readonly longestUnchangedMs: number;
  /** Shortest time a body was seen unchanged before it changed (no write between), ms; null: no change. */
  readonly shortestBeforeChangeMs: number | null;
  /** Same-body repeats by the time since the key's previous call (REPEAT_BUCKETS_MS), and their upstream ms. */
  readonly repeatCounts: readonly number[];
  readonly repeatUpstreamMs: readonly number[];
  /** Distinct credentials seen (capped at CREDENTIAL_SLOTS), and calls without any. */
  readonly credentials: number;
  readonly anonymousCalls: number;
  /** Calls whose request carried Authorization (the cache stores those only with storePrivate). */
  readonly authorization: number;
  readonly noStore: number;
  readonly noCache: number;
  readonly private: number;
  readonly validators: number;
  readonly explicitFreshness: number;
  readonly setCookie: number;
  readonly varyStar: number;
  /** Answers the cache stored (the route already caches them). */
  readonly stored: number;
}

export interface Advisor {
  /** Goes between the guard and the cache: sees each origin answer and hashes small bodies. */
  readonly stage: Stage;
  /** A front/ observer: records each finished exchange the stage saw. */
  readonly observe: (end: ExchangeEnd) => void;
  /** Every record, most recently used first. */
  observations(): TemplateObservation[];
  /** Drops every record (tests, or after applying suggestions). */
  clear(): void;
}

class TemplateRecord {
  firstAt: number;
  lastAt: number;
  calls = 0;
  ok = 0;
  upstreamMs = 0;
  bytes = 0;
  unsafeCalls = 0;
  hashed = 0;
  repeats = 0;
  sameBody = 0;
  changedBody = 0;
  changedAfterWrite = 0;
  longestUnchangedMs = 0;
  shortestBeforeChangeMs = Number.POSITIVE_INFINITY;
  /** Made with the first repeat (most templates of a fill of distinct paths never repeat). */
  repeatCounts: Float64Array | null = null;
  repeatUpstreamMs: Float64Array | null = null;
  /** Made with the first credential. */
  credentialHashes: Uint32Array | null = null;
  credentials = 0;
  anonymousCalls = 0;
  authorization = 0;
  noStore = 0;
  noCache = 0;
  private = 0;
  validators = 0;
  explicitFreshness = 0;
  setCookie = 0;
  varyStar = 0;
  stored = 0;
  // The key table, one row of ROW numbers per slot: key hash (0 = empty), URL hash, body hash (two
  // halves), when this body was first and last seen, and the last unsafe request on the URL. It
  // starts with one slot and grows to KEY_SLOTS when a second key arrives: a template seen with one
  // URL (a fill of distinct paths makes 500 such records) keeps 56 bytes instead of 2.5 KB. Keys
  // then sit where they would have sat in a full table from the start, so growing changes nothing.
  slots = new Float64Array(ROW);

  constructor(
    readonly route: string,
    readonly template: string,
    now: number,
  ) {
    this.firstAt = now;
    this.lastAt = now;
  }

  countCredential(h: number): void {
    if (this.credentialHashes === null) this.credentialHashes = new Uint32Array(CREDENTIAL_SLOTS);
    const set = this.credentialHashes;
    for (let i = 0; i < this.credentials; i++) if (set[i] === h) return;
    if (this.credentials < CREDENTIAL_SLOTS) set[this.credentials++] = h;
  }

  /** The row offset of `key`'s slot, growing the one-slot table when another key holds it. */
  private rowOf(key: number): number {
    let t = this.slots;
    if (t.length === ROW) {
      const held = t[K_KEY] as number;
      if (held === 0 || held === key) return 0;
      const grown = new Float64Array(KEY_SLOTS * ROW);
      grown.set(t, (held % KEY_SLOTS) * ROW);
      this.slots = t = grown;
    }
    return (key % KEY_SLOTS) * ROW;
  }

  /** A complete 200 body for `key`: compares it with the key's previous body. */
  compare(key: number, url: number, hi: number, lo: number, now: number, upstreamMs: number): void {
    this.hashed++;
    const r = this.rowOf(key);
    const t = this.slots;
    if (t[r + K_KEY] !== key) {
      t[r + K_KEY] = key;
      t[r + K_URL] = url;
      t[r + K_HI] = hi;
      t[r + K_LO] = lo;
      t[r + K_SINCE] = now;
      t[r + K_LAST] = now;
      t[r + K_WRITE] = 0;
      return;
    }
    this.repeats++;
    const since = t[r + K_SINCE] as number;
    const last = t[r + K_LAST] as number;
    if (t[r + K_HI] === hi && t[r + K_LO] === lo) {
      this.sameBody++;
      const unchanged = now - since;
      if (unchanged > this.longestUnchangedMs) this.longestUnchangedMs = unchanged;
      const gap = now - last;
      let b = 0;
      while (gap > (REPEAT_BUCKETS_MS[b] as number)) b++;
      if (this.repeatCounts === null) this.repeatCounts = new Float64Array(REPEAT_BUCKETS_MS.length);
      if (this.repeatUpstreamMs === null) this.repeatUpstreamMs = new Float64Array(REPEAT_BUCKETS_MS.length);
      const counts = this.repeatCounts;
      const upstream = this.repeatUpstreamMs;
      (counts[b] as number)++;
      upstream[b] = (upstream[b] as number) + upstreamMs;
    } else {
      this.changedBody++;
      if ((t[r + K_WRITE] as number) > since) this.changedAfterWrite++;
      else if (last - since < this.shortestBeforeChangeMs) this.shortestBeforeChangeMs = last - since;
      t[r + K_HI] = hi;
      t[r + K_LO] = lo;
      t[r + K_SINCE] = now;
      t[r + K_WRITE] = 0;
    }
    t[r + K_LAST] = now;
  }

  /** An unsafe request on `url`: a later change of its bodies is one the cache invalidates. */
  written(url: number, now: number): void {
    this.unsafeCalls++;
    const t = this.slots;
    for (let r = 0; r < t.length; r += ROW)
      if (t[r + K_URL] === url && t[r + K_KEY] !== 0) t[r + K_WRITE] = now;
  }

  snapshot(): TemplateObservation {
    return {
      route: this.route,
      template: this.template,
      firstAt: this.firstAt,
      lastAt: this.lastAt,
      calls: this.calls,
      ok: this.ok,
      upstreamMs: this.upstreamMs,
      bytes: this.bytes,
      unsafeCalls: this.unsafeCalls,
      hashed: this.hashed,
      repeats: this.repeats,
      sameBody: this.sameBody,
      changedBody: this.changedBody,
      changedAfterWrite: this.changedAfterWrite,
      longestUnchangedMs: this.longestUnchangedMs,
      shortestBeforeChangeMs: Number.isFinite(this.shortestBeforeChangeMs)
        ? this.shortestBeforeChangeMs
        : null,
      repeatCounts: this.repeatCounts ? [...this.repeatCounts] : REPEAT_BUCKETS_MS.map(() => 0),
      repeatUpstreamMs: this.repeatUpstreamMs ? [...this.repeatUpstreamMs] : REPEAT_BUCKETS_MS.map(() => 0),
      credentials: this.credentials,
      anonymousCalls: this.anonymousCalls,
      authorization: this.authorization,
      noStore: this.noStore,
      noCache: this.noCache,
      private: this.private,
      validators: this.validators,
      explicitFreshness: this.explicitFreshness,
      setCookie: this.setCookie,
      varyStar: this.varyStar,
      stored: this.stored,
    };
  }
}

const FRESHNESS = /(?:^|[\s,])(?:s-maxage|max-age)\s*=\s*"?[1-9]/;

function headerText(v: unknown): string {
  if (v === undefined) return '';
  return Array.isArray(v) ? v.join(', ') : String(v);
}

/** Paths whose template is remembered (the memo starts over when full). */
const TEMPLATE_MEMO = 4096;
const LITTLE_ENDIAN = endianness() === 'LE';
const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const C3 = 0x85ebca6b;
const C4 = 0xc2b2ae35;

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), C3);
  h = Math.imul(h ^ (h >>> 13), C4);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A body's 64-bit hash, fed chunk by chunk (Exchange.bodyTap): two lanes of multiply(-rotate)
 * steps over the body's little-endian 32-bit words, the same for the same bytes
 * however they were split into chunks. Not cryptographic: it tells "the same bytes as last time"
 * from "other bytes" (a changed body passes for the same one about once in 2^64), which is all the
 * advisor asks, and costs less than half of a one-shot SHA-1 of the same bytes (two multiplications
 * per 4 bytes), finished by murmur3's mixer. Past `capBytes` it only counts.
 */
export class BodyHash implements BodyTap {
  /** Body bytes seen. */
  bytes = 0;
  private h1 = 0x2f8b3a1d;
  private h2 = 0x6a09e667;
  /** A word not yet complete at the end of the last chunk, and how many of its bytes came. */
  private word = 0;
  private have = 0;
  private done = false;

  constructor(private readonly capBytes: number) {}

  update(chunk: Buffer): void {
    const n = chunk.length;
    this.bytes += n;
    if (this.bytes > this.capBytes) return;
    let h1 = this.h1;
    let h2 = this.h2;
    let i = 0;
    let word = this.word;
    let have = this.have;
    while (have !== 0 && have < 4 && i < n) word |= (chunk[i++] as number) << (8 * have++);
    if (have === 4) {
      h1 = step1(h1, word);
      h2 = step2(h2, word);
      word = 0;
      have = 0;
    }
    if (have === 0) {
      const words = (n - i) >>> 2;
      if (LITTLE_ENDIAN && ((chunk.byteOffset + i) & 3) === 0) {
        const a = new Int32Array(chunk.buffer, chunk.byteOffset + i, words);
        for (let k = 0; k < words; k++) {
          const w = a[k] as number;
          h1 = step1(h1, w);
          h2 = step2(h2, w);
        }
      } else {
        for (let k = 0, j = i; k < words; k++, j += 4) {
          const w =
            (chunk[j] as number) |
            ((chunk[j + 1] as number) << 8) |
            ((chunk[j + 2] as number) << 16) |
            ((chunk[j + 3] as number) << 24);
          h1 = step1(h1, w);
          h2 = step2(h2, w);
        }
      }
      i += words * 4;
      while (i < n) word |= (chunk[i++] as number) << (8 * have++);
    }
    this.h1 = h1;
    this.h2 = h2;
    this.word = word;
    this.have = have;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    let h1 = this.h1;
    let h2 = this.h2;
    if (this.have > 0) {
      h1 = step1(h1, this.word);
      h2 = step2(h2, this.word);
    }
    h1 = fmix(h1 ^ this.bytes);
    h2 = fmix(h2 ^ this.bytes);
    this.h1 = (h1 + h2) >>> 0;
    this.h2 = (h2 + this.h1) >>> 0;
  }

  /** The high 32 bits of the hash of everything fed (once fed completely). */
  hi(): number {
    this.finish();
    return this.h1;
  }

  lo(): number {
    this.finish();
    return this.h2;
  }
}

/**
 * One exchange on a route as the advisor sees it, carried on the exchange itself (as its bodyTap,
 * so no side table): the body hash upstream/ feeds (GET only; any other method's body is only
 * counted), and what the origin's answer said, read by the observer when the exchange ends.
 */
class Probe extends BodyHash {
  /** Set once the observer took this exchange in (it does so once, for answers from the origin). */
  observed = false;
  status = 0;
  cacheControl = '';
  validators = false;
  explicitFreshness = false;
  setCookie = false;
  varyStar = false;

  constructor(
    /** The advisor that made it (several may run in one process: tests). */
    readonly owner: object,
    /** GET or HEAD; false for the methods that may change what a URL answers. */
    readonly safe: boolean,
    capBytes: number,
  ) {
    super(capBytes);
  }

  answered(reply: Reply): void {
    if (!this.safe) return;
    const h = reply.headers;
    const cacheControl = headerText(h['cache-control']).toLowerCase();
    this.status = reply.status;
    this.cacheControl = cacheControl;
    this.validators = h['etag'] !== undefined || h['last-modified'] !== undefined;
    this.explicitFreshness = FRESHNESS.test(cacheControl) || h['expires'] !== undefined;
    this.setCookie = h['set-cookie'] !== undefined;
    this.varyStar = headerText(h['vary']).includes('*');
  }
}

/**
 * One word into each lane. Each step is a bijection of the lane for a given word and of the word
 * for a given lane (xor, a rotation, a multiplication by an odd constant), so bodies that differ in
 * one word always hash differently; the rotation carries high bits down in the second lane.
 */
function step1(h: number, w: number): number {
  return Math.imul(h ^ w, C1);
}

function step2(h: number, w: number): number {
  return Math.imul(((h << 13) | (h >>> 19)) ^ w, C2);
}

export function createAdvisor(opts: AdvisorOptions = {}): Advisor {
  const now = opts.now ?? Date.now;
  const hashCap = opts.hashCapBytes ?? 256 * 1024;
  // A fresh seed per process: a credential's 32-bit hash means nothing outside this process.
  const seed = opts.seed ?? randomInt(1, 2 ** 31);
  const maxTemplates = opts.maxTemplates ?? 500;
  // Records by route name, then template; the least recently seen goes when a new one would
  // exceed maxTemplates (a scan, only when a template is new and the table full).
  const records = new Map<string, Map<string, TemplateRecord>>();
  let count = 0;
  const owner = {};

  const dropLeastRecent = (): void => {
    let oldest: TemplateRecord | null = null;
    for (const byTemplate of records.values())
      for (const rec of byTemplate.values()) if (oldest === null || rec.lastAt < oldest.lastAt) oldest = rec;
    if (oldest === null) return;
    const byTemplate = records.get(oldest.route);
    byTemplate?.delete(oldest.template);
    if (byTemplate?.size === 0) records.delete(oldest.route);
    count--;
  };

  const recordFor = (route: string, template: string, at: number): TemplateRecord => {
    let byTemplate = records.get(route);
    let rec = byTemplate?.get(template);
    if (rec !== undefined) return rec;
    if (count >= maxTemplates) dropLeastRecent();
    if (byTemplate === undefined || byTemplate.size === 0) {
      byTemplate = new Map();
      records.set(route, byTemplate);
    }
    rec = new TemplateRecord(route, template, at);
    byTemplate.set(template, rec);
    count++;
    return rec;
  };

  // Paths seen lately and their templates (a path's template never changes).
  const templates = new Map<string, string>();
  const templateOf = (pathname: string): string => {
    let t = templates.get(pathname);
    if (t === undefined) {
      t = pathTemplate(pathname);
      if (templates.size >= TEMPLATE_MEMO) templates.clear();
      templates.set(pathname, t);
    }
    return t;
  };

  /**
   * The probe hashes the body on its way (ex.bodyTap); the reply itself is read at the end, from
   * what front/ wrote (`end.reply`, the very reply this stage returned: the guard before it passes
   * replies on as they are). So the reply's promise is returned as it is, with no reaction of
   * our own holding on to it while the origin answers.
   */
  const stage: Stage = (next) => (ex) => {
    if (ex.route === null) return next(ex);
    const method = ex.method;
    ex.bodyTap = new Probe(owner, method === 'GET' || method === 'HEAD', method === 'GET' ? hashCap : -1);
    const result = next(ex);
    // A reply made without I/O (a remembered hit) comes back as it is, in the same tick; when it is
    // not the origin's, no body will come and the probe need not live on with the exchange.
    if (!(result instanceof Promise) && result.source !== 'origin') ex.bodyTap = undefined;
    return result;
  };

  const observe = (end: ExchangeEnd): void => {
    const { ex } = end;
    const probe = ex.bodyTap;
    const reply = end.reply;
    if (!(probe instanceof Probe) || probe.owner !== owner || probe.observed) return;
    if (reply === undefined || reply.source !== 'origin') return;
    probe.observed = true;
    probe.answered(reply);
    const route = ex.route;
    if (route === null) return;
    const at = now();
    const rec = recordFor(route.name, templateOf(ex.target.pathname), at);
    rec.lastAt = at;
    const urlHash = fnv1a(ex.target.href, seed);
    if (!probe.safe) {
      rec.written(urlHash, at);
      return;
    }
    rec.calls++;
    const upstreamMs = ex.timings.phases.upstream ?? 0;
    rec.upstreamMs += upstreamMs;
    rec.bytes += ex.originInfo?.bodyBytes ?? end.bytes;
    const cc = probe.cacheControl;
    if (cc !== '') {
      if (cc.includes('no-store')) rec.noStore++;
      if (cc.includes('no-cache')) rec.noCache++;
      if (cc.includes('private')) rec.private++;
    }
    if (probe.validators) rec.validators++;
    if (probe.explicitFreshness) rec.explicitFreshness++;
    if (probe.setCookie) rec.setCookie++;
    if (probe.varyStar) rec.varyStar++;
    if (ex.cache?.stored === true) rec.stored++;
    const hd = ex.headers;
    let credential = 0;
    if (
      hd.authorization !== undefined ||
      hd.cookie !== undefined ||
      route.cache.credentialHeaders.length > 0
    ) {
      const parts = credentialParts(hd, route.cache);
      if (parts.length > 0) credential = fnv1a(parts.join('\n'), seed ^ 0x5bd1e995);
    }
    if (hd.authorization !== undefined) rec.authorization++;
    if (credential === 0) rec.anonymousCalls++;
    else rec.countCredential(credential);
    if (probe.status !== 200) return;
    rec.ok++;
    // Compared only for a GET whose whole body came (as many bytes as upstream/ counted) within the cap.
    if (ex.method !== 'GET' || end.error !== undefined || probe.bytes > hashCap) return;
    if (probe.bytes !== (ex.originInfo?.bodyBytes ?? -1)) return;
    const key = credential === 0 ? urlHash : fnv1a(`${ex.target.href}\n${credential}`, seed);
    rec.compare(key, urlHash, probe.hi(), probe.lo(), at, upstreamMs);
  };

  return {
    stage,
    observe,
    observations: () =>
      [...records.values()]
        .flatMap((byTemplate) => [...byTemplate.values()])
        .sort((a, b) => b.lastAt - a.lastAt)
        .map((r) => r.snapshot()),
    clear: () => {
      records.clear();
      count = 0;
    },
  };
}
