/**
 * What the CLI prints: readable lines under a terminal (a pseudo-terminal made by util-linux
 * `script`), JSON lines on a pipe; and the start-up lines say where everything is, with URLs that
 * answer.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { send } from '../../helpers/client.js';
import { startOrigin } from '../../helpers/origin.js';
import { CLI } from '../../helpers/sidecache.js';
import { requireTool } from '../../helpers/system-tool.js';

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*m`, 'g');

interface Run {
  output(): string;
  /** Resolves with the output once `pattern` matches it (rejects after 20 s or on exit). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

function run(command: string, args: string[], env: Record<string, string>): Run {
  const child: ChildProcess = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer): void => {
    out += d.toString();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return {
    output: () => out,
    waitFor(pattern) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} in 20 s:\n${out}`));
        }, 20_000);
        const check = (): void => {
          const m = out.replace(ANSI, '').match(pattern);
          if (!m) return;
          cleanup();
          resolve(m);
        };
        const exited = (): void => {
          cleanup();
          reject(new Error(`exited before ${pattern}:\n${out}`));
        };
        const cleanup = (): void => {
          clearTimeout(timer);
          child.stdout?.off('data', check);
          child.off('exit', exited);
        };
        child.stdout?.on('data', check);
        child.once('exit', exited);
        check();
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exit = once(child, 'exit');
      child.kill('SIGTERM');
      await exit;
    },
  };
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function serveArgs(originUrl: string, caDir: string): string[] {
  return [
    '--import',
    'tsx',
    CLI,
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--admin-listen',
    '127.0.0.1:0',
    '--route',
    `api=${originUrl}`,
    '--allow',
    'intercepted.test',
    '--intercept',
    'intercepted.test',
    '--ca-dir',
    caDir,
  ];
}

test('on a terminal: readable lines, and the start-up says where everything is', async (t) => {
  const script = requireTool(t, ['/usr/bin/script', '/bin/script'], 'apt-get install -y util-linux (script)');
  if (script === null) return;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' }).end('hello');
  });
  const caDir = mkdtempSync(join(tmpdir(), 'sidecache-startup-'));
  const command = [process.execPath, ...serveArgs(origin.url, caDir)].map(shellQuote).join(' ');
  const sc = run(script, ['-qec', command, '/dev/null'], { SIDECACHE_LOG_FORMAT: '', NO_COLOR: '' });
  t.after(async () => {
    await sc.stop();
    await origin.close();
    rmSync(caDir, { recursive: true, force: true });
  });
  const [, proxyUrl] = (await sc.waitFor(/^ {2}proxy +(http:\/\/127\.0\.0\.1:\d+)\r?$/m)) as string[];
  const m = await sc.waitFor(/^ {2}routes +api: (\S+) -> (\S+)\r?$/m);
  assert.equal(m[1], `${proxyUrl}/api/`);
  assert.equal(m[2], origin.url);
  const text = (): string => sc.output().replace(ANSI, '');
  const [, adminUrl] = text().match(/^ {2}admin +(http:\/\/127\.0\.0\.1:\d+) /m) as string[];
  assert.match(text(), new RegExp(`^ {2}status page +${adminUrl}/\\r?$`, 'm'));
  assert.match(text(), new RegExp(`^ {2}CA certificate +${adminUrl}/ca\\.pem\\r?$`, 'm'));
  assert.match(text(), /^ {2}intercept +intercepted\.test\r?$/m);
  // The printed URLs answer.
  const status = await fetch(`${adminUrl}/`);
  assert.equal(status.status, 200);
  assert.match(await status.text(), /<html/i);
  const ca = await fetch(`${adminUrl}/ca.pem`);
  assert.equal(ca.status, 200);
  assert.match(await ca.text(), /BEGIN CERTIFICATE/);
  const res = await send(proxyUrl as string, '/api/greeting');
  assert.equal(res.status, 200);
  // The access line, readable: time, level, status, method, URL, duration, bytes.
  await sc.waitFor(
    /^\d\d:\d\d:\d\d\.\d{3} INFO +200 GET http:\/\/127\.0\.0\.1:\d+\/greeting [\d.]+ ms 5 B /m,
  );
  // Levels are coloured on a terminal.
  assert.ok(sc.output().includes(`${ESC}[32mINFO`));
  for (const line of text().split(/\r?\n/)) assert.doesNotMatch(line, /^\{/, 'no JSON line on a terminal');
});

test('on a pipe: JSON lines with the same facts; SIDECACHE_LOG_FORMAT overrides the choice', async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200).end('hello');
  });
  const caDir = mkdtempSync(join(tmpdir(), 'sidecache-startup-'));
  t.after(async () => {
    await origin.close();
    rmSync(caDir, { recursive: true, force: true });
  });
  const json = run(process.execPath, serveArgs(origin.url, caDir), { SIDECACHE_LOG_FORMAT: '' });
  t.after(() => json.stop());
  await json.waitFor(/"msg":"sidecache started"/);
  const lines = json
    .output()
    .split('\n')
    .filter((l) => l !== '');
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const started = parsed.find((o) => o['msg'] === 'sidecache started') as Record<string, unknown>;
  assert.equal(started['level'], 30);
  assert.equal(typeof started['time'], 'number');
  const proxyUrl = `http://${String(started['listen'])}`;
  const adminUrl = `http://${String(started['admin'])}`;
  assert.equal(started['proxyUrl'], proxyUrl);
  assert.equal(started['adminUrl'], adminUrl);
  assert.equal(started['statusUrl'], `${adminUrl}/`);
  assert.equal(started['caUrl'], `${adminUrl}/ca.pem`);
  assert.deepEqual(started['routes'], ['api']);
  assert.deepEqual(started['mounts'], [
    { route: 'api', url: `${proxyUrl}/api/`, hosts: [], origin: origin.url },
  ]);
  await json.stop();

  // Readable on a pipe when asked.
  const pretty = run(process.execPath, serveArgs(origin.url, caDir), { SIDECACHE_LOG_FORMAT: 'pretty' });
  t.after(() => pretty.stop());
  await pretty.waitFor(/^ {2}routes +api: http:\/\/127\.0\.0\.1:\d+\/api\/ -> /m);
  assert.doesNotMatch(pretty.output(), /^\{/m);
  assert.doesNotMatch(pretty.output(), ANSI, 'no colour codes when stdout is not a terminal');
});

test('SIDECACHE_LOG_FORMAT=json keeps JSON on a terminal', async (t) => {
  const script = requireTool(t, ['/usr/bin/script', '/bin/script'], 'apt-get install -y util-linux (script)');
  if (script === null) return;
  const caDir = mkdtempSync(join(tmpdir(), 'sidecache-startup-'));
  const command = [process.execPath, ...serveArgs('http://127.0.0.1:9', caDir)].map(shellQuote).join(' ');
  const sc = run(script, ['-qec', command, '/dev/null'], { SIDECACHE_LOG_FORMAT: 'json' });
  t.after(async () => {
    await sc.stop();
    rmSync(caDir, { recursive: true, force: true });
  });
  const [line] = await sc.waitFor(/^\{.*"msg":"sidecache started".*$/m);
  assert.equal(
    (JSON.parse((line as string).trim()) as { proxyUrl: string }).proxyUrl.startsWith('http://'),
    true,
  );
});
