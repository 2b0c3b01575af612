/**
 * Loads the configuration from its sources, merged in the order
 * schema defaults < YAML file (or the embedded config/default.yaml) < environment < CLI flags,
 * and validates it once. Nothing else in sidecache reads `process.env` or files for settings.
 */

import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { cidrContains, parseAddress, parseCidr } from '../address-ranges.js';
import { ConfigError } from '../errors.js';
import { packageFile } from '../version.js';
import { dnsOverridesFromFlags } from './dns-schema.js';
import { interceptEntries } from './intercept-entry.js';
import { memoryLimitFile, readMemoryLimit, resolveMemoryShares } from './memory-limit.js';
import { compileHostMatcher, normaliseHost } from './runtime.js';
import { type Config, configSchema } from './schema.js';

/** The embedded default configuration shipped with sidecache. */
export const DEFAULT_CONFIG_FILE = packageFile('config/default.yaml');

/** Settings given as CLI flags (already parsed by yargs); every field is optional. */
export interface CliOverrides {
  listen?: string | undefined;
  adminListen?: string | undefined;
  route?: readonly string[] | undefined;
  allow?: readonly string[] | undefined;
  caFile?: string | undefined;
  logLevel?: string | undefined;
  /** Nameservers, HOST[:PORT] (repeatable; implies dns.mode udp unless dnsMode says doh). */
  dns?: readonly string[] | undefined;
  dnsMode?: string | undefined;
  /** `--cache` / `--no-cache`: turn the cache on or off. */
  cache?: boolean | undefined;
  intercept?: readonly string[] | undefined;
  caDir?: string | undefined;
  /** `--redis URL`: the cache's shared tier (`cache.redis.url`). */
  redis?: string | undefined;
  /** `--memcached HOST:PORT` (repeatable): the cache's shared tier on memcached. */
  memcached?: readonly string[] | undefined;
  /** `--acceptors N`: listening handles for the proxy listener (`proxy.acceptors`). */
  acceptors?: number | undefined;
  /** `--advisor` / `--no-advisor`: turn the policy advisor on or off (`advisor.enabled`). */
  advisor?: boolean | undefined;
}

export interface ConfigSources {
  /** Path of the YAML file; undefined means the embedded default (or SIDECACHE_CONFIG). */
  file?: string | undefined;
  env?: Readonly<Record<string, string | undefined>>;
  argv?: CliOverrides;
}

export interface LoadedConfig {
  readonly config: Config;
  /** The file that was read. */
  readonly file: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? {};
  const file = sources.file ?? nonEmpty(env.SIDECACHE_CONFIG) ?? DEFAULT_CONFIG_FILE;
  const fromFile = readYamlFile(file);
  const fromEnv = overridesFromEnv(env);
  const fromArgv = overridesFromArgv(sources.argv ?? {});
  const sourceOf: Sources = new Map();
  const merged = applyOverrides(applyOverrides(fromFile, fromEnv, sourceOf), fromArgv, sourceOf);
  const limitFile = memoryLimitFile(env);
  return {
    config: parseConfig(resolveMemoryShares(merged, readMemoryLimit(limitFile), limitFile), file, sourceOf),
    file,
  };
}

/**
 * Where a value came from when not from the file: formatted config path (`listen`, `routes[2]`)
 * to the flag or environment variable that set it (`--listen`, `SIDECACHE_ROUTES "a=http://x"`).
 */
export type Sources = Map<string, string>;

/**
 * Validates an already-merged plain object. `origin` names where it came from (the file), for
 * messages; a value `sources` says a flag or environment variable set is named by that instead.
 */
