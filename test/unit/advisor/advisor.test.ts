/**
 * The policy advisor's observation and rules (issue 22), driven through its stage and observer
 * with a hand-moved clock: templates, body comparison per cache key, the lifetime rules, no-store,
 * credentials, streamed bodies, bounded records.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { BodyHash, createAdvisor, KEY_SLOTS } from '../../../src/advisor/observe.js';
import { idLike, pathTemplate } from '../../../src/advisor/path-template.js';
import { advise } from '../../../src/advisor/suggest.js';
import { parseRouteCachePolicy } from '../../../src/cache/options.js';
import type { Route } from '../../../src/config/runtime.js';
import type { Exchange, ExchangeEnd, Reply } from '../../../src/exchange.js';
import { fnv1a } from '../../../src/hash.js';
import { makeExchange, manualClock, readReply } from '../../helpers/exchange.js';

function route(name: string, cache: unknown = {}): Route {
  return {
    name,
    origin: 'http://127.0.0.1:1',
    basePath: '',
    prefix: `/${name}/`,
    hosts: [],
    cache: parseRouteCachePolicy(cache),
  } as unknown as Route;
}

function harness(opts: { hashCapBytes?: number; maxTemplates?: number; seed?: number } = {}) {
  const clock = manualClock(1_000_000);
  const advisor = createAdvisor({ ...opts, now: clock.now });
  /** One exchange through the stage and the observer; the origin answers `answer`. */
  const call = async (
    r: Route,
    url: string,
    answer: { status?: number; headers?: Record<string, string>; body: string | Readable | null },
    init: { method?: string; auth?: string; upstreamMs?: number; stored?: boolean } = {},
  ): Promise<string> => {
    const ex = makeExchange(`http://127.0.0.1:1${url}`, {
      method: init.method ?? 'GET',
      route: r,
      headers: init.auth ? { authorization: init.auth } : {},
    });
    const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body;
    // As upstream/ does: every body chunk goes to the exchange's bodyTap and is counted.
    const upstream = async (up: Exchange): Promise<Reply> => {
      const info = { origin: up.origin, reusedConnection: false, retried: false, bodyBytes: 0 };
      up.originInfo = info;
      const seen = (chunk: Buffer): void => {
        info.bodyBytes += chunk.length;
        up.bodyTap?.update(chunk);
      };
      let replyBody: Reply['body'] = body;
      if (Buffer.isBuffer(body)) seen(body);
      else if (body !== null)
        replyBody = Readable.from(
          (async function* () {
            for await (const chunk of body) {
              seen(chunk as Buffer);
              yield chunk;
            }
          })(),
        );
      return {
        status: answer.status ?? 200,
        headers: answer.headers ?? {},
        body: replyBody,
        source: 'origin',
      };
    };
    const out = await advisor.stage(upstream)(ex);
    const text = (await readReply(out)).text;
    ex.timings.phases.upstream = init.upstreamMs ?? 100;
    if (init.stored) ex.cache = { outcome: 'miss', stored: true };
    const end: ExchangeEnd = {
      ex,
      status: out.status,
      bytes: text.length,
      replySource: 'origin',
      reply: out,
    };
    advisor.observe(end);
    return text;
  };
  return { clock, advisor, call };
}

describe('path templates', () => {
  it('collapse digits, UUIDs, hex and long tokens, keep names', () => {
    assert.equal(pathTemplate('/repos/1296269/42/issues'), '/repos/{}/{}/issues');
    assert.equal(pathTemplate('/v1/customers/cus_9s6XKzkNRiz8i3'), '/v1/customers/{}');
    assert.equal(pathTemplate('/objects/3f2c1a9be0d4'), '/objects/{}');
    assert.equal(pathTemplate('/u/123e4567-e89b-12d3-a456-426614174000/x'), '/u/{}/x');
    assert.equal(pathTemplate('/repos/octocat/hello-world'), '/repos/octocat/hello-world');
    assert.equal(pathTemplate('/v1/plans'), '/v1/plans');
    assert.equal(idLike('v1'), false);
    assert.equal(idLike('deadbeef'), false, 'hex without a digit is a word');
  });
});

describe('body hash', () => {
  const hashOf = (chunks: readonly Buffer[]): string => {
    const h = new BodyHash(1 << 20);
    for (const c of chunks) h.update(c);
    return `${h.hi()}:${h.lo()}`;
  };
  it('is the same for the same bytes however they are split and aligned, and differs when a byte differs', () => {
    const body = Buffer.from(Array.from({ length: 1031 }, (_, i) => (i * 7 + 3) & 0xff));
    const whole = hashOf([body]);
    // An unaligned copy (byteOffset 1) and splits at every offset of the first 9 bytes and beyond.
    const pool = Buffer.alloc(body.length + 1);
    body.copy(pool, 1);
    assert.equal(hashOf([pool.subarray(1)]), whole);
    for (const cut of [1, 2, 3, 4, 5, 7, 9, 513, 1030]) {
      assert.equal(hashOf([body.subarray(0, cut), body.subarray(cut)]), whole, `split at ${cut}`);
    }
    assert.equal(hashOf([...body].map((b) => Buffer.of(b))), whole, 'byte by byte');
    const seen = new Set([whole]);
    for (const at of [0, 1, 2, 3, 4, 500, 1027, 1028, 1030]) {
      const other = Buffer.from(body);
      other[at] = (other[at] as number) ^ 1;
      seen.add(hashOf([other]));
    }
    seen.add(hashOf([body.subarray(0, 1030)]));
    seen.add(hashOf([body, Buffer.of(0)]));
    seen.add(hashOf([]));
    assert.equal(seen.size, 13, 'every changed, shortened or longer body hashes differently');
    assert.equal(hashOf([]), hashOf([Buffer.alloc(0)]));
  });
});

