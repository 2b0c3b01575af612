import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCidr, rangeOfText } from '../../../src/address-ranges.js';
import { createEgressPolicy } from '../../../src/guard/egress-policy.js';

describe('special-purpose address ranges (RFC 6890 registries)', () => {
  const table: [string, string][] = [
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.51.100.1', 'documentation'],
    ['203.0.113.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['fd00::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link_local'],
    ['::ffff:8.8.8.8', 'public'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['2001:db8::1', 'documentation'],
    ['2001::1', 'reserved'],
    ['2606:4700::1111', 'public'],
    ['[::1]', 'loopback'],
    ['not-an-ip', 'reserved'],
  ];
  for (const [address, range] of table) {
    it(`${address} is ${range}`, () => assert.equal(rangeOfText(address), range));
  }

  it('parses CIDR blocks and bare addresses, refuses nonsense', () => {
    assert.equal(parseCidr('10.0.0.0/8')?.bits, 8);
    assert.equal(parseCidr('127.0.0.1')?.text, '127.0.0.1/32');
    assert.equal(parseCidr('::1/128')?.bits, 128);
    assert.equal(parseCidr('10.0.0.0/33'), null);
    assert.equal(parseCidr('10.0.0/8'), null);
  });
});

describe('egress policy', () => {
  const policy = createEgressPolicy({
    allow: ['api.example.com', '10.0.0.0/8', '::1/128'],
    routes: [{ origin: 'http://127.0.0.1:8000' }, { origin: 'http://user-service:8080' }],
  });

  it('public addresses pass; private ones only inside an allow block', () => {
    assert.equal(policy.refusal('a', '93.184.216.34'), null);
    assert.equal(policy.refusal('a', '10.9.9.9'), null);
    assert.equal(policy.refusal('a', '::1'), null);
    assert.equal(policy.refusal('a', '192.168.0.1')?.reason, 'guard_private_address');
    assert.equal(policy.refusal('a', '127.0.0.1')?.code, 'SC_ERR_EGRESS_DENIED');
  });

  it("a route origin's IP literal is allowed on its own port only", () => {
    assert.doesNotThrow(() => policy.checkLiteral('127.0.0.1', 8000));
    assert.throws(() => policy.checkLiteral('127.0.0.1', 22), { reason: 'guard_private_address' });
    assert.doesNotThrow(() => policy.checkLiteral('api.example.com', 22));
  });

  it('the wrapped lookup drops refused addresses and fails when none is left', async () => {
    const answers = [
      { address: '127.0.0.1', family: 4 },
      { address: '93.184.216.34', family: 4 },
    ];
    const lookup = policy.lookupTo(
      ((_h: string, _o: unknown, cb: (e: null, a: unknown) => void) => cb(null, answers)) as never,
      443,
    );
    const one = await new Promise((resolve) =>
      lookup('mixed.test', { all: false }, (_err, address) => resolve(address)),
    );
    assert.equal(one, '93.184.216.34');
    answers.pop();
    const err = await new Promise((resolve) => lookup('mixed.test', { all: true }, (e) => resolve(e)));
    assert.equal((err as { reason: string }).reason, 'guard_private_address');
  });

  it("a route origin's own name and port resolve unfiltered; other names and ports stay filtered", async () => {
    const base = ((_h: string, _o: unknown, cb: (e: null, a: unknown) => void) =>
      cb(null, [{ address: '172.18.0.4', family: 4 }])) as never;
    const resolve = (host: string, port: number) =>
      new Promise<{ err: unknown; address: unknown }>((done) =>
        policy.lookupTo(base, port)(host, { all: true }, (err, address) => done({ err, address })),
      );
    assert.equal(policy.isRouteOrigin('user-service', 8080), true);
    const own = await resolve('user-service', 8080);
    assert.equal(own.err, null);
    assert.deepEqual(own.address, [{ address: '172.18.0.4', family: 4 }]);
    for (const [host, port] of [
      ['user-service', 22],
      ['user-service.', 8080],
      ['other-service', 8080],
    ] as const) {
      const refused = await resolve(host, port);
      assert.equal((refused.err as { reason: string }).reason, 'guard_private_address', `${host}:${port}`);
    }
  });
});