export function parseConfig(input: unknown, origin = 'config', sources: Sources = new Map()): Config {
  const label = (path: readonly PropertyKey[]): string => sourceFor(path, sources) ?? origin;
  const result = configSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.flatMap((issue) =>
        describeIssue(issue, input).map(({ path, text }) => `${label(path)}: ${text}`),
      ),
    );
  }
  // DoH trusts the CA given for upstream TLS unless it has its own (an internal resolver's CA).
  const config =
    result.data.dns.doh.caFile === null && result.data.upstream.caFile !== null
      ? {
          ...result.data,
          dns: { ...result.data.dns, doh: { ...result.data.dns.doh, caFile: result.data.upstream.caFile } },
        }
      : result.data;
  const problems = crossCheck(config);
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${label(p.path)}: ${p.text}`));
  return config;
}

/** The flag or variable that set `path` or the value holding it (the longest such prefix). */
function sourceFor(path: readonly PropertyKey[], sources: Sources): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const found = sources.get(formatPath(path.slice(0, n)));
    if (found !== undefined) return found;
  }
  return undefined;
}

function readYamlFile(file: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError([`${file}: cannot read config file (${code})`], { cause: err });
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const where = pos ? `${file}:${pos.line}:${pos.col}` : file;
        return `${where}: invalid YAML: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  const value = doc.toJS() as Json;
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([`${file}: expected a YAML mapping at the top level, got ${describeType(value)}`]);
  }
  return value;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s.trim();
}

function splitList(s: string | undefined): string[] | undefined {
  const v = nonEmpty(s);
  return v === undefined
    ? undefined
    : v
        .split(/[,\s]+/)
        .map((x) => x.trim())
        .filter((x) => x !== '');
}

/**
 * Overrides use dotted paths; `routes`, `allow` and `intercept` add to what the file says. Each
 * carries the flag or variable it came from, so that an error in it names that, not the file.
 */
interface Overrides {
  set: Array<[path: string[], value: Json, source: string]>;
  routes: Listed;
  allow: Listed;
  intercept: Listed;
}

interface Listed {
  readonly values: string[];
  /** `--route`, `SIDECACHE_ROUTES`, ... */
  readonly source: string;
}

const ONOFF: Readonly<Record<string, boolean>> = { on: true, off: false, true: true, false: false };

function overridesFromEnv(env: Readonly<Record<string, string | undefined>>): Overrides {
  const o: Overrides = {
    set: [],
    routes: { values: splitList(env.SIDECACHE_ROUTES) ?? [], source: 'SIDECACHE_ROUTES' },
    allow: { values: splitList(env.SIDECACHE_ALLOW) ?? [], source: 'SIDECACHE_ALLOW' },
    intercept: { values: splitList(env.SIDECACHE_INTERCEPT) ?? [], source: 'SIDECACHE_INTERCEPT' },
  };
  const listen = nonEmpty(env.SIDECACHE_LISTEN);
  if (listen) o.set.push([['listen'], listen, 'SIDECACHE_LISTEN']);
  const admin = nonEmpty(env.SIDECACHE_ADMIN_LISTEN);
  if (admin) o.set.push([['admin', 'listen'], admin, 'SIDECACHE_ADMIN_LISTEN']);
  const adminToken = nonEmpty(env.SIDECACHE_ADMIN_TOKEN);
  if (adminToken) o.set.push([['admin', 'token'], adminToken, 'SIDECACHE_ADMIN_TOKEN']);
  const ca = nonEmpty(env.SIDECACHE_CA_FILE);
  if (ca) o.set.push([['upstream', 'caFile'], ca, 'SIDECACHE_CA_FILE']);
  const level = nonEmpty(env.SIDECACHE_LOG_LEVEL);
  if (level) o.set.push([['log', 'level'], level, 'SIDECACHE_LOG_LEVEL']);
  const logFormat = nonEmpty(env.SIDECACHE_LOG_FORMAT);
  if (logFormat) o.set.push([['log', 'format'], logFormat, 'SIDECACHE_LOG_FORMAT']);
  pushDnsOverrides(o, splitList(env.SIDECACHE_DNS), nonEmpty(env.SIDECACHE_DNS_MODE), {
    servers: 'SIDECACHE_DNS',
    mode: 'SIDECACHE_DNS_MODE',
  });
  const cache = nonEmpty(env.SIDECACHE_CACHE)?.toLowerCase();
  if (cache !== undefined) {
    const on = ONOFF[cache];
    if (on === undefined) {
      throw new ConfigError([`SIDECACHE_CACHE: "${cache}" is not one of on, off`]);
    }
    o.set.push([['cache', 'enabled'], on, 'SIDECACHE_CACHE']);
  }
  const caDir = nonEmpty(env.SIDECACHE_CA_DIR);
  if (caDir) o.set.push([['tls', 'caDir'], caDir, 'SIDECACHE_CA_DIR']);
  const redis = nonEmpty(env.SIDECACHE_REDIS_URL);
  if (redis) o.set.push([['cache', 'redis', 'url'], redis, 'SIDECACHE_REDIS_URL']);
  const memcached = nonEmpty(env.SIDECACHE_MEMCACHED);
  if (memcached) {
    const servers = memcached
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    o.set.push([['cache', 'memcached', 'servers'], servers, 'SIDECACHE_MEMCACHED']);
  }
  const acceptors = nonEmpty(env.SIDECACHE_ACCEPTORS);
  if (acceptors !== undefined) o.set.push([['proxy', 'acceptors'], Number(acceptors), 'SIDECACHE_ACCEPTORS']);
  pushOtelOverrides(o, env);
  return o;
}

