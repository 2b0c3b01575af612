/**
 * sidecache's own certificate authority, used only to sign the leaf certificates that intercepted
 * tunnels present to clients. Made on first use (ECDSA P-256 through WebCrypto and @peculiar/x509;
 * no openssl), stored in `tls.caDir` as `ca.pem` (certificate, 0644) and `ca-key.pem` (PKCS#8 key,
 * 0600, written atomically), and reused on every later start. A key file that group or others can
 * read is refused: whoever holds it can impersonate any host to clients that trust this CA.
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
import * as x509 from '@peculiar/x509';
import { ConfigError } from '../errors.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** ECDSA P-256 with SHA-256: small, fast, and accepted by every TLS client in use. */
export const SIGNING_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

import { CA_CERT_FILE, CA_KEY_FILE } from './ca-files.js';

export { CA_CERT_FILE, CA_KEY_FILE };

/** CA certificates are valid for ten years; leaves are short-lived (see leaf-certs.ts). */
const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000;

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
}

export interface CaDeps {
  /** Wall clock, ms since the epoch. */
  readonly now?: () => number;
}

/** Loads the CA stored in `dir`, or creates and stores one when the directory holds none. */
export async function loadOrCreateCa(dir: string, deps: CaDeps = {}): Promise<CertificateAuthority> {
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
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError([`tls.caDir: cannot create "${dir}" (${codeOf(err)})`], { cause: err });
  }
  const made = await makeCa(now());
  // Key first, cert second, each by link(2) from a private temp file: a concurrent first start
  // loses the race with EEXIST instead of overwriting, and a crash never leaves a readable half-file.
  const wonKey = publish(keyPath, made.keyPem, 0o600);
  if (!wonKey) return waitForCa(certPath, keyPath);
  publish(certPath, made.certPem, 0o644);
  const ca = await loadCa(certPath, keyPath);
  return { ...ca, created: true };
}

async function makeCa(nowMs: number): Promise<{ certPem: string; keyPem: string }> {
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
    notAfter: new Date(nowMs + CA_VALIDITY_MS),
    keys: keys as never,
    signingAlgorithm: SIGNING_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
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
  return { certPem, certPath, cert: new x509.X509Certificate(certPem), signingKey, created: false };
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
