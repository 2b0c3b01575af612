/**
 * Interim (1xx) responses from the origin (RFC 9110 §15.2): relayed to HTTP/1.1 clients before the
 * final response, never taken for the final response, never stored with it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startOrigin, type TestOrigin } from '../helpers/origin.js';
import { startTestSidecache, type TestSidecache } from '../helpers/sidecache.js';
import { sendRaw } from '../security/raw-http.js';

interface Interim {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
}

/** GET through sidecache with node:http, collecting 1xx responses ('information' events). */
function get(
  url: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; interim: Interim[] }> {
  return new Promise((resolve, reject) => {
    const interim: Interim[] = [];
    const req = http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, interim }));
      res.on('error', reject);
    });
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
    req.on('error', reject);
  });
}

describe('interim responses', () => {
  let origin: TestOrigin;
  let sc: TestSidecache;
  before(async () => {
    origin = await startOrigin((_req, res) => {
      res.writeProcessing();
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style', 'x-hint': 'early' });
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-type': 'text/plain' });
      res.end('final');
    });
    sc = await startTestSidecache({ routes: [{ name: 'o', origin: origin.url }] });
  });
  after(async () => {
    await sc.close();
    await origin.close();
  });

  it('relays 102 and 103 before the final response; the final response is stored without their fields', async () => {
    const first = await get(`${sc.url}/o/a`);
    assert.equal(first.status, 200);
    assert.equal(first.text, 'final');
    assert.deepEqual(
      first.interim.map((i) => i.status),
      [102, 103],
    );
    assert.equal(first.interim[1]?.headers.link, '</style.css>; rel=preload; as=style');
    assert.equal(first.interim[1]?.headers['x-hint'], 'early');
    assert.equal(first.headers.link, undefined);

    const second = await get(`${sc.url}/o/a`);
    assert.equal(second.status, 200);
    assert.equal(second.text, 'final');
    assert.match(String(second.headers['cache-status']), /hit/);
    assert.deepEqual(second.interim, [], 'a hit has no interim responses to relay');
    assert.equal(second.headers.link, undefined);
    assert.equal(second.headers['x-hint'], undefined);
    assert.equal(origin.requests.length, 1);
  });

  it('an HTTP/1.0 client gets no interim response (RFC 9110 §15.2)', async () => {
    const port = new URL(sc.url).port;
    const r = await sendRaw(Number(port), `GET /o/b HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    assert.equal(r.status, 200);
    assert.match(r.raw, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(r.raw, /HTTP\/1\.1 10[23]/);
    assert.equal(r.body, 'final');
  });
});