function overridesFromArgv(argv: CliOverrides): Overrides {
  const o: Overrides = {
    set: [],
    routes: { values: [...(argv.route ?? [])], source: '--route' },
    allow: { values: [...(argv.allow ?? [])], source: '--allow' },
    intercept: { values: [...(argv.intercept ?? [])], source: '--intercept' },
  };
  if (argv.listen !== undefined) o.set.push([['listen'], argv.listen, '--listen']);
  if (argv.adminListen !== undefined) o.set.push([['admin', 'listen'], argv.adminListen, '--admin-listen']);
  if (argv.caFile !== undefined) o.set.push([['upstream', 'caFile'], argv.caFile, '--ca-file']);
  if (argv.logLevel !== undefined) o.set.push([['log', 'level'], argv.logLevel, '--log-level']);
  pushDnsOverrides(o, argv.dns, argv.dnsMode, { servers: '--dns', mode: '--dns-mode' });
  if (argv.cache !== undefined) o.set.push([['cache', 'enabled'], argv.cache, '--cache']);
  if (argv.caDir !== undefined) o.set.push([['tls', 'caDir'], argv.caDir, '--ca-dir']);
  if (argv.redis !== undefined) o.set.push([['cache', 'redis', 'url'], argv.redis, '--redis']);
  if (argv.memcached !== undefined && argv.memcached.length > 0) {
    o.set.push([['cache', 'memcached', 'servers'], [...argv.memcached], '--memcached']);
  }
  if (argv.acceptors !== undefined) o.set.push([['proxy', 'acceptors'], argv.acceptors, '--acceptors']);
  if (argv.advisor !== undefined) o.set.push([['advisor', 'enabled'], argv.advisor, '--advisor']);
  return o;
}

/**
 * The standard OpenTelemetry variables as `tracing.*` settings: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (used as it is) or OTEL_EXPORTER_OTLP_ENDPOINT (a base: /v1/traces is added), OTEL_SERVICE_NAME,
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (the ratio).
 */
