import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { orderAddresses, recordTypesFor, requestedFamily } from '../../../src/dns/address-order.js';

describe('recordTypesFor', () => {
  test('configured order when the caller asks for any family', () => {
    assert.deepEqual(recordTypesFor('ipv4first', 0), ['A', 'AAAA']);
    assert.deepEqual(recordTypesFor('ipv6first', 0), ['AAAA', 'A']);
    assert.deepEqual(recordTypesFor('ipv4only', 0), ['A']);
    assert.deepEqual(recordTypesFor('ipv6only', 0), ['AAAA']);
  });
  test("a caller's family narrows, never widens", () => {
    assert.deepEqual(recordTypesFor('ipv6first', 4), ['A']);
    assert.deepEqual(recordTypesFor('ipv4only', 6), []);
  });
});

describe('orderAddresses', () => {
  const mixed = [
    { address: 'fd00::1', family: 6 as const },
    { address: '10.0.0.1', family: 4 as const },
    { address: '10.0.0.2', family: 4 as const },
  ];
  test('ipv4first keeps the written order within a family', () => {
    assert.deepEqual(
      orderAddresses(mixed, 'ipv4first', 0).map((a) => a.address),
      ['10.0.0.1', '10.0.0.2', 'fd00::1'],
    );
  });
  test('ipv6only drops IPv4', () => {
    assert.deepEqual(
      orderAddresses(mixed, 'ipv6only', 0).map((a) => a.address),
      ['fd00::1'],
    );
  });
});

test('requestedFamily reads Node lookup options', () => {
  assert.equal(requestedFamily(4), 4);
  assert.equal(requestedFamily('IPv6'), 6);
  assert.equal(requestedFamily(undefined), 0);
  assert.equal(requestedFamily(0), 0);
});
