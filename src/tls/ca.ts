/**
 * sidecache's own certificate authority, used only to sign the leaf certificates that intercepted
 * tunnels present to clients. Made on first use (ECDSA P-256 through WebCrypto and @peculiar/x509;
 * no openssl), stored in `tls.caDir` as `ca.pem` (certificate, 0644) and `ca-key.pem` (PKCS#8 key,
 * 0600, written atomically), and reused on every later start. A key file that group or others can
 * read is refused: whoever holds it can impersonate any host to clients that trust this CA. With
 * `nameConstraints`, a new CA carries X.509 Name Constraints permitting only the intercepted hosts
 * (name-constraints.ts), so even its key cannot mint a leaf other clients would accept elsewhere.
 */
import 'reflect-metadata';
import { createPrivateKey, X509Certificate as NodeX509, webcrypto } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { ConfigError } from '../errors.js';
import { type CaNameConstraints, constraintsFor } from './name-constraints.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** ECDSA P-256 with SHA-256: small, fast, and accepted by every TLS client in use. */
export const SIGNING_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

import { CA_CERT_FILE, CA_KEY_FILE } from './ca-files.js';

export { CA_CERT_FILE, CA_KEY_FILE };

const DAY_MS = 24 * 3600_000;

export interface CertificateAuthority {
  /** The CA certificate, PEM. */
  readonly certPem: string;
  /** Where the certificate is stored (what clients are told to trust). */
  readonly certPath: string;
  /** The parsed certificate (issuer name and key identifier for leaves). */
  readonly cert: x509.X509Certificate;
  /** The signing key (not extractable). */
  readonly signingKey: webcrypto.CryptoKey;
  /** Whether this call created the CA (first start). */
  readonly created: boolean;
  /** The certificate's notAfter, ms since the epoch. */
  readonly notAfter: number;
  /** Its Name Constraints; null when it may sign any name. */
  readonly constraints: CaNameConstraints | null;
}

/** How a new CA is made (an existing one is used as it is). */
export interface CaOptions {
  /** Validity of a new CA certificate, days (`tls.caValidityDays`). */
  readonly validityDays: number;
  /** Hosts a new CA is constrained to (the intercept list); null: no Name Constraints. */
  readonly nameConstraints: readonly string[] | null;
}

export const DEFAULT_CA_OPTIONS: CaOptions = Object.freeze({ validityDays: 3650, nameConstraints: null });

export interface CaDeps {
  /** Wall clock, ms since the epoch. */
  readonly now?: () => number;
}

/** Loads the CA stored in `dir`, or creates and stores one when the directory holds none. */
export async function loadOrCreateCa(
  dir: string,
  opts: CaOptions = DEFAULT_CA_OPTIONS,
  deps: CaDeps = {},
): Promise<CertificateAuthority> {
  const now = deps.now ?? Date.now;
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const hasCert = exists(certPath);
  const hasKey = exists(keyPath);
  if (hasCert && hasKey) return loadCa(certPath, keyPath);
  if (hasCert !== hasKey) {
    throw new ConfigError([
      `tls.caDir: "${dir}" holds ${hasCert ? CA_CERT_FILE : CA_KEY_FILE} but not ` +
        `${hasCert ? CA_KEY_FILE : CA_CERT_FILE}; restore the missing file or empty the directory to make a new CA`,
    ]);
  }
  // Refused before anything is written: a constraint the list cannot express ("*").
  const constraints = opts.nameConstraints === null ? null : constraintsFor(opts.nameConstraints);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError([`tls.caDir: cannot create "${dir}" (${codeOf(err)})`], { cause: err });
  }
  const made = await makeCa(now(), opts.validityDays, constraints);
  // Key first, cert second, each by link(2) from a private temp file: a concurrent first start
  // loses the race with EEXIST instead of overwriting, and a crash never leaves a readable half-file.
  const wonKey = publish(keyPath, made.keyPem, 0o600);
  if (!wonKey) return waitForCa(certPath, keyPath);
  publish(certPath, made.certPem, 0o644);
  const ca = await loadCa(certPath, keyPath);
  return { ...ca, created: true };
}

async function makeCa(
  nowMs: number,
  validityDays: number,
  constraints: CaNameConstraints | null,
): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(SIGNING_ALG, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const issued = new Date(nowMs).toISOString().slice(0, 10);
  const name = `CN=sidecache interception CA (${escapeDn(hostname())} ${issued}), O=sidecache`;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name,
    notBefore: new Date(nowMs - 3600_000),
    notAfter: new Date(nowMs + validityDays * DAY_MS),
    keys: keys as never,
    signingAlgorithm: SIGNING_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
      ...(constraints ? [nameConstraintsExtension(constraints)] : []),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: derToPem(pkcs8, 'PRIVATE KEY') };
}

