/**
 * `sidecache report --suggest-config FILE`: the config file `serve` read (its comments kept), with
 * the running routes it lacks (routes given as flags) and the advisor's suggestions merged into
 * their `cache:` policies, each commented with its evidence. The result is checked with the same
 * validation as `check-config` before it is written.
 */
import { isMap, isSeq, parse, parseDocument, Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { parseConfig } from '../config/load.js';
import type { Advice, Suggestion } from './suggest.js';
import { formatDuration } from './suggest.js';

/** The suggested config as YAML text; throws ConfigError when the result would not load. */
export function suggestedConfigText(advice: Advice, baseText: string, baseName: string): string {
  const doc = parseDocument(baseText);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  const top = doc.contents as unknown as YAMLMap;
  let routes = top.get('routes');
  if (!isSeq(routes)) {
    routes = doc.createNode([]);
    top.set('routes', routes);
  }
  const seq = routes as YAMLSeq;
  seq.flow = false;
  const applied = advice.suggestions.length;
  doc.commentBefore =
    ` Suggested by the sidecache policy advisor on ${new Date(advice.at).toISOString()} from ${baseName}: ` +
    `${applied} suggestion(s) merged, each commented with its evidence.\n` +
    ' Review them: a lifetime is what the observed traffic allowed, not a promise from the origin.' +
    (doc.commentBefore ? `\n${doc.commentBefore}` : '');
  for (const r of advice.routes) {
    let node = seq.items.find((i): i is YAMLMap => isMap(i) && i.get('name') === r.name);
    if (node === undefined) {
      node = doc.createNode({
        name: r.name,
        origin: r.origin,
        ...(r.prefix === `/${r.name}/` ? {} : { prefix: r.prefix }),
        ...(r.hosts.length > 0 ? { hosts: [...r.hosts] } : {}),
      }) as YAMLMap;
      node.commentBefore = ' A route the running instance had from flags or the environment.';
      seq.add(node);
    }
    const mine = advice.suggestions.filter((s) => s.route === r.name);
    if (mine.length === 0) continue;
    let cache = node.get('cache');
    if (!isMap(cache)) {
      cache = doc.createNode({});
      node.set('cache', cache);
    }
    mergeInto(doc.createNode.bind(doc), cache as YAMLMap, mine);
  }
  const text = doc.toString({ lineWidth: 0 });
  parseConfig(parse(text), baseName);
  return text;
}

type MakeNode = (value: unknown) => unknown;

function mergeInto(make: MakeNode, cache: YAMLMap, list: readonly Suggestion[]): void {
  const privateOnes = list.filter((s) => s.storePrivate);
  if (privateOnes.length > 0 && cache.get('storePrivate') !== true) {
    const v = new Scalar(true);
    v.comment = ` advisor: private / Authorization answers repeat per credential on ${privateOnes
      .map((s) => s.template)
      .join(', ')}; stored per credential, never served to another`;
    cache.set('storePrivate', v);
  }
  let paths = cache.get('paths');
  if (!isSeq(paths)) {
    paths = make([]);
    cache.set('paths', paths);
  }
  const seq = paths as YAMLSeq;
  seq.flow = false;
  const byPrefix = new Map<string, Suggestion[]>();
  for (const s of list) byPrefix.set(s.prefix, [...(byPrefix.get(s.prefix) ?? []), s]);
  // Longer prefixes first, ahead of the existing entries (the first matching entry wins).
  const entries = [...byPrefix.entries()].sort((a, b) => b[0].length - a[0].length);
  for (let i = entries.length - 1; i >= 0; i--) {
    const [prefix, group] = entries[i] as [string, Suggestion[]];
    const ttlMs = Math.min(...group.map((s) => s.ttlMs));
    const ignoreNoStore = group.some((s) => s.ignoreNoStore);
    const node = make({ prefix, ttlMs, ...(ignoreNoStore ? { ignoreNoStore: true } : {}) }) as YAMLMap;
    node.commentBefore = group
      .map(
        (s) =>
          ` advisor: ${s.template}: lifetime ${formatDuration(s.ttlMs)}${s.ignoreNoStore ? ', origin no-store/no-cache ignored' : ''}; ` +
          `would have saved ${formatDuration(s.savedSeconds * 1000)}. ${s.evidence}`,
      )
      .join('\n');
    seq.items.unshift(node);
  }
  const hot = list.filter((s) => s.refreshAhead !== null);
  if (hot.length > 0 && cache.get('refreshAhead') == null) {
    const node = make({ paths: hot.map((s) => s.refreshAhead as string) }) as YAMLMap;
    node.commentBefore = ' advisor: most calls came back within the lifetime: kept fresh ahead of expiry';
    cache.set('refreshAhead', node);
  }
}
