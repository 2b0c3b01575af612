// Preloaded (`node --import`) into the cache-tests client for `npm run cache-tests -- --forward`:
// every request the client sends to the suite's origin goes to sidecache as a forward proxy
// (absolute-form request target and the origin's Host, as an HTTP_PROXY client sends), not to
// the origin: undici's Agent re-addresses them. It is both the global dispatcher (the client's
// plain fetch calls) and the dispatcher the client builds itself for the interim-response tests.
// SIDECACHE_PROXY and SUITE_ORIGIN name the two (http://127.0.0.1:PORT). undici comes from the
// checkout (the client's working directory), so the Agent patched is the one the client imports.
import { createRequire } from 'node:module';
import { join } from 'node:path';

const proxy = process.env.SIDECACHE_PROXY;
const origin = process.env.SUITE_ORIGIN;
if (!proxy || !origin) throw new Error('cache-tests-forward: SIDECACHE_PROXY and SUITE_ORIGIN must be set');
const undici = createRequire(join(process.cwd(), 'package.json'))('undici');

const host = new URL(origin).host;
const withHost = (headers) => {
  if (headers == null) return { host };
  if (Array.isArray(headers)) return [...headers, 'host', host];
  return { ...headers, host };
};
const dispatch = undici.Agent.prototype.dispatch;
undici.Agent.prototype.dispatch = function (opts, handler) {
  const target = typeof opts.origin === 'string' ? opts.origin : opts.origin?.origin;
  if (target !== origin) return dispatch.call(this, opts, handler);
  return dispatch.call(
    this,
    { ...opts, origin: proxy, path: `${origin}${opts.path}`, headers: withHost(opts.headers) },
    handler,
  );
};
undici.setGlobalDispatcher(new undici.Agent());
