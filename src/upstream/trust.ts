/**
 * What upstream TLS trusts: the system CAs plus `upstream.caFile`. Used by connections made outside
 * the pools (upgrade relays), so that they verify origins exactly as strictly as the pools do.
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
