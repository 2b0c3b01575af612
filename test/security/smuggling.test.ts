/**
 * Request smuggling and cache poisoning, on raw TCP (a client library would fix the bytes). Each
 * case: what Node's strict parser already refuses, and what sidecache adds (a second Host,
 * Transfer-Encoding on HTTP/1.0), answered 400 before anything reaches the origin; unkeyed headers
 * stripped before forwarding; paths that would climb out of a route refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readBody, startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { sendRaw } from './raw-http.js';

let origin: TestOrigin;
let sc: TestSidecache;
let port: number;

before(async () => {
  origin = await startOrigin(async (req, res) => {
    const body = await readBody(req);
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'max-age=60');
    res.end(
      JSON.stringify({ url: req.url, method: req.method, headers: req.headers, body: body.toString() }),
    );
  });
  sc = await startTestSidecache({ routes: [{ name: 'api', origin: `${origin.url}/base` }] });
  port = Number(new URL(sc.url).port);
});
after(async () => {
  await sc.close();
  await origin.close();
});

const H = 'Host: sidecache\r\n';

describe('request smuggling: refused with 400, never forwarded', () => {
  const cases: [string, string][] = [
    [
      'Content-Length and Transfer-Encoding',
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
    [
      'duplicate identical Content-Length',
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
    ],
    [
      'duplicate differing Content-Length',
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx`,
    ],
    ['Content-Length as a list', `POST /api/x HTTP/1.1\r\n${H}Content-Length: 1, 1\r\n\r\nx`],
    ['invalid Content-Length (+1)', `POST /api/x HTTP/1.1\r\n${H}Content-Length: +1\r\n\r\nx`],
    [
      'Transfer-Encoding other than chunked',
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`,
    ],
    [
      'Transfer-Encoding: chunked, identity',
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
    ],
    [
      'Transfer-Encoding with space before the colon',
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
    ],
    ['obs-fold', `GET /api/x HTTP/1.1\r\n${H}X-A: b\r\n c\r\n\r\n`],
    ['bare LF in the headers', `GET /api/x HTTP/1.1\r\n${H.trimEnd()}\nX-B: c\r\n\r\n`],
    ['bare CR in the headers', `GET /api/x HTTP/1.1\r\n${H.trimEnd()}\rX-B: c\r\n\r\n`],
    ['invalid header name (space)', `GET /api/x HTTP/1.1\r\n${H}X A: b\r\n\r\n`],
    ['NUL in a header value', `GET /api/x HTTP/1.1\r\n${H}X-A: b\x00c\r\n\r\n`],
    [
      'bare LF in a chunk extension',
      `POST /api/x HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;a\nx\r\n0\r\n\r\n`,
    ],
    ['lowercase method', `get /api/x HTTP/1.1\r\n${H}\r\n`],
    ['mixed-case method', `Get /api/x HTTP/1.1\r\n${H}\r\n`],
    ['a method with a character outside the token set', `G{T /api/x HTTP/1.1\r\n${H}\r\n`],
    ['two Host headers (sidecache check)', `GET /api/x HTTP/1.1\r\n${H}Host: evil.example\r\n\r\n`],
    [
      'Transfer-Encoding on HTTP/1.0 (sidecache check)',
      `POST /api/x HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    ],
  ];
  for (const [name, bytes] of cases) {
    it(name, async () => {
      const before = origin.requests.length;
      const res = await sendRaw(port, bytes);
      assert.equal(res.status, 400, res.raw);
      assert.equal(res.json().error, 'SC_ERR_BAD_REQUEST');
      assert.equal(origin.requests.length, before, 'nothing reached the origin');
    });
  }

  it('a lowercase method after a first request on a kept-alive connection: 200, then 400', async () => {
    const before = origin.requests.length;
    const res = await sendRaw(
      port,
      `GET /api/first HTTP/1.1\r\n${H}\r\nget /api/second HTTP/1.1\r\n${H}\r\n`,
    );
    const statuses = [...res.raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '400'], res.raw);
    assert.match(res.raw, /"error":"SC_ERR_BAD_REQUEST"/);
    assert.equal(origin.requests.length, before + 1, 'only the first request reached the origin');
  });

  it('a smuggled second request after a CL+TE body never reaches the origin', async () => {
    const before = origin.requests.length;
    const res = await sendRaw(
      port,
      `POST /api/x HTTP/1.1\r\n${H}Content-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\n${H}\r\n`,
    );
    assert.equal(res.status, 400);
    assert.equal(res.raw.match(/HTTP\/1\.1/g)?.length, 1, 'exactly one response');
    assert.equal(origin.requests.length, before);
  });
});

describe('cache poisoning', () => {
  it('unkeyed headers that change the origin response are stripped before forwarding', async () => {
    const res = await sendRaw(
      port,
      `GET /api/unkeyed HTTP/1.1\r\n${H}X-Forwarded-Host: evil.example\r\nX-Original-URL: /admin\r\n` +
        'X-Rewrite-URL: /admin\r\nX-HTTP-Method-Override: DELETE\r\nX-HTTP-Method: DELETE\r\n' +
        `X-Method-Override: DELETE\r\nX-Kept: yes\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, 200, res.raw);
    const seen = res.json().headers as Record<string, string>;
    for (const h of [
      'x-forwarded-host',
      'x-original-url',
      'x-rewrite-url',
      'x-http-method-override',
      'x-http-method',
      'x-method-override',
    ]) {
      assert.equal(seen[h], undefined, `${h} reached the origin`);
    }
    assert.equal(seen['x-kept'], 'yes');
  });

  for (const path of [
    '/api/..%2f..%2fadmin',
    '/api/%2e%2e%2fadmin',
    '/api/..\\admin',
    '/api/x/%2E%2E%5Cadmin',
    '/api/../admin',
  ]) {
    it(`a path that climbs out of the route is refused: ${path}`, async () => {
      const before = origin.requests.length;
      const res = await sendRaw(port, `GET ${path} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`);
      assert.equal(res.status, 400, res.raw);
      assert.equal(origin.requests.length, before);
    });
  }

  it('an encoded slash inside a segment is kept encoded (its own cache key), not decoded', async () => {
    const res = await sendRaw(
      port,
      `GET /api/group%2Fproject/issues HTTP/1.1\r\n${H}Connection: close\r\n\r\n`,
    );
    assert.equal(res.status, 200, res.raw);
    assert.equal(res.json().url, '/base/group%2Fproject/issues');
  });
});
