// Reference contender: the smallest useful pass-through on the `http-proxy` package.
// http.createServer + proxy.web with a keep-alive http.Agent; no caching, no header rewriting.
// Usage: node --import tsx bench/targets/http-proxy.ts --listen 127.0.0.1:0 --route NAME=ORIGIN
import { Agent, createServer } from 'node:http';
import { parseArgs } from 'node:util';
import httpProxy from 'http-proxy';
import { parseListen, serveBenchTarget } from '../harness/child-contract.js';
import { matchRoute, parseRoutes } from './route-table.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, route: { type: 'string', multiple: true, default: [] } },
});
const listen = parseListen(values.listen);
const routes = parseRoutes(values.route);

const agent = new Agent({ keepAlive: true, keepAliveMsecs: 10_000 });
const proxy = httpProxy.createProxyServer({ agent });
proxy.on('error', (err, _req, res) => {
  // Surfaces as a 502 that the harness counts as a failed run; logged so the cause is visible.
  process.stderr.write(`http-proxy: ${err.message}\n`);
  if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-length': '0' });
  res.end();
});

const server = createServer((req, res) => {
  const target = matchRoute(routes, req.url ?? '/');
  if (!target) {
    res.writeHead(404, { 'content-length': '0' }).end();
    return;
  }
  req.url = target.path;
  proxy.web(req, res, { target: target.route.origin });
});
serveBenchTarget(server, listen);
