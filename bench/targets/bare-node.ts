// Reference for the cache-hit scenario: a bare node:http server that answers every GET with the
// same bytes and caching headers as the origin's /fresh/ path, from memory. No routing, no
// parsing, no cache logic: the limit for one Node process serving a stored response.
// Usage: node --import tsx bench/targets/bare-node.ts --listen 127.0.0.1:0
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { parseListen, serveBenchTarget } from '../child-contract.js';
import { fixedJsonBody } from '../origin/body.js';

const { values } = parseArgs({ options: { listen: { type: 'string' } } });
const listen = parseListen(values.listen);
const body = fixedJsonBody();
const headers = {
  'content-type': 'application/json',
  'content-length': String(body.length),
  'cache-control': 'public, max-age=3600',
};

const server = createServer((req, res) => {
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
});
serveBenchTarget(server, listen);
