/**
 * A throw-away test PKI, made at test time: an ECDSA P-256 CA and leaf certificates signed by it.
 * Clients trust the CA through their `ca` option; nothing disables verification.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export interface TestCa extends Pem {
  /** Issues a server certificate for the given DNS names and IP addresses. */
  issue(names: { dns?: string[]; ips?: string[] }, opts?: { expired?: boolean }): Promise<Pem>;
  /** Writes the CA certificate to a temp file and returns its path. */
  writeCertFile(): string;
}

function keyToPem(der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex');
}

export async function createTestCa(commonName = 'sidecache test CA'): Promise<TestCa> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    keys: keys as never,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
    ],
  });
  const caPem = caCert.toString('pem');
  const caKeyPem = keyToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey as never));
  return {
    cert: caPem,
    key: caKeyPem,
    async issue(names, opts = {}) {
      const leafKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
      const sans: x509.JsonGeneralName[] = [
        ...(names.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(names.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      const notAfter = opts.expired ? new Date(now - 3600_000) : new Date(now + 24 * 3600_000);
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${names.dns?.[0] ?? names.ips?.[0] ?? 'test'}`,
        issuer: caCert.subject,
        notBefore: new Date(now - 2 * 3600_000),
        notAfter,
        signingKey: keys.privateKey as never,
        publicKey: leafKeys.publicKey as never,
        signingAlgorithm: ALG,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(sans),
          await x509.AuthorityKeyIdentifierExtension.create(caCert),
        ],
      });
      return {
        cert: leaf.toString('pem'),
        key: keyToPem(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey as never)),
      };
    },
    writeCertFile() {
      const dir = mkdtempSync(join(tmpdir(), 'sidecache-ca-'));
      const file = join(dir, 'ca.pem');
      writeFileSync(file, caPem);
      return file;
    },
  };
}
