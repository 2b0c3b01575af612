// The HTTPS origin for the new-connection-per-request bench: answers every GET with 1 KiB of JSON
// (Cache-Control: public, max-age=60), with a certificate for `localhost` from a CA it makes in
// `--ca-dir`. Each TLS handshake round trip costs `--handshake-delay-ms` (default 20): each server
// flight of the handshake is held back that long (./handshake-delay.ts).
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { parseArgs } from 'node:util';
import { loadOrCreateCa } from '../../src/tls/ca.js';
import { createLeafIssuer } from '../../src/tls/leaf-certs.js';
import { parseListen, serveBenchTarget } from '../harness/child-contract.js';
import { fixedJsonBody } from './body.js';
import { delayHandshakeFlights } from './handshake-delay.js';

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    'ca-dir': { type: 'string' },
    'handshake-delay-ms': { type: 'string' },
  },
});
const BODY = fixedJsonBody();
const { host, port } = parseListen(values.listen);
const delayMs = Number(values['handshake-delay-ms'] ?? 20);
if (!values['ca-dir']) throw new Error('--ca-dir is required');

const ca = await loadOrCreateCa(values['ca-dir']);
const leaf = await createLeafIssuer(ca, { validityMs: 24 * 3600_000, cacheEntries: 1 }).leafFor('localhost');

const https = createHttpsServer(
  { SNICallback: (_name, cb) => cb(null, leaf.context), keepAliveTimeout: 30_000 },
  (req, res) => {
    req.resume();
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(BODY.length),
      'cache-control': 'public, max-age=60',
    });
    res.end(BODY);
  },
);

const tcp = createNetServer({ noDelay: true }, (raw) => {
  https.emit('connection', delayHandshakeFlights(raw, delayMs));
});
serveBenchTarget(tcp, { host, port }, https);
