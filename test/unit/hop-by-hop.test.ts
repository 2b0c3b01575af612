import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as undici from 'undici';
import { appendHeader, endToEndHeaders, endToEndRawHeaders } from '../../src/hop-by-hop.js';

/** A head as undici's HTTP/1.1 parser hands it to a handler: names and values as Buffers. */
const raw = (...fields: string[]): Buffer[] => fields.map((f) => Buffer.from(f, 'latin1'));

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

  it('builds the end-to-end headers of a raw head as undici parses and endToEndHeaders copies them', () => {
    const heads: (Buffer | string | (Buffer | string)[])[][] = [
      raw(
        'Content-Type',
        'application/json',
        'Content-Length',
        '2048',
        'ETag',
        '"v1"',
        'Connection',
        'keep-alive',
        'Keep-Alive',
        'timeout=5',
      ),
      raw(
        'Set-Cookie',
        'a=1',
        'X-Trace-Hop',
        '1',
        'set-cookie',
        'b=2',
        'SET-COOKIE',
        'c=3',
        'Connection',
        'X-Trace-Hop, close',
        'X-Keep',
        'yes',
      ),
      raw(
        'Via',
        '1.1 a',
        'Transfer-Encoding',
        'chunked',
        'Trailer',
        'x-sum',
        'Upgrade',
        'h2c',
        'Proxy-Connection',
        'x',
        'Vary',
        'accept-encoding',
      ),
      raw(
        'constructor',
        'c',
        'toString',
        't',
        'X-Caf\xe9',
        'caf\xe9',
        'Connection',
        'one',
        'Connection',
        'two',
        'One',
        '1',
        'Two',
        '2',
        'Three',
        '3',
      ),
      // HTTP/2: names and values as strings, a value may be a list, pseudo-headers describe the stream.
      [':status', '200', 'content-type', 'text/plain', 'set-cookie', ['a=1', 'b=2'], 'x-b', Buffer.from('b')],
    ];
    for (const head of heads) {
      const parsed = undici.util.parseHeaders(head as Buffer[]);
      assert.deepEqual(endToEndRawHeaders(head), { ...endToEndHeaders(parsed) });
    }
    assert.deepEqual(endToEndRawHeaders(heads[1] as Buffer[]), {
      'set-cookie': ['a=1', 'b=2', 'c=3'],
      'x-keep': 'yes',
    });
    assert.deepEqual(endToEndRawHeaders(heads[3] as Buffer[]), {
      constructor: 'c',
      tostring: 't',
      'x-caf\xe9': 'caf\xe9',
      three: '3',
    });
  });

  it('leaves out a field named __proto__ (a copy could not keep it) and keeps the prototype', () => {
    const out = endToEndRawHeaders(raw('__proto__', 'x', 'X-A', '1'));
    assert.deepEqual(out, { 'x-a': '1' });
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
  });
});
