import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyHandshakeFailure, type HandshakeFailure } from '../../../src/tls/handshake-failure.js';

describe('client TLS handshake failures sort into a closed union', () => {
  const table: Array<[string, { code?: string; message?: string } | null, HandshakeFailure]> = [
    ['curl without our CA (unknown ca alert)', { code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA' }, 'cert-rejected'],
    ['bad certificate alert', { code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE' }, 'cert-rejected'],
    ['certificate unknown alert', { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN' }, 'cert-rejected'],
    ['no shared cipher', { code: 'ERR_SSL_NO_SHARED_CIPHER' }, 'no-shared-cipher'],
    ['protocol too old', { code: 'ERR_SSL_UNSUPPORTED_PROTOCOL' }, 'no-shared-cipher'],
    ['not TLS at all', { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 'no-shared-cipher'],
    ['client reset', { code: 'ECONNRESET' }, 'reset'],
    ['closed without an error', null, 'reset'],
    ['handshake timer', { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }, 'timeout'],
    ['anything else', { code: 'ERR_SSL_SOMETHING_NEW' }, 'other'],
    ['no code', { message: 'weird' }, 'other'],
  ];
  for (const [name, err, want] of table) {
    it(`${name} → ${want}`, () => assert.equal(classifyHandshakeFailure(err), want));
  }
});
