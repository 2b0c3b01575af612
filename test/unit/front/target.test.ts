import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileHostMatcher, compileRuntime } from '../../../src/config/runtime.js';
import { SidecacheError } from '../../../src/errors.js';
import { createTargetMemo, resolveTarget } from '../../../src/front/target.js';

const runtime = compileRuntime(
  parseConfig({
    routes: [
      { name: 'github', origin: 'https://api.github.com' },
      { name: 'gh-uploads', origin: 'https://uploads.github.com', prefix: '/github/uploads/' },
      { name: 'users', origin: 'http://users.test:8000/api', hosts: ['users.internal'] },
    ],
  }),
);

describe('resolveTarget', () => {
  const cases: Array<[string, string, string | undefined, string, string | null]> = [
    [
      'prefix stripped',
      '/github/repos/a/b?page=2',
      undefined,
      'https://api.github.com/repos/a/b?page=2',
      'github',
    ],
    ['longest prefix wins', '/github/uploads/x', undefined, 'https://uploads.github.com/x', 'gh-uploads'],
    ['bare prefix', '/github', undefined, 'https://api.github.com/', 'github'],
    ['bare prefix with query', '/github?x=1', undefined, 'https://api.github.com/?x=1', 'github'],
    ['origin base path prepended', '/users/v1/me', undefined, 'http://users.test:8000/api/v1/me', 'users'],
    ['Host route keeps path', '/v1/me', 'users.internal:8080', 'http://users.test:8000/api/v1/me', 'users'],
    [
      'Host route is case-insensitive',
      '/v1/me',
      'USERS.internal',
      'http://users.test:8000/api/v1/me',
      'users',
    ],
    [
      'forward to route origin',
      'https://api.github.com/rate_limit',
      undefined,
      'https://api.github.com/rate_limit',
      'github',
    ],
    ['forward elsewhere', 'http://example.com/x', undefined, 'http://example.com/x', null],
  ];
  for (const [name, raw, host, url, route] of cases) {
    it(name, () => {
      const t = resolveTarget(raw, host, runtime);
      assert.equal(t.url.href, url);
      assert.equal(t.route?.name ?? null, route);
      assert.equal(t.mode, raw.startsWith('/') ? 'route' : 'forward');
    });
  }

  const refused: Array<[string, string, string]> = [
    ['unknown prefix', '/nope/x', 'SC_ERR_NO_ROUTE'],
    ['a prefix lookalike', '/githubx/y', 'SC_ERR_NO_ROUTE'],
    ['dot segments', '/github/../admin', 'SC_ERR_BAD_REQUEST'],
    ['encoded dot segments', '/github/%2e%2e/admin', 'SC_ERR_BAD_REQUEST'],
    ['asterisk form', '*', 'SC_ERR_BAD_REQUEST'],
    ['credentials in URL', 'http://u:p@example.com/', 'SC_ERR_BAD_REQUEST'],
    ['too long', `/github/${'x'.repeat(9000)}`, 'SC_ERR_URI_TOO_LONG'],
  ];
  for (const [name, raw, code] of refused) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => resolveTarget(raw, undefined, runtime),
        (err: unknown) => err instanceof SidecacheError && err.code === code,
      );
    });
  }
});

describe('compileHostMatcher', () => {
  it('matches exact names, wildcard suffixes and *', () => {
    const m = compileHostMatcher(['api.example.com', '*.example.org']);
    assert.equal(m('API.example.com.'), 'api.example.com');
    assert.equal(m('a.b.example.org'), '*.example.org');
    assert.equal(m('example.org'), null);
    assert.equal(m('evil-example.org'), null);
    assert.equal(compileHostMatcher(['*'])('anything.test'), '*');
  });
});

describe('createTargetMemo', () => {
  it('remembers a target from the second time it is asked for, not the first', () => {
    const targetOf = createTargetMemo();
    const first = targetOf('/github/repos/a/b', undefined, undefined, runtime);
    const second = targetOf('/github/repos/a/b', undefined, undefined, runtime);
    const third = targetOf('/github/repos/a/b', undefined, undefined, runtime);
    assert.notEqual(first, second, 'asked for once: not remembered');
    assert.equal(second, third, 'asked for twice: remembered');
    assert.equal(third.url.href, 'https://api.github.com/repos/a/b');
    assert.equal(third.route?.name, 'github');
  });

  it('does not let targets asked for once push out remembered ones', () => {
    const targetOf = createTargetMemo(2);
    targetOf('/github/a', undefined, undefined, runtime);
    const a = targetOf('/github/a', undefined, undefined, runtime);
    for (let i = 0; i < 100; i++) targetOf(`/github/distinct/${i}`, undefined, undefined, runtime);
    assert.equal(targetOf('/github/a', undefined, undefined, runtime), a);
  });

  it('keeps Host-routed targets apart by Host, and starts afresh with a new runtime', () => {
    const targetOf = createTargetMemo();
    for (let i = 0; i < 2; i++) targetOf('/v1/me', 'users.internal', undefined, runtime);
    const viaHost = targetOf('/v1/me', 'users.internal', undefined, runtime);
    assert.equal(viaHost.route?.name, 'users');
    assert.throws(() => targetOf('/v1/me', 'other.example', undefined, runtime), SidecacheError);
    const next = compileRuntime(
      parseConfig({ routes: [{ name: 'users', origin: 'http://elsewhere.test' }] }),
    );
    for (let i = 0; i < 3; i++) {
      const t = targetOf('/users/v1/me', undefined, undefined, next);
      assert.equal(t.url.href, 'http://elsewhere.test/v1/me');
    }
  });
});
