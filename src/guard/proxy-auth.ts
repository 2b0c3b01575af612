/**
 * Proxy authentication (RFC 9110 §11.7.1): `Proxy-Authorization: Basic` checked against
 * `proxy.auth.users` (passwords stored as SHA-256 hex digests, compared with
 * `crypto.timingSafeEqual`), for the front modes listed in `proxy.auth.modes`. Decrypted requests
 * of an intercepted tunnel are not asked again: their CONNECT was. A refusal is a 407 whose reply
 * carries `Proxy-Authenticate: Basic realm="..."` (front/synth.ts). With a throttle, a client
 * address that keeps sending wrong credentials is held back (429, auth-throttle.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ProxyAuthRequiredError, ProxyAuthThrottledError } from '../errors.js';
import type { Exchange, FrontMode } from '../exchange.js';
import type { AuthThrottle } from './auth-throttle.js';

export interface ProxyAuthOptions {
  readonly realm: string;
  readonly users: readonly { readonly name: string; readonly passwordSha256: string }[];
  readonly modes: readonly FrontMode[];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The check the guard runs first; throws ProxyAuthRequiredError when credentials are missing or wrong. */
export function createProxyAuth(opts: ProxyAuthOptions, throttle?: AuthThrottle): (ex: Exchange) => void {
  const users = new Map(opts.users.map((u) => [u.name, Buffer.from(u.passwordSha256.toLowerCase(), 'hex')]));
  const modes = new Set(opts.modes);
  /** Compared against when the user is unknown, so both paths cost the same. */
  const decoy = sha256('sidecache-no-such-user');
  const refuse = (why: string): never => {
    throw new ProxyAuthRequiredError(`proxy authentication required: ${why}`, {
      detail: { realm: opts.realm },
    });
  };
  return (ex) => {
    if (!modes.has(ex.mode) || ex.mode === 'intercept') return;
    const header = ex.headers['proxy-authorization'];
    if (header === undefined) refuse('no Proxy-Authorization header');
    const address = ex.client.address;
    const waitMs = throttle?.waitMs(address) ?? 0;
    if (waitMs > 0) {
      throw new ProxyAuthThrottledError(
        `too many wrong proxy credentials from ${address}: try again in ${Math.ceil(waitMs / 1000)} s`,
        { detail: { retryAfter: Math.ceil(waitMs / 1000) } },
      );
    }
    const failed = (why: string): never => {
      throttle?.failed(address);
      return refuse(why);
    };
    const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header as string);
    if (!match) failed('Proxy-Authorization is not Basic credentials');
    const decoded = Buffer.from((match as RegExpExecArray)[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) failed('malformed Basic credentials');
    const expected = users.get(decoded.slice(0, colon));
    const given = sha256(decoded.slice(colon + 1));
    const ok = timingSafeEqual(given, expected?.length === 32 ? expected : decoy) && expected !== undefined;
    if (!ok) failed('unknown user or wrong password');
    throttle?.succeeded(address);
  };
}
