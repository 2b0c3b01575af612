/**
 * The admin status page in headless Chromium (the system's chromium, driven by playwright-core;
 * no browser is downloaded): it loads with no external requests, shows numbers that match
 * /metrics, and updates after more traffic.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { parsePromText, sumOf } from '../../../src/metrics/prom-text.js';
import { send } from '../../helpers/client.js';
import { startOrigin } from '../../helpers/origin.js';
import { startTestSidecache } from '../../helpers/sidecache.js';
import { requireTool } from '../../helpers/system-tool.js';

test('status page: loads self-contained, matches /metrics, updates live', async (t) => {
  const executablePath = requireTool(
    t,
    ['/usr/bin/chromium', '/usr/bin/chromium-browser'],
    'apt-get install -y chromium',
  );
  if (executablePath === null) return;
  const origin = await startOrigin(async (_req, res) => {
    await new Promise((r) => setTimeout(r, 20));
    res.writeHead(200).end('ok');
  });
  // Cold pool (no keep-warm): the page's reuse ratio counts the pool's own connections.
  const sc = await startTestSidecache({
    routes: [{ name: 'api', origin: origin.url }],
    upstream: { warm: { connections: 0, minIdle: 0 } },
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const userDataDir = mkdtempSync(join(tmpdir(), 'sidecache-chromium-'));
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.after(async () => {
    await browser.close();
    rmSync(userDataDir, { recursive: true, force: true });
    agent.destroy();
    await sc.close();
    await origin.close();
  });

  for (let i = 0; i < 3; i++) {
    // The last call 1.1 s after the first: the same body seen unchanged for over a second, which
    // the policy advisor turns into a suggestion (shown on the page).
    if (i === 2) await new Promise((r) => setTimeout(r, 1_100));
    await send(sc.url, '/api/x', { agent });
  }

  const page = browser.pages()[0] ?? (await browser.newPage());
  const foreign: string[] = [];
  const pageErrors: string[] = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(sc.adminUrl)) foreign.push(req.url());
  });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${sc.adminUrl}/`);
  assert.equal(await page.title(), 'sidecache status');

  const value = async (id: string) => page.locator(`#${id}`).getAttribute('data-value');
  // Wait with selectors: the page's CSP forbids eval, so no string predicates.
  const showsRequests = (n: number) =>
    page.locator(`#requests[data-value="${n}"]`).waitFor({ timeout: 10_000 });
  await showsRequests(3);

  // The numbers shown match /metrics (no traffic in between).
  const families = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
  assert.equal(Number(await value('requests')), sumOf(families, 'sidecache_requests_total'));
  const savedConnection = sumOf(families, 'sidecache_saved_seconds_total', { kind: 'connection' });
  assert.ok(savedConnection > 0);
  assert.ok(Math.abs(Number(await value('saved-connection')) - savedConnection) < 1e-9);
  assert.ok(Math.abs(Number(await value('saved-total')) - savedConnection) < 1e-9);
  assert.equal(await value('avoided'), '0');
  const routeRow = await page.locator('#routes tbody tr').first().locator('td').allTextContents();
  assert.deepEqual(routeRow.slice(0, 2), ['api', '3']);
  const originRow = await page.locator('#origins tbody tr').first().locator('td').allTextContents();
  assert.equal(originRow[0], origin.url);
  assert.equal(originRow[3], '66.7%', 'two of three requests reused the connection');
  assert.ok((await page.locator('#advice li').count()) >= 1);
  const suggestions = await page.locator('#suggestions li').allTextContents();
  assert.equal(suggestions.length, 1, suggestions.join('\n'));
  assert.match(suggestions[0] ?? '', /^api \/x: ttlMs 1000; would have saved .*Evidence: 3 calls in 1\.\d s/);

  // More traffic: the page follows on its next poll, and the chart gets points.
  for (let i = 0; i < 4; i++) await send(sc.url, '/api/y', { agent });
  await showsRequests(7);
  await page.locator('#chart-saved polyline').waitFor({ timeout: 10_000 });
  assert.ok(Number(await page.locator('#chart-saved polyline').getAttribute('data-points')) >= 1);
  const later = parsePromText(await (await fetch(`${sc.adminUrl}/metrics`)).text());
  assert.ok(
    Math.abs(
      Number(await value('saved-connection')) -
        sumOf(later, 'sidecache_saved_seconds_total', { kind: 'connection' }),
    ) < 1e-9,
  );
  assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
  assert.deepEqual(pageErrors, []);
});
