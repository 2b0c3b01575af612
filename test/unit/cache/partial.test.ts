import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  completionRange,
  mergeParts,
  parseContentRange,
  replyFromPart,
  storablePart,
  validatorsMatch,
} from '../../../src/cache/partial.js';

const part = (first: number, text: string, length = 10) => ({
  span: { first, last: first + text.length - 1, length },
  body: Buffer.from(text),
});

describe('partial content (RFC 9111 §3.3, §3.4)', () => {
  test('Content-Range is parsed strictly: one span of a known length', () => {
    assert.deepEqual(parseContentRange('bytes 0-4/10'), { first: 0, last: 4, length: 10 });
    for (const bad of [
      'bytes 0-4/*',
      'bytes */10',
      'bytes 5-4/10',
      'bytes 0-10/10',
      'bytes=0-4/10',
      ' bytes 0-4/10x',
      'bytes -1-4/10',
      'bytes 0-4/99999999999999999',
    ]) {
      assert.equal(parseContentRange(bad), null, bad);
    }
    assert.equal(parseContentRange(['bytes 0-4/10', 'bytes 5-9/10']), null);
  });
  test('a part is storable only uncoded, with a Content-Length equal to its span, within the size bound', () => {
    assert.notEqual(storablePart({ 'content-range': 'bytes 0-4/10', 'content-length': '5' }, 100), null);
    assert.equal(storablePart({ 'content-range': 'bytes 4-9/10', 'content-length': '5' }, 100), null);
    assert.equal(storablePart({ 'content-range': 'bytes 0-4/10', 'content-encoding': 'gzip' }, 100), null);
    assert.equal(storablePart({ 'content-range': 'bytes 0-4/1000' }, 100), null);
  });
  test('validators: the same strong ETag, or without ETags the same Last-Modified 60 s before Date', () => {
    assert.equal(validatorsMatch({ etag: '"a"' }, { etag: '"a"' }), true);
    assert.equal(validatorsMatch({ etag: '"a"' }, { etag: '"b"' }), false);
    assert.equal(validatorsMatch({ etag: 'W/"a"' }, { etag: 'W/"a"' }), false);
    assert.equal(validatorsMatch({ etag: '"a"' }, {}), false);
    assert.equal(validatorsMatch({}, {}), false);
    const lm = 'Mon, 01 Jan 2024 00:00:00 GMT';
    const later = 'Mon, 01 Jan 2024 00:01:00 GMT';
    const soon = 'Mon, 01 Jan 2024 00:00:30 GMT';
    assert.equal(
      validatorsMatch({ 'last-modified': lm, date: later }, { 'last-modified': lm, date: later }),
      true,
    );
    assert.equal(
      validatorsMatch({ 'last-modified': lm, date: soon }, { 'last-modified': lm, date: later }),
      false,
    );
    assert.equal(
      validatorsMatch(
        { 'last-modified': lm, date: later, etag: 'W/"x"' },
        { 'last-modified': lm, date: later },
      ),
      false,
    );
  });
  test('parts merge when they touch or overlap and agree; never across a gap, lengths or disagreeing bytes', () => {
    assert.equal(mergeParts(part(0, '01234'), part(5, '56789'))?.body.toString(), '0123456789');
    assert.equal(mergeParts(part(3, '3456789'), part(0, '01234'))?.body.toString(), '0123456789');
    assert.equal(mergeParts(part(0, '0123456'), part(2, '234'))?.body.toString(), '0123456');
    assert.equal(mergeParts(part(0, '0123'), part(5, '56789')), null);
    assert.equal(mergeParts(part(0, '01234'), part(5, '56789', 11)), null);
    assert.equal(mergeParts(part(0, '01234'), part(3, 'X456')), null);
  });
  test('completion asks for the rest of a part that starts at 0', () => {
    assert.equal(completionRange(part(0, '01234').span), 'bytes=5-');
    assert.equal(completionRange(part(2, '234').span), null);
    assert.equal(completionRange(part(0, '0123456789').span), null);
  });
  test('a range is served from a part only when it lies inside it', () => {
    const p = part(4, '456789');
    const r = replyFromPart({ range: 'bytes=6-8' }, { etag: '"a"', 'content-range': 'bytes 4-9/10' }, p);
    assert.equal(r?.body.toString(), '678');
    assert.equal(r?.headers['content-range'], 'bytes 6-8/10');
    assert.equal(r?.headers['content-length'], '3');
    assert.equal(replyFromPart({ range: 'bytes=-2' }, {}, p)?.body.toString(), '89');
    assert.equal(replyFromPart({ range: 'bytes=3-5' }, {}, p), null);
    assert.equal(replyFromPart({ range: 'bytes=0-1,6-7' }, {}, p), null);
    assert.equal(replyFromPart({ range: 'bytes=10-' }, {}, p), null);
    assert.equal(replyFromPart({ range: 'bytes=6-7', 'if-range': '"b"' }, { etag: '"a"' }, p), null);
  });
});
