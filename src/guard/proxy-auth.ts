/**
 * Proxy authentication (RFC 9110 §11.7.1): `Proxy-Authorization: Basic` checked against
 * `proxy.auth.users` (passwords stored as SHA-256 hex digests, compared with
 * `crypto.timingSafeEqual`), for the front modes listed in `proxy.auth.modes`. Decrypted requests
 * of an intercepted tunnel are not asked again: their CONNECT was. A refusal is a 407 whose reply
 * carries `Proxy-Authenticate: Basic realm="..."` (front/synth.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ProxyAuthRequiredError } from '../errors.js';
import type { Exchange, FrontMode } from '../exchange.js';

export interface ProxyAuthOptions {
  readonly realm: string;
  readonly users: readonly { readonly name: string; readonly passwordSha256: string }[];
  readonly modes: readonly FrontMode[];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The check the guard runs first; throws ProxyAuthRequiredError when credentials are missing or wrong. */
export function createProxyAuth(opts: ProxyAuthOptions): (ex: Exchange) => void {
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
    const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header as string);
    if (!match) refuse('Proxy-Authorization is not Basic credentials');
    const decoded = Buffer.from((match as RegExpExecArray)[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) refuse('malformed Basic credentials');
    const expected = users.get(decoded.slice(0, colon));
    const given = sha256(decoded.slice(colon + 1));
    const ok = timingSafeEqual(given, expected?.length === 32 ? expected : decoy) && expected !== undefined;
    if (!ok) refuse('unknown user or wrong password');
  };
}
