// Reference for the cache-hit scenario: a bare node:http server that answers every GET with the
// same bytes and caching headers as the origin's /fresh/ path, from memory. No routing, no
// parsing, no cache logic: the limit for one Node process serving a stored response.
//
// With --hit-head it sends, still from memory, the whole head a sidecache hit carries: the stored
// Date and Via, then Age, Cache-Status and Server-Timing, with values of the same length. What it
// loses against plain bare-node is what writing that head costs node:http, before any cache work.
// Usage: node --import tsx bench/targets/bare-node.ts --listen 127.0.0.1:0 [--hit-head]
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { parseListen, serveBenchTarget } from '../harness/child-contract.js';
import { fixedJsonBody } from './body.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, 'hit-head': { type: 'boolean', default: false } },
});
const listen = parseListen(values.listen);
const body = fixedJsonBody();
const origin = {
  'content-type': 'application/json',
  'content-length': String(body.length),
  'cache-control': 'public, max-age=3600',
};
const headers = values['hit-head']
  ? {
      ...origin,
      date: new Date().toUTCString(),
      via: '1.1 sidecache (sc-0123abcd)',
      age: '12',
      'cache-status': 'sidecache; hit; ttl=3587',
      'server-timing': 'cache;dur=0.021;desc="hit", total;dur=0.085;desc="to headers"',
    }
  : origin;

const server = createServer((req, res) => {
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
});
serveBenchTarget(server, listen);
