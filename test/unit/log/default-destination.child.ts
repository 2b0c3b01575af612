/**
 * Child of default-destination.test.ts: logs numbered lines of mixed lengths through the default
 * JSON destination (stdout), then ends as argv[2] says. Every fifth line is padded with a
 * character of 3 UTF-8 bytes, and line 250 is longer than a batch (40,000 characters).
 */
import { createLogger, readableLogs } from '../../../src/log.js';

// As the CLI does: process.stdout is looked at before the logger is made (which makes a pipe or
// socket on standard output non-blocking: Node's own handle).
const logger = createLogger('info', undefined, 500, readableLogs('json', process.stdout.isTTY === true));
const count = Number(process.argv[3] ?? 500);
for (let i = 0; i < count; i++) logger.info({ i, pad: padOf(i) }, 'numbered');
const how = process.argv[2];
if (how === 'exit') process.exit(0);
if (how === 'throw') throw new Error('thrown after logging');
if (how === 'flush') {
  logger.flush();
  // Keeps running a moment with nothing more to log (the lines must not wait for exit).
  setTimeout(() => process.stderr.write('flushed\n'), 200);
}

function padOf(i: number): string {
  if (i === 250) return 'y'.repeat(40_000);
  return (i % 5 === 0 ? '€' : 'x').repeat((i * 37) % 900);
}
