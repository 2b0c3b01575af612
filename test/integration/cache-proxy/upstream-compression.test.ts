/**
 * Upstream compression (issue 11) through the real proxy: sidecache asks the origin for
 * `br, gzip`, stores the coded body, and serves an identity client, a gzip client and a br client
 * byte-exact bodies with correct headers. Real origin (counting requests), real node:http client
 * (which never decodes: the bytes compared are the bytes on the wire).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { WHOLE_DECODE_MAX_CODED } from '../../../src/cache/compression.js';
import { send } from '../../helpers/client.js';
import { type Origin, startOrigin } from '../../helpers/counting-origin.js';
import { startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';
import { requireTool } from '../../helpers/system-tool.js';

const run = promisify(execFile);

/** ~50 KB of JSON, like a page of an API's list endpoint. */
const JSON_BODY = Buffer.from(
  JSON.stringify(
    Array.from({ length: 400 }, (_, i) => ({
      id: i,
      name: `repository-${i}`,
      full_name: `example/repository-${i}`,
      private: i % 7 === 0,
      stargazers_count: (i * 37) % 1000,
      topics: ['api', 'cache', `t${i % 13}`],
    })),
  ),
);
const GZIP = gzipSync(JSON_BODY);
/** Incompressible bytes: their gzip form is larger than WHOLE_DECODE_MAX_CODED. */
const BIG_BODY = randomBytes(64 * 1024);
const BIG_GZIP = gzipSync(BIG_BODY);
const BR = brotliCompressSync(JSON_BODY);

function accepted(req: IncomingMessage): string {
  return String(req.headers['accept-encoding'] ?? '');
}

/**
 * Answered from the cache: a hit, or collapsed onto the fill when the store (after its decode
 * check) had not finished yet when the next request arrived.
 */
const FROM_CACHE = /^sidecache; (hit|fwd=uri-miss; .*collapsed)/;

function cacheStatus(r: { headers: Record<string, unknown> }): string {
  return String(r.headers['cache-status'] ?? '');
}

