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
  // The line is written by hand straight to pino's destination: the same fields, in the same order
  // and form as `logger.info(fields, 'access')` writes them (a test compares the two), at a fraction
  // of the cost of pino's generic serialisation, which ran on every request.
  const direct = directWriter(logger);
  return (end) => {
    const warn = end.status >= 500 && end.status !== 504;
    if (direct === null) {
      const line = accessFields(end);
      if (warn) logger.warn(line, 'access');
      else logger.info(line, 'access');
      return;
    }
    const level = warn ? 'warn' : 'info';
    if (!logger.isLevelEnabled(level)) return;
    direct.write(
      `{"level":${logger.levels.values[level]}${direct.time()}${direct.bindings},${accessJson(end)},"msg":"access"}\n`,
    );
  };
}

interface DirectWriter {
  write(line: string): unknown;
  /** `,"time":…` as pino writes it. */
  time(): string;
  /** The logger's bindings as pino writes them: `,"svc":"sidecache"`. */
  readonly bindings: string;
}

/**
 * What writing a line straight to a pino logger's destination needs, or null when the logger
 * formats lines in ways a hand-written line would not match (custom formatters, a mixin, another
 * message key): then lines go through pino.
 */
export function directWriter(logger: Logger): DirectWriter | null {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write?: unknown } | undefined;
  const time = internals[pino.symbols.timeSym];
  const bindings = internals[pino.symbols.chindingsSym];
  const formatters = internals[pino.symbols.formattersSym] as { level?: unknown; log?: unknown } | undefined;
  if (
    stream === undefined ||
    typeof stream.write !== 'function' ||
    typeof time !== 'function' ||
    typeof bindings !== 'string' ||
    internals[pino.symbols.mixinSym] !== undefined ||
    internals[pino.symbols.messageKeySym] !== 'msg' ||
    formatters === undefined ||
    formatters.level !== DEFAULT_FORMATTERS.level ||
    formatters.log !== DEFAULT_FORMATTERS.log
  )
    return null;
  const write = stream.write as (line: string) => unknown;
  return { write: (line) => write.call(stream, line), time: time as () => string, bindings };
}

/** pino's own formatters, to tell whether a logger was given custom ones. */
const DEFAULT_FORMATTERS = (
  pino({ level: 'silent' }) as unknown as Record<symbol, { level?: unknown; log?: unknown }>
)[pino.symbols.formattersSym] as { level?: unknown; log?: unknown };

/** The access line's fields as an object (for a logger with custom formatters). */
export function accessFields({ ex, status, bytes, error }: ExchangeEnd): Record<string, unknown> {
  const end = ex.timings.end ?? ex.timings.start;
  return {
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
    ...(error ? { err: error.code, errMessage: error.message } : {}),
  };
}

/** The same fields as accessFields, as the inside of a JSON object (no braces). */
export function accessJson({ ex, status, bytes, error }: ExchangeEnd): string {
  const end = ex.timings.end ?? ex.timings.start;
  const route = ex.route?.name;
  const reused = ex.originInfo?.reusedConnection;
  const cache = ex.cache?.outcome;
  let out =
    `"ex":${jsonString(ex.id)},"mode":${jsonString(ex.mode)},` +
    `"route":${route === undefined ? 'null' : jsonString(route)},"method":${jsonString(ex.method)},` +
    `"origin":${jsonString(ex.origin)},"path":${jsonString(ex.target.pathname)},` +
    `"status":${jsonNumber(status)},"durMs":${jsonNumber(Math.round((end - ex.timings.start) * 1000) / 1000)},` +
    `"bytes":${jsonNumber(bytes)}`;
  // JSON.stringify leaves an undefined field out.
  if (ex.reason !== undefined) out += `,"reason":${jsonString(ex.reason)}`;
  out += `,"cache":${cache === undefined ? 'null' : jsonString(cache)},"reused":${reused === undefined ? 'null' : String(reused)}`;
  if (error) out += `,"err":${jsonString(error.code)},"errMessage":${jsonString(error.message)}`;
  return out;
}

/**
 * Anything but printable ASCII other than `"` and `\`: what a JSON string must escape, plus
 * non-ASCII, left to JSON.stringify to be safe.
 */
const JSON_UNSAFE = /[^ !#-[\]-~]/;

function jsonString(s: string): string {
  return JSON_UNSAFE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}