function pushOtelOverrides(o: Overrides, env: Readonly<Record<string, string | undefined>>): void {
  const tracesEndpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const endpoint = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (tracesEndpoint)
    o.set.push([['tracing', 'endpoint'], tracesEndpoint, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
  else if (endpoint) o.set.push([['tracing', 'endpoint'], endpoint, 'OTEL_EXPORTER_OTLP_ENDPOINT']);
  const service = nonEmpty(env.OTEL_SERVICE_NAME);
  if (service) o.set.push([['tracing', 'serviceName'], service, 'OTEL_SERVICE_NAME']);
  const sampler = nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase();
  if (sampler) o.set.push([['tracing', 'sampler'], sampler, 'OTEL_TRACES_SAMPLER']);
  const ratio = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
  if (ratio !== undefined) o.set.push([['tracing', 'ratio'], Number(ratio), 'OTEL_TRACES_SAMPLER_ARG']);
}

/** `--dns` / `--dns-mode` (and SIDECACHE_DNS / SIDECACHE_DNS_MODE) as `dns.*` settings. */
function pushDnsOverrides(
  o: Overrides,
  servers: readonly string[] | undefined,
  mode: string | undefined,
  names: { servers: string; mode: string },
): void {
  const dns = dnsOverridesFromFlags({
    ...(servers && servers.length > 0 ? { dns: [...servers] } : {}),
    ...(mode !== undefined ? { dnsMode: mode } : {}),
  } as Parameters<typeof dnsOverridesFromFlags>[0]);
  for (const [key, value] of Object.entries(dns)) {
    if (key === 'doh') {
      o.set.push([['dns', 'doh', 'servers'], (value as { servers: Json }).servers, names.servers]);
    } else {
      // The mode is implied by the nameservers unless given.
      const source = key === 'mode' && mode !== undefined ? names.mode : names.servers;
      o.set.push([['dns', key], value as Json, source]);
    }
  }
}

function applyOverrides(base: JsonObject, o: Overrides, sourceOf: Sources): JsonObject {
  const out: JsonObject = structuredClone(base);
  for (const [path, value, source] of o.set) {
    sourceOf.set(formatPath(path), source);
    let node: JsonObject = out;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (child === undefined || child === null || typeof child !== 'object' || Array.isArray(child))
        node[key] = {};
      node = node[key] as JsonObject;
    }
    node[path[path.length - 1] as string] = value;
  }
  if (o.routes.values.length > 0) {
    const routes = Array.isArray(out.routes) ? [...out.routes] : [];
    for (const spec of o.routes.values) {
      const eq = spec.indexOf('=');
      if (eq <= 0 || eq === spec.length - 1) {
        throw new ConfigError([
          `${o.routes.source}: "${spec}" is not NAME=ORIGIN, e.g. github=https://api.github.com`,
        ]);
      }
      const name = spec.slice(0, eq).trim();
      const route: JsonObject = { name, origin: spec.slice(eq + 1).trim() };
      const found = routes.findIndex(
        (r) => r !== null && typeof r === 'object' && !Array.isArray(r) && r.name === name,
      );
      const at = found >= 0 ? found : routes.length;
      routes[at] = route;
      sourceOf.set(formatPath(['routes', at]), `${o.routes.source} ${JSON.stringify(spec)}`);
    }
    out.routes = routes;
  }
  for (const key of ['allow', 'intercept'] as const) {
    const listed = o[key];
    if (listed.values.length === 0) continue;
    const before = Array.isArray(out[key]) ? out[key] : [];
    listed.values.forEach((v, i) => {
      sourceOf.set(formatPath([key, before.length + i]), `${listed.source} ${JSON.stringify(v)}`);
    });
    out[key] = [...before, ...listed.values];
  }
  return out;
}

interface Problem {
  readonly path: readonly PropertyKey[];
  readonly text: string;
}

function crossCheck(config: Config): Problem[] {
  const problems: Problem[] = [];
  const seen = {
    name: new Map<string, number>(),
    prefix: new Map<string, number>(),
    host: new Map<string, number>(),
  };
  config.routes.forEach((r, i) => {
    const prefix = r.prefix === undefined ? `/${r.name}/` : r.prefix;
    const checks: Array<[keyof typeof seen, string | false, string]> = [
      ['name', r.name.toLowerCase(), `routes[${i}].name: "${r.name}"`],
      ['prefix', prefix, `routes[${i}].prefix: "${prefix}"`],
      ...r.hosts.map((h, j): [keyof typeof seen, string, string] => [
        'host',
        h.toLowerCase(),
        `routes[${i}].hosts[${j}]: "${h}"`,
      ]),
    ];
    for (const [kind, key, label] of checks) {
      if (key === false) continue;
      const other = seen[kind].get(key);
      if (other !== undefined)
        problems.push({
          path: ['routes', i],
          text: `${label} is already used by routes[${other}]; each ${kind} must be unique`,
        });
      else seen[kind].set(key, i);
    }
    if (prefix === '/') {
      problems.push({
        path: ['routes', i],
        text: `routes[${i}].prefix: "/" would capture every request; use hosts for a catch-all route`,
      });
    }
  });
  problems.push(...interceptProblems(config));
  return problems;
}

/**
 * Interception decrypts a tunnel the guard has admitted; it admits nothing by itself (a host added
 * to `intercept` must not quietly widen what the forward proxy reaches). A host in `intercept`
 * that is neither a route origin nor allowed would get a bare 403 on every CONNECT: a config error.
 */
function interceptProblems(config: Config): Problem[] {
  const allow = compileHostMatcher(config.allow);
  const blocks = config.allow.flatMap((entry) => {
    const cidr =
      entry.includes('/') || parseAddress(entry) !== null ? parseCidr(entry.replace(/^\[|\]$/g, '')) : null;
    return cidr === null ? [] : [cidr];
  });
  const originHosts = new Set(config.routes.map((r) => normaliseHost(new URL(r.origin).hostname)));
  const everyHostAllowed = allow('an-unlisted-name.invalid') !== null;
  const allowed = (host: string): boolean => {
    if (everyHostAllowed) return true;
    if (host === '*') return false;
    if (host.startsWith('*.')) {
      // Every name under the suffix: only an allow pattern for the same or a wider suffix covers it.
      const suffix = host.slice(1);
      return allow.patterns.some((p) => {
        const n = normaliseHost(p);
        return n.startsWith('*.') && (suffix === n.slice(1) || suffix.endsWith(n.slice(1)));
      });
    }
    if (originHosts.has(host) || allow(host) !== null) return true;
    const addr = parseAddress(host);
    return addr !== null && blocks.some((b) => cidrContains(b, addr));
  };
  const problems: Problem[] = [];
  interceptEntries(config.intercept).forEach(({ pattern, host }, i) => {
    if (allowed(host)) return;
    const named = host.includes(':') ? `[${host}]` : host;
    problems.push({
      path: ['intercept', i],
      text:
        `intercept[${i}]: "${pattern}" is not a route origin nor in "allow", so every CONNECT to it is refused (403) ` +
        `and nothing is intercepted; add "${named}" to "allow" (intercept does not allow a host by itself)`,
    });
  });
  return problems;
}

// ---- error messages ----------------------------------------------------------------------------

type Issue = z.core.$ZodIssue;

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(top level)' : out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a mapping' : typeof v;
}

