/**
 * Logging: pino, JSON lines on stdout. The access observer writes one line per exchange.
 */
import { type LevelWithSilent, type Logger, pino } from 'pino';
import type { ExchangeEnd } from './front/front-server.js';

export type { Logger };

/**
 * Lines are buffered up to 4 KiB (one write per several access lines instead of one per request)
 * and flushed at least every `flushMs`, at start-up and at shutdown.
 */
export function createLogger(
  level: LevelWithSilent,
  destination?: NodeJS.WritableStream,
  flushMs = 500,
): Logger {
  const logger = pino(
    { level, base: { svc: 'sidecache' }, timestamp: pino.stdTimeFunctions.epochTime },
    destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
  if (destination === undefined && level !== 'silent') setInterval(() => logger.flush(), flushMs).unref();
  return logger;
}

/** One JSON access line per exchange: route, status, duration, bytes, reason. No query strings. */
export function createAccessLog(logger: Logger): (end: ExchangeEnd) => void {
  return ({ ex, status, bytes, error }) => {
    const end = ex.timings.end ?? ex.timings.start;
    const line = {
      ex: ex.id,
      mode: ex.mode,
      route: ex.route?.name ?? null,
      method: ex.method,
      origin: ex.origin,
      path: ex.target.pathname,
      status,
      durMs: Math.round((end - ex.timings.start) * 1000) / 1000,
      bytes,
      reason: ex.reason,
      cache: ex.cache?.outcome ?? null,
      reused: ex.originInfo?.reusedConnection ?? null,
      ...(error ? { err: error.code, msg2: error.message } : {}),
    };
    if (status >= 500 && status !== 504) logger.warn(line, 'access');
    else logger.info(line, 'access');
  };
}