describe('upstream compression through the proxy', () => {
  let origin: Origin;
  let sc: TestSidecache;

  before(async () => {
    origin = await startOrigin((req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0] as string;
      const ae = accepted(req);
      const cc = path.startsWith('/nostore') ? 'no-store' : 'max-age=60';
      if (path.startsWith('/ignores')) {
        // An origin that ignores Accept-Encoding altogether.
        res
          .writeHead(200, {
            'cache-control': cc,
            'content-type': 'application/json',
            'content-length': JSON_BODY.length,
          })
          .end(JSON_BODY);
        return;
      }
      if (path.startsWith('/corrupt')) {
        // A gzip header, then garbage: decoding fails partway.
        const bad = Buffer.concat([GZIP.subarray(0, 40), Buffer.alloc(4000, 0x41)]);
        res.writeHead(200, { 'cache-control': cc, 'content-encoding': 'gzip', 'content-length': bad.length });
        res.end(bad);
        return;
      }
      // Gzip when asked for: /big is coded larger than the one-step decode bound (it streams),
      // /novary does not say Vary: Accept-Encoding.
      const gzipWhenAsked: Record<string, [Buffer, Buffer, Record<string, string>]> = {
        '/big': [BIG_BODY, BIG_GZIP, { 'content-type': 'application/octet-stream', vary: 'Accept-Encoding' }],
        '/novary': [JSON_BODY, GZIP, { 'content-type': 'application/json' }],
      };
      const plain = gzipWhenAsked[`/${path.split('/')[1]}`];
      if (plain !== undefined) {
        const [identityBody, gzipBody, fields] = plain;
        const coded = ae.includes('gzip');
        const body = coded ? gzipBody : identityBody;
        res.writeHead(200, {
          'cache-control': cc,
          ...fields,
          ...(coded ? { 'content-encoding': 'gzip' } : {}),
          'content-length': body.length,
        });
        res.end(body);
        return;
      }
      // /gzip prefers gzip, /br prefers br; both honour what was asked.
      const order = path.startsWith('/br') ? ['br', 'gzip'] : ['gzip', 'br'];
      const coding = order.find((c) => ae.includes(c));
      const headers: Record<string, string | number> = {
        'cache-control': cc,
        'content-type': 'application/json',
        vary: 'Accept-Encoding',
        etag: '"v1"',
        'accept-ranges': 'bytes',
      };
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': cc, vary: 'Accept-Encoding' }).end();
        return;
      }
      const body = coding === 'gzip' ? GZIP : coding === 'br' ? BR : JSON_BODY;
      if (coding !== undefined) headers['content-encoding'] = coding;
      headers['content-length'] = body.length;
      res.writeHead(200, headers).end(body);
    });
    sc = await startTestSidecache({ routes: [{ name: 'r', origin: origin.url }] });
  });
  after(async () => {
    await sc?.close();
    await origin?.close();
  });

  it('asks for br, gzip for an identity client, stores the gzip body, and decodes it for that client', async () => {
    const identity = await send(sc.url, '/r/gzip/a');
    assert.equal(origin.seen.at(-1)?.headers['accept-encoding'], 'br, gzip');
    assert.equal(identity.status, 200);
    assert.ok(identity.body.equals(JSON_BODY), 'identity client gets the decoded bytes');
    assert.equal(identity.headers['content-encoding'], undefined);
    // A small coded body is decoded in one step: sent with its decoded length.
    assert.equal(identity.headers['content-length'], String(JSON_BODY.length));
    assert.equal(identity.headers['transfer-encoding'], undefined);
    assert.equal(identity.headers['accept-ranges'], undefined);
    assert.equal(identity.headers.etag, 'W/"v1"', 'the decoded form does not claim the strong ETag');
    assert.match(String(identity.headers.vary), /accept-encoding/i);
    assert.match(cacheStatus(identity), /fwd=uri-miss; fwd-status=200; ttl=\d+$/);

    const gzip = await send(sc.url, '/r/gzip/a', { headers: { 'accept-encoding': 'gzip' } });
    assert.match(cacheStatus(gzip), FROM_CACHE);
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.equal(gzip.headers['content-length'], String(GZIP.length));
    assert.equal(gzip.headers.etag, '"v1"');
    assert.match(String(gzip.headers.vary), /accept-encoding/i);
    assert.ok(gzip.body.equals(GZIP), 'gzip client gets the stored bytes as they are');
    assert.ok(gunzipSync(gzip.body).equals(JSON_BODY));

    // A br-only client cannot read the stored gzip: decoded for it too.
    const brOnly = await send(sc.url, '/r/gzip/a', { headers: { 'accept-encoding': 'br' } });
    assert.match(cacheStatus(brOnly), FROM_CACHE);
    assert.equal(brOnly.headers['content-encoding'], undefined);
    assert.ok(brOnly.body.equals(JSON_BODY));
    // gzip;q=0 refuses gzip even with a wildcard.
    const refuses = await send(sc.url, '/r/gzip/a', { headers: { 'accept-encoding': 'gzip;q=0, *' } });
    assert.equal(refuses.headers['content-encoding'], undefined);
    assert.ok(refuses.body.equals(JSON_BODY));
    assert.equal(origin.count('/gzip/a'), 1, 'one origin request for every client');
  });

  it('serves a stored br body to a br client as it is, and decoded to others', async () => {
    const br = await send(sc.url, '/r/br/a', { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-length'], String(BR.length));
    assert.ok(br.body.equals(BR));
    assert.ok(brotliDecompressSync(br.body).equals(JSON_BODY));
    const identity = await send(sc.url, '/r/br/a');
    assert.match(cacheStatus(identity), FROM_CACHE);
    assert.ok(identity.body.equals(JSON_BODY));
    assert.equal(identity.headers['content-encoding'], undefined);
    const head = await send(sc.url, '/r/br/a', { method: 'HEAD' });
    assert.equal(head.headers['content-encoding'], undefined);
    assert.equal(head.headers['content-length'], undefined);
    assert.equal(origin.count('/br/a'), 1);
  });

  it('a coded body past the one-step bound is decoded as a stream, on the miss and on hits', async () => {
    assert.ok(BIG_GZIP.length > WHOLE_DECODE_MAX_CODED, `gzip form is ${BIG_GZIP.length} bytes`);
    for (let i = 0; i < 3; i++) {
      const r = await send(sc.url, '/r/big/a');
      assert.ok(r.body.equals(BIG_BODY), `request ${i}`);
      assert.equal(r.headers['content-encoding'], undefined);
      assert.equal(r.headers['content-length'], undefined);
      assert.equal(r.headers['transfer-encoding'], 'chunked');
      if (i > 0) assert.match(cacheStatus(r), FROM_CACHE);
    }
    const coded = await send(sc.url, '/r/big/a', { headers: { 'accept-encoding': 'gzip' } });
    assert.ok(coded.body.equals(BIG_GZIP));
    assert.equal(origin.count('/big/a'), 1);
  });

  it('hits carry Vary: Accept-Encoding even when the origin did not send it, coded or decoded, with their lengths', async () => {
    await send(sc.url, '/r/novary/a', { headers: { 'accept-encoding': 'gzip' } });
    for (let i = 0; i < 3; i++) {
      const coded = await send(sc.url, '/r/novary/a', { headers: { 'accept-encoding': 'gzip' } });
      assert.match(cacheStatus(coded), FROM_CACHE);
      assert.equal(coded.headers['content-encoding'], 'gzip');
      assert.match(String(coded.headers.vary), /accept-encoding/i, 'coded hit');
      assert.ok(coded.body.equals(GZIP));
      const identity = await send(sc.url, '/r/novary/a');
      assert.match(cacheStatus(identity), FROM_CACHE);
      assert.equal(identity.headers['content-encoding'], undefined);
      assert.equal(identity.headers['content-length'], String(JSON_BODY.length));
      assert.match(String(identity.headers.vary), /accept-encoding/i, 'decoded hit');
      assert.ok(identity.body.equals(JSON_BODY));
      const head = await send(sc.url, '/r/novary/a', { method: 'HEAD' });
      assert.equal(head.headers['content-encoding'], undefined);
      assert.match(String(head.headers.vary), /accept-encoding/i, 'decoded HEAD');
    }
    assert.equal(origin.count('/novary/a'), 1);
  });

  it('clients that take the coding and clients that do not, interleaved on one entry, each get theirs', async () => {
    // The stage keeps, per entry, the last Accept-Encoding it judged: alternating values must
    // never carry one client's answer over to the next.
    await send(sc.url, '/r/gzip/mixed', { headers: { 'accept-encoding': 'gzip' } });
    const sequence = [
      'gzip',
      undefined,
      'gzip',
      'gzip',
      'gzip;q=0, *',
      'br',
      'gzip, deflate',
      undefined,
      'gzip',
    ];
    for (const ae of [...sequence, ...sequence]) {
      const r = await send(
        sc.url,
        '/r/gzip/mixed',
        ae === undefined ? {} : { headers: { 'accept-encoding': ae } },
      );
      assert.match(cacheStatus(r), FROM_CACHE, `${ae}`);
      const takesGzip = ae === 'gzip' || ae === 'gzip, deflate';
      if (takesGzip) {
        assert.equal(r.headers['content-encoding'], 'gzip', `${ae}`);
        assert.equal(r.headers['content-length'], String(GZIP.length));
        assert.ok(r.body.equals(GZIP), `${ae}: the stored bytes`);
      } else {
        assert.equal(r.headers['content-encoding'], undefined, `${ae}`);
        assert.ok(r.body.equals(JSON_BODY), `${ae}: decoded`);
      }
      assert.match(String(r.headers.vary), /accept-encoding/i);
    }
    assert.equal(origin.count('/gzip/mixed'), 1);
  });

  it("answers an identity client's weak If-None-Match with 304 and no coding metadata", async () => {
    await send(sc.url, '/r/gzip/cond');
    const r = await send(sc.url, '/r/gzip/cond', { headers: { 'if-none-match': 'W/"v1"' } });
    assert.equal(r.status, 304);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.equal(r.headers.etag, 'W/"v1"');
  });

  it('an origin that ignores Accept-Encoding still works: identity stored and served to everyone', async () => {
    const a = await send(sc.url, '/r/ignores', { headers: { 'accept-encoding': 'gzip' } });
    const b = await send(sc.url, '/r/ignores');
    for (const r of [a, b]) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], undefined);
      assert.equal(r.headers['content-length'], String(JSON_BODY.length));
      assert.ok(r.body.equals(JSON_BODY));
    }
    assert.match(cacheStatus(b), FROM_CACHE);
    assert.equal(origin.count('/ignores'), 1);
  });

  it('uncacheable responses are decoded for identity clients and passed coded to others', async () => {
    const identity = await send(sc.url, '/r/nostore');
    assert.ok(identity.body.equals(JSON_BODY));
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.match(cacheStatus(identity), /detail="not stored: no-store \(set ignoreNoStore with ttlMs\)"/);
    const gzip = await send(sc.url, '/r/nostore', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.ok(gzip.body.equals(GZIP));
    assert.equal(origin.count('/nostore'), 2);
  });

  it('a corrupt gzip body fails cleanly (connection destroyed, no clean short body) and is not cached', async () => {
    await assert.rejects(send(sc.url, '/r/corrupt'), (err: NodeJS.ErrnoException) => {
      assert.match(String(err.code ?? err.message), /ECONNRESET|aborted/i);
      return true;
    });
    // The bytes reached the client that accepts gzip as the origin sent them; nothing was stored.
    const gzip = await send(sc.url, '/r/corrupt', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.doesNotMatch(cacheStatus(gzip), /hit/);
    await send(sc.url, '/r/corrupt', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(origin.count('/corrupt'), 3, 'never served from the cache');
  });

  it('curl without --compressed gets identity bytes; with --compressed, a coding it decodes itself', async (t) => {
    const curl = requireTool(t, ['/usr/bin/curl', '/usr/local/bin/curl'], 'apt-get install -y curl');
    if (curl === null) return;
    const dir = await mkdtemp(join(tmpdir(), 'sc-compression-'));
    try {
      const plain = join(dir, 'plain');
      const head = await run(curl, ['-sS', '--fail', '-D', '-', '-o', plain, `${sc.url}/r/br/curl`]);
      assert.doesNotMatch(head.stdout, /content-encoding/i);
      assert.ok((await readFile(plain)).equals(JSON_BODY));
      const decoded = join(dir, 'decoded');
      const coded = await run(curl, [
        '-sS',
        '--fail',
        '--compressed',
        '-D',
        '-',
        '-o',
        decoded,
        `${sc.url}/r/br/curl`,
      ]);
      assert.match(coded.stdout, /content-encoding: (br|gzip)/i);
      assert.ok((await readFile(decoded)).equals(JSON_BODY));
      assert.equal(origin.count('/br/curl'), 1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports the bytes saved: compressed vs identity bytes in /metrics', async () => {
    const text = await (await fetch(`${sc.adminUrl}/metrics`)).text();
    const value = (name: string): number => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      assert.ok(m, `${name} in /metrics`);
      return Number(m[1]);
    };
    const coded = value('sidecache_upstream_compressed_bytes_total');
    const identity = value('sidecache_upstream_identity_bytes_total');
    assert.ok(coded > 0 && identity > 0);
    assert.ok(coded < identity / 3, `JSON compresses well: ${coded} of ${identity}`);
  });
});
