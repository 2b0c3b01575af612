import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { poolStillCurrent, reloadProblems, summariseReload } from '../../../src/config/reload.js';
import { compileRuntime, type Runtime } from '../../../src/config/runtime.js';
import { createRuntimeRef } from '../../../src/config/runtime-ref.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { ConfigError } from '../../../src/errors.js';
import { createEgressPolicy } from '../../../src/guard/egress-policy.js';

const compile = (input: Partial<ConfigInput>): Runtime => compileRuntime(parseConfig(input));
const base: Partial<ConfigInput> = {
  routes: [
    { name: 'gh', origin: 'https://api.github.com' },
    { name: 'stripe', origin: 'https://api.stripe.com' },
  ],
};

describe('config reload: what may change', () => {
  it('routes, allow, egress, intercept, tunnel ports, proxy auth and upstream defaults are reloadable', () => {
    const prev = compile({ ...base, intercept: ['api.github.com'] });
    const next = compile({
      routes: [{ name: 'gh', origin: 'https://api.github.com', cache: { enabled: false } }],
      allow: ['*.example.com', '10.0.0.0/8'],
      egress: { ports: [80, 443, 8443] },
      intercept: ['api.github.com', 'api.example.com'],
      tunnel: { ports: [443, 8443] },
      upstream: { connectionsPerOrigin: 8, http2: true },
      proxy: {
        maxUrlBytes: 4096,
        auth: { enabled: true, users: [{ name: 'u', passwordSha256: 'a'.repeat(64) }] },
      },
      observability: { serverTiming: false },
    });
    assert.deepEqual(reloadProblems(prev.config, next.config, true), []);
  });

  it('settings bound at start are named, one line each', () => {
    const prev = compile(base);
    const next = compile({
      ...base,
      listen: '127.0.0.1:18080',
      cache: { maxSizeBytes: 300 * 1024 * 1024 },
      dns: { mode: 'udp', servers: ['127.0.0.1:53'] },
      upstream: { caFile: '/nonexistent.pem' },
      limits: { maxBodyBytes: 1024 },
    });
    assert.deepEqual(reloadProblems(prev.config, next.config, true), [
      'cache.maxSizeBytes: changing requires a restart',
      // DoH trusts upstream.caFile unless dns.doh.caFile is set: it changes with it.
      'dns.doh.caFile: changing requires a restart',
      'dns.mode: changing requires a restart',
      'dns.servers: changing requires a restart',
      'limits.maxBodyBytes: changing requires a restart',
      'listen: changing requires a restart',
      'upstream.caFile: changing requires a restart',
    ]);
  });

  it('turning interception on needs the CA loaded at start', () => {
    const prev = compile(base);
    const next = compile({ ...base, intercept: ['api.github.com'] });
    assert.deepEqual(reloadProblems(prev.config, next.config, false), [
      'intercept: turning interception on requires a restart (the CA is loaded at start)',
    ]);
    assert.deepEqual(reloadProblems(prev.config, next.config, true), []);
  });

  it('summarises routes added, removed and changed, and other keys changed', () => {
    const prev = compile(base);
    const next = compile({
      routes: [
        { name: 'gh', origin: 'https://api.github.com', upstream: { connectionsPerOrigin: 4 } },
        { name: 'users', origin: 'https://users.example.com' },
      ],
      allow: ['api.example.com'],
      egress: { ports: [80] },
    });
    assert.deepEqual(summariseReload(prev, next), {
      routesAdded: ['users'],
      routesRemoved: ['stripe'],
      routesChanged: ['gh'],
      changed: ['allow', 'egress'],
    });
    assert.deepEqual(summariseReload(prev, compile(base)), {
      routesAdded: [],
      routesRemoved: [],
      routesChanged: [],
      changed: [],
    });
  });

  it('retires pools whose route is gone or whose settings changed; forward origins keep the defaults', () => {
    const prev = compile(base);
    const next = compile({
      routes: [
        { name: 'gh', origin: 'https://api.github.com', upstream: { connectionsPerOrigin: 4 } },
        { name: 'stripe', origin: 'https://api.stripe.com' },
      ],
    });
    const current = poolStillCurrent(next);
    const gh = (rt: Runtime) => rt.routes.find((r) => r.name === 'gh')?.upstream;
    const stripe = (rt: Runtime) => rt.routes.find((r) => r.name === 'stripe')?.upstream;
    assert.equal(current('https://api.github.com', gh(prev) as never), false);
    assert.equal(current('https://api.github.com', gh(next) as never), true);
    assert.equal(current('https://api.stripe.com', stripe(prev) as never), true);
    assert.equal(current('https://other.example', next.config.upstream), true);
    assert.equal(current('https://other.example', gh(next) as never), false);
  });
});

describe('RuntimeRef', () => {
  it('derives once per runtime, prepares a candidate before the swap, and tells listeners after it', () => {
    const first = compile({ ...base, allow: ['10.0.0.0/8'] });
    const ref = createRuntimeRef(first);
    let builds = 0;
    const egressFor = ref.derive((rt) => {
      builds++;
      return createEgressPolicy({ allow: rt.config.allow, routes: rt.routes });
    });
    assert.equal(egressFor().allowsLiteral('10.1.2.3'), '10.0.0.0/8');
    assert.equal(egressFor(), egressFor());
    assert.equal(builds, 1);

    const seen: string[][] = [];
    ref.onChange((next, previous) => {
      assert.equal(previous, first);
      seen.push(next.routes.map((r) => r.name));
    });
    const second = compile({ routes: [{ name: 'gh', origin: 'https://api.github.com' }] });
    ref.prepare(second);
    assert.equal(builds, 2);
    assert.equal(ref.current(), first, 'prepare does not swap');
    ref.swap(second);
    assert.equal(ref.current(), second);
    assert.equal(egressFor().allowsLiteral('10.1.2.3'), null);
    assert.equal(builds, 2, 'prepared, not rebuilt');
    assert.deepEqual(seen, [['gh']]);
  });

  it('a builder that refuses the candidate throws from prepare, and nothing is swapped', () => {
    const first = compile(base);
    const ref = createRuntimeRef(first);
    ref.derive((rt) => {
      if (rt.routes.length === 0) throw new ConfigError(['routes: at least one route is needed here']);
      return rt.routes.length;
    });
    assert.throws(() => ref.prepare(compile({})), ConfigError);
    assert.equal(ref.current(), first);
  });
});