describe('policy advisor', () => {
  it('suggests a lifetime from how long bodies stayed unchanged, with evidence and saved time', async () => {
    const { clock, advisor, call } = harness();
    const r = route('users');
    for (let i = 0; i < 5; i++) {
      await call(r, '/users/7', { body: '{"id":7}' }, { upstreamMs: 200 });
      clock.advance(1_500);
    }
    const a = advise(advisor.observations(), [r], clock.now());
    const s = a.suggestions[0];
    assert.ok(s, JSON.stringify(a));
    assert.equal(s.template, '/users/{}');
    assert.equal(s.prefix, '/users/');
    assert.equal(s.ttlMs, 6_000, 'seen unchanged for 6 s');
    assert.equal(s.storePrivate, false);
    assert.equal(s.ignoreNoStore, false);
    assert.equal(s.refreshAhead, '/users/*', 'every repeat came within the lifetime');
    assert.equal(s.savedSeconds, 0.8, 'four repeats of 200 ms would have been hits');
    assert.match(s.evidence, /^5 calls in 6\.0 s, 1\.0 s upstream; 4 of 4 repeats got the same body/);
  });

  it('never suggests a template whose bodies change between calls, nor one seen changing faster than the lifetime', async () => {
    const { clock, advisor, call } = harness();
    const r = route('api');
    for (let i = 0; i < 6; i++) {
      await call(r, '/time', { body: `tick ${i}` });
      // A body that changes every 10 s, seen every 4 s: half the shortest unchanged span.
      await call(r, '/slow', { body: `v${Math.floor(i / 3)}` });
      clock.advance(4_000);
    }
    const a = advise(advisor.observations(), [r], clock.now());
    assert.equal(
      a.suggestions.some((s) => s.template === '/time'),
      false,
    );
    assert.match(a.notSuggested.find((n) => n.template === '/time')?.why ?? '', /changed on 5 of 5/);
    const slow = a.suggestions.find((s) => s.template === '/slow');
    assert.equal(slow?.ttlMs, 4_000, 'half of the 8 s a body was seen unchanged before it changed');
  });

  it('ignoreNoStore only where no-store bodies never changed; storePrivate where Authorization answers repeat', async () => {
    const { clock, advisor, call } = harness();
    const r = route('stripe');
    const noStore = { 'cache-control': 'no-cache, no-store' };
    for (let i = 0; i < 4; i++) {
      for (const key of ['sk_a', 'sk_b']) {
        await call(r, '/v1/plans', { headers: noStore, body: `plans for ${key}` }, { auth: `Bearer ${key}` });
      }
      await call(r, '/v1/balance', { headers: noStore, body: i < 3 ? 'b0' : 'b1' }, { auth: 'Bearer sk_a' });
      clock.advance(2_000);
    }
    const a = advise(advisor.observations(), [r], clock.now());
    const plans = a.suggestions.find((s) => s.template === '/v1/plans');
    assert.ok(plans?.ignoreNoStore && plans.storePrivate && plans.perCredential);
    assert.match(plans.evidence, /2 credential\(s\); origin said no-store, no-cache/);
    assert.doesNotMatch(JSON.stringify(a), /sk_a|sk_b/, 'no credential in the advice');
    assert.equal(
      a.suggestions.some((s) => s.template === '/v1/balance'),
      false,
    );
    // /v1/balance is not cached, and its prefix is not covered by /v1/plans: both stay apart.
    assert.match(
      a.notSuggested.find((n) => n.template === '/v1/balance')?.why ?? '',
      /no-store\/no-cache and bodies changed/,
    );
  });

  it('never suggests what the route already caches, unsafe methods, or a prefix that covers a changing template', async () => {
    const { clock, advisor, call } = harness();
    const configured = route('conf', { paths: [{ prefix: '/a', ttlMs: 5000 }] });
    const storing = route('store');
    const shared = route('shared');
    for (let i = 0; i < 4; i++) {
      await call(configured, '/a', { body: 'same' });
      await call(
        storing,
        '/b',
        { body: 'same', headers: { 'cache-control': 'max-age=1' } },
        { stored: true },
      );
      await call(shared, '/items/1', { body: 'same' });
      await call(shared, '/items/1/live', { body: `now ${i}` });
      await call(shared, '/items/1', { body: 'ok' }, { method: 'POST' });
      clock.advance(2_000);
    }
    const a = advise(advisor.observations(), [configured, storing, shared], clock.now());
    assert.deepEqual(a.suggestions, []);
    const why = Object.fromEntries(a.notSuggested.map((n) => [`${n.route} ${n.template}`, n.why]));
    assert.match(why['conf /a'] ?? '', /already sets ttlMs 5000/);
    assert.match(why['store /b'] ?? '', /already caches it/);
    assert.match(why['shared /items/{}'] ?? '', /prefix \/items\/ also covers \/items\/{}\/live/);
  });

  it('a change right after a write on the same URL does not shorten the lifetime (the cache invalidates it)', async () => {
    const { clock, advisor, call } = harness();
    const r = route('w');
    await call(r, '/doc/1', { body: 'v1' });
    clock.advance(3_000);
    await call(r, '/doc/1', { body: 'v1' });
    clock.advance(100);
    await call(r, '/doc/1', { body: 'ok' }, { method: 'PUT' });
    await call(r, '/doc/1', { body: 'v2' });
    clock.advance(3_000);
    await call(r, '/doc/1', { body: 'v2' });
    const [o] = advisor.observations();
    assert.equal(o?.changedAfterWrite, 1);
    assert.equal(o?.shortestBeforeChangeMs, null);
    assert.equal(o?.unsafeCalls, 1);
    assert.equal(advise(advisor.observations(), [r], clock.now()).suggestions[0]?.ttlMs, 3_000);
  });

  it('hashes streamed bodies within the cap (passing every byte on) and leaves longer ones uncompared', async () => {
    const { clock, advisor, call } = harness({ hashCapBytes: 10 });
    const r = route('s');
    for (let i = 0; i < 3; i++) {
      const small = await call(r, '/small', {
        body: Readable.from([Buffer.from('abc'), Buffer.from('def')]),
      });
      assert.equal(small, 'abcdef');
      const big = await call(r, '/big', {
        body: Readable.from([Buffer.from('0123456789'), Buffer.from('abc')]),
      });
      assert.equal(big, '0123456789abc');
      clock.advance(1_000);
    }
    const by = Object.fromEntries(advisor.observations().map((o) => [o.template, o]));
    assert.equal(by['/small']?.hashed, 3);
    assert.equal(by['/small']?.sameBody, 2);
    assert.equal(by['/big']?.hashed, 0);
    assert.equal(by['/big']?.calls, 3);
  });

  it('counts the first key of a template the same before and after its key table grows', async () => {
    // A seed under which the 13 keys below sit in 13 different slots (else one would replace another).
    const slotOf = (n: number, seed: number): number =>
      fnv1a(`http://127.0.0.1:1/users/${n}`, seed) % KEY_SLOTS;
    let seed = 1;
    while (new Set(Array.from({ length: 13 }, (_, i) => slotOf(7 + i, seed))).size < 13) seed++;
    const { clock, advisor, call } = harness({ seed });
    const r = route('users');
    // One key: the record keeps a one-slot table.
    await call(r, '/users/7', { body: 'a' });
    clock.advance(300);
    await call(r, '/users/7', { body: 'a' });
    // Other keys of the same template: the table grows, /users/7 keeps its row.
    for (let i = 8; i < 20; i++) await call(r, `/users/${i}`, { body: 'b' });
    clock.advance(300);
    await call(r, '/users/7', { body: 'a' });
    clock.advance(300);
    await call(r, '/users/7', { body: 'c' }, { method: 'GET' });
    // A write on /users/8 marks its row; its next change is one the cache would invalidate.
    await call(r, '/users/8', { body: '' }, { method: 'POST' });
    await call(r, '/users/8', { body: 'changed' });
    const [o] = advisor.observations();
    assert.equal(o?.template, '/users/{}');
    assert.equal(o?.hashed, 17);
    assert.equal(o?.repeats, 4, '/users/7 three times after its first call, /users/8 once');
    assert.equal(o?.sameBody, 2);
    assert.equal(o?.changedBody, 2);
    assert.equal(o?.changedAfterWrite, 1);
    assert.deepEqual(
      o?.repeatCounts.slice(0, 3),
      [0, 2, 0],
      'two same-body repeats, each 300 ms after the previous call',
    );
  });

  it('keeps memory bounded: at most maxTemplates records and KEY_SLOTS keys per template', async () => {
    const { advisor, call } = harness({ maxTemplates: 4 });
    const r = route('m');
    for (let i = 0; i < 10; i++) await call(r, `/t${String.fromCharCode(97 + i)}`, { body: 'x' });
    assert.equal(advisor.observations().length, 4);
    const { advisor: a2, call: call2 } = harness();
    for (let i = 0; i < KEY_SLOTS * 4; i++) await call2(r, `/k/${i}`, { body: 'x' });
    const [o] = a2.observations();
    assert.equal(o?.calls, KEY_SLOTS * 4);
    assert.ok((o?.repeats ?? 0) < KEY_SLOTS * 4, 'keys past the table are forgotten, not kept');
  });
});
