/** Secondary keys (RFC 9111 §4.1) against a real origin that varies on request headers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cacheStatus, startHarness } from '../../helpers/cache-harness.js';
import { send } from '../../helpers/counting-origin.js';

test('§4.1 Vary: each variant is stored and served to matching requests only', async (t) => {
  const h = await startHarness(t, (req, res, n) =>
    send(
      res,
      200,
      { 'cache-control': 'max-age=100', vary: 'Accept-Language, Accept' },
      `${req.headers['accept-language'] ?? 'none'}|${req.headers['accept'] ?? 'none'}|${n}`,
    ),
  );
  const variants = [
    { 'accept-language': 'en', accept: 'application/json' },
    { 'accept-language': 'fr', accept: 'application/json' },
    { 'accept-language': 'en', accept: 'text/html' },
    {},
  ];
  const firsts: string[] = [];
  for (const headers of variants) {
    const r = await h.get('/v', { headers });
    firsts.push(r.text);
    await h.stage.idle();
  }
  assert.equal(h.origin.count('/v'), 4);
  assert.match(firsts[1]!, /^fr\|application\/json\|2$/);
  // Every variant again, in another order, whitespace changed: all hits, each with its own body.
  for (const [i, headers] of [...variants.entries()].reverse()) {
    const spaced = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, ` ${v} `]));
    const r = await h.get('/v', { headers: spaced });
    assert.equal(r.ex.cache?.outcome, 'hit', `variant ${i}`);
    assert.equal(r.text, firsts[i]);
  }
  assert.equal(h.origin.count('/v'), 4);
  const miss = await h.get('/v', { headers: { 'accept-language': 'de' } });
  assert.match(cacheStatus(miss), /fwd=vary-miss/);
});

test('§4.1 Vary: * never matches (not stored; later requests go straight to the origin)', async (t) => {
  const h = await startHarness(t, (_req, res, n) =>
    send(res, 200, { 'cache-control': 'max-age=100', vary: '*' }, `v${n}`),
  );
  const a = await h.get('/star');
  const b = await h.get('/star');
  assert.equal(a.text, 'v1');
  assert.equal(b.text, 'v2');
  assert.match(cacheStatus(a), /detail=vary-star/);
  assert.equal(b.ex.cache?.detail, 'hit-for-miss');
});

test('§4.1 Accept-Language is matched by meaning: case, order and weights; a stored language the request prefers most is reused', async (t) => {
  // The origin picks the first listed language it has (de or en) and labels the answer with it.
  const h = await startHarness(t, (req, res, n) => {
    const wanted = String(req.headers['accept-language'] ?? '')
      .split(',')
      .map((s) => s.split(';')[0]!.trim().toLowerCase());
    const lang = wanted.find((l) => l === 'de' || l === 'en') ?? 'en';
    send(
      res,
      200,
      { 'cache-control': 'max-age=100', vary: 'Accept-Language', 'content-language': lang },
      `${lang}${n}`,
    );
  });
  const first = await h.get('/l', { headers: { 'accept-language': 'de, en' } });
  assert.equal(first.text, 'de1');
  await h.stage.idle();
  for (const al of ['en, de', 'DE, eN', ' de ,en;q=1.0', 'fr;q=0.5, de;q=1.0']) {
    const r = await h.get('/l', { headers: { 'accept-language': al } });
    assert.equal(r.ex.cache?.outcome, 'hit', al);
    assert.equal(r.text, 'de1', al);
  }
  // Another favourite, a tie the origin may break either way, or no preference: the origin decides.
  for (const al of ['en;q=0.9, de;q=0.5', 'fr, de', 'de;q=0']) {
    const r = await h.get('/l', { headers: { 'accept-language': al } });
    assert.notEqual(r.ex.cache?.outcome, 'hit', al);
    await h.stage.idle();
  }
  assert.equal(h.origin.count('/l'), 4);
});
