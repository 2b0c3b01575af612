/**
 * What outgoing TLS trusts: the system CAs plus a CA file (`upstream.caFile`, or `dns.doh.caFile`).
 * Used by the upstream pools, the upgrade relays and the DoH resolver, so each verifies its servers
 * as strictly as the others; it lives in tls/ so that dns/ and upstream/ both take it without
 * importing each other.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { ConfigError } from '../errors.js';

/** The CA list for `tls.connect({ ca })`, or undefined for the system CAs alone. */
export function upstreamTrust(caFile: string | null, key = 'upstream.caFile'): string[] | undefined {
  if (caFile === null) return undefined;
  let pem: string;
  try {
    pem = readFileSync(caFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new ConfigError([`${key}: cannot read "${caFile}" (${code})`], { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError([`${key}: "${caFile}" holds no PEM certificate`]);
  }
  return [...rootCertificates, pem];
}
