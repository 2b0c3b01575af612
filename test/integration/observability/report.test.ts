/** `sidecache report` (as a child process, and its function) against an instance with known traffic. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Agent } from 'node:http';
import { type AddressInfo, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ReportError, runReport } from '../../../src/commands/report.js';
import type { Summary } from '../../../src/metrics/summary.js';
import { send } from '../../helpers/client.js';
import { startOrigin, type TestOrigin } from '../../helpers/origin.js';
import { CLI, startTestSidecache, type TestSidecache } from '../../helpers/sidecache.js';

const run = promisify(execFile);
const report = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', CLI, 'report', ...args], { timeout: 30_000 });

describe('sidecache report', () => {
  let fast: TestOrigin;
  let slow: TestOrigin;
  let sc: TestSidecache;

  before(async () => {
    fast = await startOrigin((_req, res) => {
      res.writeHead(200).end('fast');
    });
    slow = await startOrigin(async (_req, res) => {
      // Slow by a margin no loaded machine gives the fast origin (its mean stays far below this).
      await new Promise((r) => setTimeout(r, 250));
      res.writeHead(200).end('slow');
    });
    sc = await startTestSidecache({
      routes: [
        { name: 'fast', origin: fast.url },
        { name: 'slow', origin: slow.url },
      ],
      // Cold pools (no keep-warm): the report's reuse ratios below count the pool's own connections.
      upstream: { warm: { connections: 0, minIdle: 0 } },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 4; i++) await send(sc.url, '/fast/x', { agent });
      for (let i = 0; i < 3; i++) await send(sc.url, '/slow/x', { agent });
    } finally {
      agent.destroy();
    }
  });
  after(async () => {
    await sc?.close();
    await fast?.close();
    await slow?.close();
  });

  test('prints requests, time saved, origins slowest first and advice', async () => {
    const { stdout } = await report('--admin', sc.adminUrl);
    assert.match(stdout, new RegExp(`^sidecache at ${sc.adminUrl.replace(/\./g, '\\.')}, up `));
    assert.match(stdout, /^requests\s+7\s/m);
    assert.match(stdout, /^time saved\s+\S+ \S+ \(cache 0\.0 ms, connection \S+ \S+, dns 0\.0 ms\)$/m);
    assert.match(stdout, /^\s+fast\s+4 req/m);
    assert.match(stdout, /^\s+slow\s+3 req/m);
    const slowLine = stdout.indexOf(slow.url);
    const fastLine = stdout.indexOf(fast.url);
    assert.ok(slowLine > 0 && fastLine > slowLine, 'the slow origin comes first');
    assert.match(
      stdout,
      new RegExp(`${slow.url}\\s+\\d+\\.\\d ms\\s+3 req\\s+reuse\\s+66\\.7%\\s+1 connections`),
    );
    assert.match(stdout, /^advice\n {2}- /m);
  });

  // The CLI wiring is covered above; these call the command's function (a tsx child takes seconds).
  test('--json prints the summary for scripts', async () => {
    const stdout = await runReport({ admin: sc.adminUrl, json: true });
    const s = JSON.parse(stdout) as Summary;
    assert.equal(s.requests, 7);
    assert.equal(s.routes.find((r) => r.route === 'fast')?.requests, 4);
    const slowOrigin = s.origins[0];
    assert.equal(slowOrigin?.origin, slow.url);
    assert.ok((slowOrigin?.meanUpstreamSeconds ?? 0) >= 0.25);
    assert.equal(slowOrigin?.connectionsOpened, 1);
    assert.ok(Math.abs((slowOrigin?.reuseRatio ?? 0) - 2 / 3) < 1e-9);
    assert.ok(s.savedSeconds.connection > 0);
    assert.equal(s.savedSeconds.total, s.savedSeconds.connection);
  });

  test('fails with a message when the instance cannot be read', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await assert.rejects(
      runReport({ admin: `http://127.0.0.1:${port}`, json: false }),
      (err: unknown) =>
        err instanceof ReportError &&
        err.message.startsWith(`cannot read http://127.0.0.1:${port}/metrics (ECONNREFUSED)`),
    );
    await assert.rejects(runReport({ admin: 'not a url', json: false }), /--admin: "not a url" is not a URL/);
  });
});
