/**
 * The policy advisor's suggestions (docs/observability.md, "Policy advisor"): from the observed
 * templates (observe.ts) and the running routes, the cache policy that would have served the
 * observed traffic correctly, with its evidence and the upstream time it would have saved. Pure.
 *
 * Rules, per (route, template):
 * - only GET answers with status 200, at least MIN_CALLS of them, at least MIN_REPEATS repeats of
 *   one cache key compared by body hash;
 * - never what the route already caches (its answers were stored, or its policy sets ttlMs for
 *   the path), nor a route or path with caching off, nor answers with Set-Cookie or Vary: *;
 * - ttlMs: the longest time a key's body was seen unchanged; when bodies changed, at most half
 *   the shortest time a body was seen unchanged before it changed (changes right after an unsafe
 *   request on the same URL do not count: the cache invalidates that URL itself). Bodies that
 *   changed on most repeats, or a lifetime under MIN_TTL_MS, are not cached. At most MAX_TTL_MS;
 * - ignoreNoStore: the origin said no-store or no-cache, and no body ever changed;
 * - storePrivate: the origin said private, or requests carried Authorization (the entry is then
 *   keyed by the credential that fetched it, as every entry is);
 * - refreshAhead: most calls were same-body repeats within the lifetime (hot entries);
 * - the saved time: the upstream time of the same-body repeats that came within the lifetime
 *   (they would have been hits; the metrics' saved-time model, with the serve time taken as 0).
 *
 * A suggestion becomes a `paths:` entry of its route with the template's literal prefix
 * (`/repos/{}/issues` → `/repos/`). When that prefix also covers an observed template that must not
 * be cached, or an existing `paths:` entry, the suggestion is dropped (said why): a prefix cannot
 * say "only this template".
 */
import { compilePathPolicies, selectPathPolicy } from '../cache/path-policy.js';
import type { Route } from '../config/runtime.js';
import type { TemplateObservation } from './observe.js';
import { REPEAT_BUCKETS_MS } from './observe.js';
import { literalPrefix, templatePattern } from './path-template.js';

export const MIN_CALLS = 3;
export const MIN_REPEATS = 2;
export const MIN_TTL_MS = 1_000;
export const MAX_TTL_MS = 3_600_000;

export interface Suggestion {
  readonly route: string;
  readonly template: string;
  /** Where it goes: a `paths:` entry with this prefix. */
  readonly prefix: string;
  readonly ttlMs: number;
  readonly ignoreNoStore: boolean;
  readonly storePrivate: boolean;
  /** A refresh-ahead path pattern, or null. */
  readonly refreshAhead: string | null;
  /** Whether entries would be keyed by a credential (requests carried one). */
  readonly perCredential: boolean;
  readonly evidence: string;
  /** Upstream time the lifetime would have saved over the observed traffic, seconds. */
  readonly savedSeconds: number;
  readonly calls: number;
}

export interface NotSuggested {
  readonly route: string;
  readonly template: string;
  readonly why: string;
}

export interface Advice {
  /** Wall clock of this advice, ms. */
  readonly at: number;
  /** false when the advisor is off (`advisor.enabled: false`): nothing was observed. */
  readonly enabled: boolean;
  /** Set when off: says so, and which setting turns it on. */
  readonly why?: string;
  /** Most useful first (saved time). */
  readonly suggestions: readonly Suggestion[];
  readonly notSuggested: readonly NotSuggested[];
  /** The running routes, for writing a config (no secrets: names, origins, prefixes, hosts, cache policies). */
  readonly routes: readonly AdviceRoute[];
}

export interface AdviceRoute {
  readonly name: string;
  readonly origin: string;
  readonly prefix: string | false;
  readonly hosts: readonly string[];
}

