import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { compileHostMatcher, compileRuntime } from '../../../src/config/runtime.js';
import { SidecacheError } from '../../../src/errors.js';
import { resolveTarget } from '../../../src/front/target.js';

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
