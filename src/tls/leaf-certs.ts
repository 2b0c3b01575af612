/**
 * Leaf certificates for intercepted hosts, minted on demand and signed by sidecache's CA. One
 * ECDSA P-256 key (made once per instance, kept in memory) serves every leaf. Each leaf is valid
 * for `validityMs` (backdated an hour for clients whose clocks run behind), names the host as a DNS
 * SAN, or as an IP SAN for an IP literal, and is cached per host in an LRU (at most `cacheEntries`)
 * until a quarter of its validity is left; concurrent requests for one host share one minting. A
 * host `permits` refuses (not intercepted) gets no leaf: the CA is no signing oracle.
 */

// @peculiar/x509 needs the Reflect polyfill before it loads; this module may load before ca.ts.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { LRUCache } from 'lru-cache';
import { normaliseHost } from '../config/runtime.js';
import { ConfigError, EgressDeniedError } from '../errors.js';
import { type CertificateAuthority, derToPem, randomSerial, SIGNING_ALG } from './ca.js';

export interface LeafOptions {
  /** How long each leaf is valid, ms. */
  readonly validityMs: number;
  /** Most leaves kept. */
  readonly cacheEntries: number;
}

export interface LeafDeps {
  /** Wall clock, ms since the epoch. */
  readonly now?: () => number;
  /** Told about every leaf minted (metrics). */
  readonly onIssued?: (host: string) => void;
  /** Whether a leaf may be minted for `host` (it is intercepted); every host when absent. */
  readonly permits?: (host: string) => boolean;
}

export interface Leaf {
  readonly host: string;
  readonly certPem: string;
  /** The leaf's private key (PKCS#8 PEM), in memory only. */
  readonly keyPem: string;
  readonly context: SecureContext;
  /** ms since the epoch after which the cache mints a new leaf. */
  readonly renewAt: number;
}

export interface LeafIssuer {
  /** The leaf for `host` (a DNS name or an IP literal, without brackets or port). */
  leafFor(host: string): Promise<Leaf>;
  /** Leaves currently cached. */
  size(): number;
}

const BACKDATE_MS = 3600_000;

export function createLeafIssuer(
  ca: CertificateAuthority,
  opts: LeafOptions,
  deps: LeafDeps = {},
): LeafIssuer {
  if (opts.validityMs < 60_000) {
    throw new ConfigError([`tls.leafValidityMs: ${opts.validityMs} is too short; use at least 60000`]);
  }
  const now = deps.now ?? Date.now;
  const cache = new LRUCache<string, Leaf>({ max: opts.cacheEntries });
  const minting = new Map<string, Promise<Leaf>>();
  let leafKeys: Promise<webcrypto.CryptoKeyPair> | null = null;

  async function mint(host: string): Promise<Leaf> {
    leafKeys ??= webcrypto.subtle.generateKey(SIGNING_ALG, true, [
      'sign',
      'verify',
    ]) as Promise<webcrypto.CryptoKeyPair>;
    const keys = await leafKeys;
    const issuedAt = now();
    const ip = isIP(host) !== 0;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${host}`,
      issuer: ca.cert.subject,
      notBefore: new Date(issuedAt - BACKDATE_MS),
      notAfter: new Date(issuedAt + opts.validityMs),
      signingKey: ca.signingKey as never,
      publicKey: keys.publicKey as never,
      signingAlgorithm: SIGNING_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }]),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert as never),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
      ],
    });
    const certPem = cert.toString('pem');
    const keyPem = derToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
    deps.onIssued?.(host);
    return {
      host,
      certPem,
      keyPem,
      context: createSecureContext({ cert: certPem, key: keyPem }),
      renewAt: issuedAt + Math.floor(opts.validityMs * 0.75),
    };
  }

  return {
    leafFor(name) {
      const host = normaliseHost(name);
      if (deps.permits && !deps.permits(host)) {
        return Promise.reject(
          new EgressDeniedError(`no leaf certificate for ${host}: it is not in "intercept"`),
        );
      }
      const cached = cache.get(host);
      if (cached && cached.renewAt > now()) return Promise.resolve(cached);
      let pending = minting.get(host);
      if (pending === undefined) {
        pending = mint(host).then(
          (leaf) => {
            minting.delete(host);
            cache.set(host, leaf);
            return leaf;
          },
          (err: unknown) => {
            minting.delete(host);
            throw err;
          },
        );
        minting.set(host, pending);
      }
      return pending;
    },
    size: () => cache.size,
  };
}