export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  if (s >= 1) return `${s.toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}

/** A lifetime rounded down to something readable: whole seconds, whole minutes above 10 min. */
function roundTtl(ms: number): number {
  if (ms >= 600_000) return Math.floor(ms / 60_000) * 60_000;
  return Math.floor(ms / 1000) * 1000;
}

type Judged = { ok: true; s: Omit<Suggestion, 'prefix'> } | { ok: false; why: string };

function judge(o: TemplateObservation, route: Route): Judged {
  const no = (why: string): Judged => ({ ok: false, why });
  const policy = selectPathPolicy(route.cache, compilePathPolicies(route.cache), literalPrefix(o.template));
  if (!route.cache.enabled || !policy.enabled) return no('caching is off for this path');
  if (policy.ttlMs !== null) return no(`the route already sets ttlMs ${policy.ttlMs} for this path`);
  if (o.stored * 2 >= o.calls && o.calls > 0)
    return no(`the route already caches it (${o.stored} of ${o.calls} answers stored)`);
  if (o.ok < MIN_CALLS) return no(`${o.ok} answers with status 200; at least ${MIN_CALLS} needed`);
  if (o.setCookie > 0) return no('answers set cookies');
  if (o.varyStar > 0) return no('answers say Vary: *');
  if (o.repeats < MIN_REPEATS)
    return no(`${o.repeats} repeats of one cache key; at least ${MIN_REPEATS} needed`);
  const changed = o.changedBody - o.changedAfterWrite;
  if (changed > o.sameBody) return no(`bodies changed on ${changed} of ${o.repeats} repeats`);
  let ttl = o.longestUnchangedMs;
  if (o.shortestBeforeChangeMs !== null) ttl = Math.min(ttl, o.shortestBeforeChangeMs / 2);
  ttl = Math.min(roundTtl(ttl), MAX_TTL_MS);
  if (ttl < MIN_TTL_MS) {
    return no(
      o.shortestBeforeChangeMs !== null
        ? `a body changed after ${formatDuration(o.shortestBeforeChangeMs)} unchanged`
        : `bodies seen unchanged for only ${formatDuration(o.longestUnchangedMs)} so far`,
    );
  }
  const noStore = o.noStore > 0 || o.noCache > 0;
  if (noStore && changed > 0) return no('the origin says no-store/no-cache and bodies changed');
  const storePrivate = o.private > 0 || o.authorization > 0;
  let withinCount = 0;
  let savedMs = 0;
  for (let b = 0; b < REPEAT_BUCKETS_MS.length; b++) {
    if ((REPEAT_BUCKETS_MS[b] as number) > ttl) break;
    withinCount += o.repeatCounts[b] ?? 0;
    savedMs += o.repeatUpstreamMs[b] ?? 0;
  }
  const hot = withinCount * 2 >= o.calls;
  const said = [
    o.noStore > 0 ? 'no-store' : null,
    o.noCache > 0 ? 'no-cache' : null,
    o.private > 0 ? 'private' : null,
    o.validators === 0 ? 'no validators' : null,
    o.explicitFreshness === 0 ? 'no lifetime' : null,
  ].filter((x) => x !== null);
  const creds =
    o.credentials === 0
      ? 'no credentials'
      : `${o.credentials}${o.credentials >= 16 ? '+' : ''} credential(s)`;
  const evidence =
    `${o.calls} calls in ${formatDuration(o.lastAt - o.firstAt)}, ${formatDuration(o.upstreamMs)} upstream; ` +
    `${o.sameBody} of ${o.repeats} repeats got the same body` +
    (changed > 0
      ? ` (${changed} changed, after at least ${formatDuration(o.shortestBeforeChangeMs ?? 0)})`
      : '') +
    (o.changedAfterWrite > 0 ? `, ${o.changedAfterWrite} changed after a write on the URL` : '') +
    `; unchanged for up to ${formatDuration(o.longestUnchangedMs)}; ${creds}` +
    (said.length > 0 ? `; origin said ${said.join(', ')}` : '') +
    (o.unsafeCalls > 0 ? `; ${o.unsafeCalls} unsafe requests (they invalidate the URL)` : '');
  return {
    ok: true,
    s: {
      route: o.route,
      template: o.template,
      ttlMs: ttl,
      ignoreNoStore: noStore,
      storePrivate,
      refreshAhead: hot ? templatePattern(o.template) : null,
      perCredential: o.credentials > 0,
      evidence,
      savedSeconds: savedMs / 1000,
      calls: o.calls,
    },
  };
}

/** The advice for the observed templates under the running routes. */
export function advise(
  observations: readonly TemplateObservation[],
  routes: readonly Route[],
  at: number,
): Advice {
  const byName = new Map(routes.map((r) => [r.name, r]));
  const suggestions: Suggestion[] = [];
  const notSuggested: NotSuggested[] = [];
  const candidates: Suggestion[] = [];
  const refused = new Map<string, TemplateObservation[]>();
  for (const o of observations) {
    const route = byName.get(o.route);
    if (route === undefined || o.calls === 0) continue;
    const j = judge(o, route);
    if (j.ok) candidates.push({ ...j.s, prefix: literalPrefix(o.template) });
    else {
      notSuggested.push({ route: o.route, template: o.template, why: j.why });
      const list = refused.get(o.route) ?? [];
      list.push(o);
      refused.set(o.route, list);
    }
  }
  for (const c of candidates) {
    const route = byName.get(c.route) as Route;
    const blocker = (refused.get(c.route) ?? []).find((o) => o.template.startsWith(c.prefix));
    if (blocker !== undefined) {
      notSuggested.push({
        route: c.route,
        template: c.template,
        why: `its path prefix ${c.prefix} also covers ${blocker.template}, which is not to be cached`,
      });
      continue;
    }
    const overlap = route.cache.paths.find((p) => p.prefix !== c.prefix && p.prefix.startsWith(c.prefix));
    if (overlap !== undefined || route.cache.paths.some((p) => p.prefix === c.prefix)) {
      notSuggested.push({
        route: c.route,
        template: c.template,
        why: `its path prefix ${c.prefix} overlaps the configured paths entry ${overlap?.prefix ?? c.prefix}`,
      });
      continue;
    }
    suggestions.push(c);
  }
  suggestions.sort((a, b) => b.savedSeconds - a.savedSeconds || b.calls - a.calls);
  return { at, enabled: true, suggestions, notSuggested, routes: adviceRoutes(routes) };
}

/** What `/advice.json` carries while the advisor is off. */
export function adviceOff(routes: readonly Route[], at: number): Advice {
  return {
    at,
    enabled: false,
    why: 'the policy advisor is off (advisor.enabled: false, or --no-advisor): nothing is observed',
    suggestions: [],
    notSuggested: [],
    routes: adviceRoutes(routes),
  };
}

function adviceRoutes(routes: readonly Route[]): AdviceRoute[] {
  return routes.map((r) => ({
    name: r.name,
    origin: `${r.origin}${r.basePath}`,
    prefix: r.prefix === null ? false : r.prefix,
    hosts: r.hosts,
  }));
}

/** One line per suggestion, for `sidecache report` and the status page. */
export function suggestionLine(s: Suggestion): string {
  const what = [
    `ttlMs ${s.ttlMs}`,
    s.ignoreNoStore ? 'ignoreNoStore' : null,
    s.storePrivate ? 'storePrivate (per credential)' : null,
    s.refreshAhead !== null ? 'refreshAhead' : null,
  ].filter((x) => x !== null);
  return `${s.route} ${s.template}: ${what.join(', ')}; would have saved ${formatDuration(s.savedSeconds * 1000)}. Evidence: ${s.evidence}`;
}