async function loadCa(certPath: string, keyPath: string): Promise<CertificateAuthority> {
  const mode = statSync(keyPath).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ConfigError([
      `tls.caDir: key file "${keyPath}" has mode 0${mode.toString(8)}: group or others can read it; ` +
        `run "chmod 600 ${keyPath}" (or remove the directory to make a new CA)`,
    ]);
  }
  let certPem: string;
  let keyPem: string;
  try {
    certPem = readFileSync(certPath, 'utf8');
    keyPem = readFileSync(keyPath, 'utf8');
  } catch (err) {
    throw new ConfigError([`tls.caDir: cannot read the CA (${codeOf(err)})`], { cause: err });
  }
  let nodeCert: NodeX509;
  try {
    nodeCert = new NodeX509(certPem);
    if (!nodeCert.checkPrivateKey(createPrivateKey(keyPem))) {
      throw new Error('the key does not belong to the certificate');
    }
  } catch (err) {
    throw new ConfigError(
      [`tls.caDir: "${certPath}" and "${keyPath}" are not a usable CA: ${(err as Error).message}`],
      { cause: err },
    );
  }
  const der = pemToDer(keyPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, SIGNING_ALG, false, ['sign']);
  const cert = new x509.X509Certificate(certPem);
  return {
    certPem,
    certPath,
    cert,
    signingKey,
    created: false,
    notAfter: cert.notAfter.getTime(),
    constraints: readNameConstraints(cert),
  };
}

/** The CA certificate stored in `dir` (no key, nothing made), or null when there is none yet. */
export function readCaCertificate(
  dir: string,
): { certPath: string; notAfter: number; constraints: CaNameConstraints | null } | null {
  const certPath = join(dir, CA_CERT_FILE);
  let pem: string;
  try {
    pem = readFileSync(certPath, 'utf8');
  } catch {
    return null;
  }
  try {
    const cert = new x509.X509Certificate(pem);
    return { certPath, notAfter: cert.notAfter.getTime(), constraints: readNameConstraints(cert) };
  } catch (err) {
    throw new ConfigError([`tls.caDir: "${certPath}" is not a certificate: ${(err as Error).message}`], {
      cause: err,
    });
  }
}

/** Another process is creating the CA right now: wait (briefly) for both files. */
async function waitForCa(certPath: string, keyPath: string): Promise<CertificateAuthority> {
  for (let i = 0; i < 50 && !exists(certPath); i++) await new Promise((r) => setTimeout(r, 20));
  return loadCa(certPath, keyPath);
}

/** Writes `text` to a temp file with `mode`, then links it into place; false if `path` exists. */
function publish(path: string, text: string, mode: number): boolean {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode); // the umask may have narrowed `mode`; never widened it
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if (codeOf(err) === 'EEXIST') return false;
    throw new ConfigError([`tls.caDir: cannot write "${path}" (${codeOf(err)})`], { cause: err });
  } finally {
    unlinkSync(tmp);
  }
}

/** The critical nameConstraints extension for `c`. */
function nameConstraintsExtension(c: CaNameConstraints): x509.Extension {
  const subtrees = (dns: readonly string[], ips: readonly string[]): GeneralSubtrees | undefined => {
    const items = [
      ...dns.map((dNSName) => new GeneralSubtree({ base: new GeneralName({ dNSName }) })),
      ...ips.map((iPAddress) => new GeneralSubtree({ base: new GeneralName({ iPAddress }) })),
    ];
    return items.length > 0 ? new GeneralSubtrees(items) : undefined;
  };
  const permittedSubtrees = subtrees(c.permittedDns, c.permittedIp);
  const excludedSubtrees = subtrees(c.excludedDns, c.excludedIp);
  const value = AsnConvert.serialize(
    new NameConstraints({
      ...(permittedSubtrees ? { permittedSubtrees } : {}),
      ...(excludedSubtrees ? { excludedSubtrees } : {}),
    }),
  );
  return new x509.Extension(id_ce_nameConstraints, true, value);
}

/** The CA certificate's Name Constraints, or null when it has none (it may sign any name). */
function readNameConstraints(cert: x509.X509Certificate): CaNameConstraints | null {
  const ext = cert.getExtension(id_ce_nameConstraints);
  if (!ext) return null;
  const nc = AsnConvert.parse(ext.value, NameConstraints);
  const split = (subtrees: GeneralSubtrees | undefined): { dns: string[]; ip: string[] } => {
    const dns: string[] = [];
    const ip: string[] = [];
    for (const s of subtrees ?? []) {
      if (s.base.dNSName !== undefined) dns.push(s.base.dNSName.toLowerCase());
      else if (s.base.iPAddress !== undefined) ip.push(s.base.iPAddress);
    }
    return { dns, ip };
  };
  const permitted = split(nc.permittedSubtrees);
  const excluded = split(nc.excludedSubtrees);
  return {
    permittedDns: permitted.dns,
    excludedDns: excluded.dns,
    permittedIp: permitted.ip,
    excludedIp: excluded.ip,
  };
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'EIO';
}

function escapeDn(s: string): string {
  return s.replace(/[,+"\\<>;=]/g, '_');
}

/** A positive 16-byte serial number (RFC 5280 §4.1.2.2), hex. */
export function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

export function derToPem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)?.join('\n')}\n-----END ${label}-----\n`;
}

function pemToDer(pem: string): ArrayBuffer {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const buf = Buffer.from(b64, 'base64');
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}
