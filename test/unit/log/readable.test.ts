/** Readable log lines (log.format pretty / auto on a terminal), from the JSON lines pino writes. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, readableLine, readableLogs } from '../../../src/log.js';

const ESC = String.fromCharCode(27);

describe('readable log lines', () => {
  it('is chosen for pretty, and for auto only on a terminal', () => {
    assert.equal(readableLogs('auto', true), true);
    assert.equal(readableLogs('auto', false), false);
    assert.equal(readableLogs('pretty', false), true);
    assert.equal(readableLogs('json', true), false);
  });

  it('shows an error by its code and message, not its stack, and other fields as key=value', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const logger = createLogger('info', out, 500, true);
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    logger.warn({ err, origin: 'https://api.example', attempts: 2 }, 'keep-warm: cannot connect');
    logger.flush();
    assert.match(
      text,
      /^\d\d:\d\d:\d\d\.\d{3} WARN {2}keep-warm: cannot connect err="ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9" origin=https:\/\/api.example attempts=2\n$/,
    );
    assert.doesNotMatch(text, /at .*\(|svc=/, 'no stack, no svc');
  });

  it('writes an access line as status, method, URL, duration and bytes', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 0, 1, 12, 0, 0, 5),
      svc: 'sidecache',
      ex: 'ab-1',
      mode: 'route',
      route: 'api',
      method: 'GET',
      origin: 'https://api.example',
      path: '/v1/x',
      status: 502,
      durMs: 12.5,
      bytes: 80,
      reason: 'upstream_reset',
      cache: 'miss',
      reused: false,
      err: 'SC_ERR_UPSTREAM_RESET',
      errMessage: 'socket hang up',
      msg: 'access',
    });
    const text = readableLine(line, true);
    assert.ok(text.includes(`${ESC}[33mWARN `), 'warn in yellow');
    assert.match(
      text.replace(new RegExp(`${ESC}\\[[0-9;]*m`, 'g'), ''),
      /^\d\d:\d\d:\d\d\.005 WARN {2}502 GET https:\/\/api.example\/v1\/x 12.5 ms 80 B ex=ab-1 mode=route route=api reason=upstream_reset cache=miss reused=false err=SC_ERR_UPSTREAM_RESET errMessage="socket hang up"$/,
    );
    assert.equal(readableLine('not json', false), 'not json');
  });
});