function show(v: unknown): string {
  // A URL's password (e.g. cache.redis.url) never appears in an error message.
  const s = JSON.stringify(
    typeof v === 'string' ? v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@') : v,
  );
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** One line per problem (an unknown-keys issue names each key), with the path it is about. */
function describeIssue(issue: Issue, input: unknown): Problem[] {
  const text = describeIssueText(issue, input);
  if (issue.code === 'unrecognized_keys') {
    return text.split('\n').map((line, i) => ({ path: [...issue.path, issue.keys[i] ?? ''], text: line }));
  }
  return [{ path: issue.path, text }];
}

function describeIssueText(issue: Issue, input: unknown): string {
  const where = formatPath(issue.path);
  // A secret (admin.token) never appears in an error message.
  const value = issue.path.at(-1) === 'token' ? '***' : valueAt(input, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeys(issue.path);
      return issue.keys
        .map((k) => {
          const key = issue.path.length === 0 ? k : `${where}.${k}`;
          const hint = closest(k, known);
          return `${key}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; expected one of: ${known.join(', ')}`;
        })
        .join('\n');
    }
    case 'invalid_type':
      if (value === undefined) return `${where}: required (expected ${issue.expected})`;
      return `${where}: ${show(value)} is ${describeType(value)}, expected ${issue.expected}`;
    case 'invalid_value':
      return `${where}: ${show(value)} is not one of ${issue.values.map((v) => show(v)).join(', ')}`;
    default:
      // A rule across keys can point at a key left to its default: no value to show then.
      return value === undefined
        ? `${where}: ${issue.message}`
        : `${where}: ${show(value)}: ${issue.message}`;
  }
}

/** The keys the schema allows for the object at `path` (array indices skipped). */
function knownKeys(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = configSchema;
  for (const p of path) {
    schema = unwrap(schema);
    if (!schema) return [];
    const def = schema._zod.def as {
      type: string;
      shape?: Record<string, z.core.$ZodType>;
      element?: z.core.$ZodType;
    };
    if (typeof p === 'number') schema = def.element;
    else schema = def.shape?.[String(p)];
  }
  const def = unwrap(schema)?._zod.def as { shape?: Record<string, unknown> } | undefined;
  return def?.shape ? Object.keys(def.shape) : [];
}

function unwrap(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let s = schema;
  for (let i = 0; s && i < 10; i++) {
    const def = s._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    if (def.innerType) s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else break;
  }
  return s;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] as number;
      row[j] = Math.min(
        (row[j] as number) + 1,
        (row[j - 1] as number) + 1,
        prev + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      prev = tmp;
    }
  }
  return row[b.length] as number;
}
