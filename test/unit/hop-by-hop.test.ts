import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { appendHeader, endToEndHeaders } from '../../src/hop-by-hop.js';

describe('hop-by-hop headers (RFC 9110 §7.6.1)', () => {
  it('drops the fixed hop-by-hop set and every header named by Connection', () => {
    const out = endToEndHeaders({
      connection: 'keep-alive, X-Trace-Hop, close',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic x',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'x-trace-hop': '1',
      'x-keep': 'yes',
      'set-cookie': ['a=1', 'b=2'],
    });
    assert.deepEqual(out, { 'x-keep': 'yes', 'set-cookie': ['a=1', 'b=2'] });
  });

  it('drops extra names on request and appends list values', () => {
    const out: Record<string, string | string[]> = endToEndHeaders(
      { host: 'x', expect: '100-continue', accept: '*/*' },
      new Set(['host', 'expect']),
    );
    assert.deepEqual({ ...out }, { accept: '*/*' });
    appendHeader(out, 'via', '1.1 a');
    appendHeader(out, 'via', '1.1 b');
    assert.equal(out.via, '1.1 a, 1.1 b');
  });
});
