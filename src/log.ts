/**
 * Logging: pino, JSON lines on stdout. The access observer writes one line per exchange;
 * `logStageEvents` logs what the stages publish on their diagnostics channels (channels.ts).
 */
import { type LevelWithSilent, type Logger, pino } from 'pino';
import { type Instance, subscribe } from './channels.js';
import type { ExchangeEnd } from './exchange.js';
import { type BatchSink, batchSink, writeAllSync } from './log-sink.js';

export type { Logger };

/** `log.format`: `json`, `pretty` (readable lines), or `auto` (readable when stdout is a terminal). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/** Whether lines are printed readably: `pretty`, or `auto` on a terminal. */
export function readableLogs(format: LogFormat, stdoutIsTty: boolean): boolean {
  return format === 'pretty' || (format === 'auto' && stdoutIsTty);
}

/**
 * JSON lines are buffered up to 4 KiB (one write per several access lines instead of one per
 * request: LineBatch) and flushed at least every `flushMs`, at start-up and at shutdown. With
 * `readable`, the same lines are written as text for a person at a terminal (readableDestination),
 * unbuffered.
 */
export function createLogger(
  level: LevelWithSilent,
  destination?: NodeJS.WritableStream,
  flushMs = 500,
  readable = false,
): Logger {
  const logger = pino(
    { level, base: { svc: 'sidecache' }, timestamp: pino.stdTimeFunctions.epochTime },
    destination !== undefined
      ? readable
        ? readableDestination(destination, false)
        : destination
      : readable
        ? readableDestination(process.stdout, process.stdout.isTTY === true && !process.env['NO_COLOR'])
        : new LineBatch(batchSink(1), 1),
  );
  if (destination === undefined && !readable && level !== 'silent')
    setInterval(() => logger.flush(), flushMs).unref();
  return logger;
}

/**
 * Gathers lines, encoded, into buffers of the sink's batch size (4 KiB for sonic-boom, 16 KiB when
 * written directly: log-sink.ts) before standard output gets them: one write per ~12 or ~50 access
 * lines, and each line encoded once, into the buffer (sonic-boom's string mode measured the UTF-8
 * length of every string, flattening it, and encoded it again to write it). A buffer the sink
 * wrote at once is filled again; one it keeps is left to it. What is still gathered at exit is
 * written after whatever the sink holds.
 */
class LineBatch {
  readonly #size: number;
  #buf: Buffer;
  #used = 0;
  readonly #sink: BatchSink;
  /** The sink's file descriptor. */
  readonly #fd: number;

  constructor(sink: BatchSink, fd: number) {
    this.#sink = sink;
    this.#fd = fd;
    this.#size = sink.batchBytes;
    this.#buf = Buffer.allocUnsafe(this.#size);
    LineBatch.#atExit(this);
  }

  write(line: string): boolean {
    const room = this.#size - this.#used;
    // A UTF-8 encoding has at most 3 bytes per UTF-16 unit: the line surely fits (the usual case).
    if (line.length * 3 <= room) {
      this.#used += this.#buf.write(line, this.#used);
      return true;
    }
    const bytes = Buffer.byteLength(line);
    if (bytes <= room) {
      this.#used += this.#buf.write(line, this.#used);
      return true;
    }
    this.#hand();
    if (bytes <= this.#size) {
      this.#used = this.#buf.write(line, 0);
      return true;
    }
    // Longer than a batch: on its own, after what was gathered before it.
    this.#sink.write(Buffer.from(line));
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.#hand();
    this.#sink.flush(cb);
  }

  flushSync(): void {
    this.#hand();
    this.#sink.flushSync();
  }

  end(): void {
    this.#hand();
    this.#sink.end();
  }

  /** Gives the gathered bytes to the sink; a new buffer when it keeps them (not all written yet). */
  #hand(): void {
    if (this.#used === 0) return;
    const kept = this.#sink.write(this.#buf.subarray(0, this.#used));
    this.#used = 0;
    if (kept) this.#buf = Buffer.allocUnsafe(this.#size);
  }

  /** The batches to write out at exit (held weakly: tests make many loggers). */
  static #open: Set<WeakRef<LineBatch>> | null = null;

  static #atExit(batch: LineBatch): void {
    if (LineBatch.#open === null) {
      const open = new Set<WeakRef<LineBatch>>();
      LineBatch.#open = open;
      process.on('exit', () => {
        for (const ref of open) {
          const batch = ref.deref();
          if (batch !== undefined) batch.#exit();
        }
      });
    }
    LineBatch.#open.add(new WeakRef(batch));
  }

  /** At exit nothing asynchronous completes: what the sink holds first, then the rest, synchronously. */
  #exit(): void {
    try {
      this.#sink.flushSync();
    } catch {
      // Ended, not open yet or failing: the lines below still get their chance.
    }
    if (this.#used === 0) return;
    const gathered = this.#buf.subarray(0, this.#used);
    this.#used = 0;
    // False when stdout is gone or stalled at exit: nothing left to do about it.
    writeAllSync(this.#fd, gathered);
  }
}

/**
 * A pino destination that turns each JSON line into readable text on `out`: the time, the level
 * and the message, then the other fields as key=value; access lines and the start-up line have
 * forms of their own. Only used when a person reads the output, never on the JSON path.
 */
export function readableDestination(
  out: NodeJS.WritableStream,
  color: boolean,
): { write(chunk: string): boolean; flush(cb?: (err?: Error) => void): void } {
  let rest = '';
  return {
    write(chunk) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      let text = '';
      for (const line of lines) if (line !== '') text += `${readableLine(line, color)}\n`;
      if (text !== '') out.write(text);
      return true;
    },
    flush(cb) {
      cb?.();
    },
  };
}

const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
const LEVEL_COLORS: Readonly<Record<number, string>> = {
  10: '90',
  20: '90',
  30: '32',
  40: '33',
  50: '31',
  60: '31',
};
/** Fields every line has, shown in the line's head rather than as key=value. */
const HEAD_FIELDS: ReadonlySet<string> = new Set(['level', 'time', 'svc', 'msg']);
const ACCESS_SHOWN: ReadonlySet<string> = new Set([
  ...HEAD_FIELDS,
  'method',
  'origin',
  'path',
  'status',
  'durMs',
  'bytes',
]);
const STARTED_SHOWN: ReadonlySet<string> = new Set([
  ...HEAD_FIELDS,
  'listen',
  'admin',
  'routes',
  'proxyUrl',
  'adminUrl',
  'statusUrl',
  'caUrl',
  'intercept',
  'mounts',
  'forward',
]);

/** One JSON log line as readable text (a line that is not JSON is returned as it is). */
export function readableLine(json: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  if (typeof o !== 'object' || o === null) return json;
  const paint = (code: string, text: string): string => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const levelNumber = typeof o['level'] === 'number' ? o['level'] : 30;
  const level = paint(
    LEVEL_COLORS[levelNumber] ?? '0',
    (LEVEL_NAMES[levelNumber] ?? String(o['level'])).padEnd(5),
  );
  const head = `${typeof o['time'] === 'number' ? clockTime(o['time']) : '--:--:--.---'} ${level}`;
  const rest = (shown: ReadonlySet<string>): string =>
    Object.entries(o)
      .filter(([k]) => !shown.has(k))
      .map(([k, v]) => ` ${k}=${readableValue(v)}`)
      .join('');
  if (o['msg'] === 'access') {
    return (
      `${head} ${String(o['status'])} ${String(o['method'])} ${String(o['origin'])}${String(o['path'])} ` +
      `${String(o['durMs'])} ms ${String(o['bytes'])} B${rest(ACCESS_SHOWN)}`
    );
  }
  if (o['msg'] === 'sidecache started')
    return `${head} ${o['msg']}${rest(STARTED_SHOWN)}${whereEverythingIs(o)}`;
  return `${head} ${String(o['msg'] ?? '')}${rest(HEAD_FIELDS)}`;
}

/** The start-up line's addresses and routes, one per line, aligned. */
function whereEverythingIs(o: Record<string, unknown>): string {
  const rows: [string, string][] = [];
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  const proxy = str(o['proxyUrl']);
  if (proxy) rows.push(['proxy', proxy]);
  const admin = str(o['adminUrl']);
  rows.push(['admin', admin ? `${admin}  (/metrics /healthz /readyz /cache /purge)` : 'disabled']);
  const status = str(o['statusUrl']);
  if (status) rows.push(['status page', status]);
  const ca = str(o['caUrl']);
  const intercept = Array.isArray(o['intercept']) ? o['intercept'].map(String) : [];
  if (intercept.length > 0) rows.push(['intercept', intercept.join(', ')]);
  if (ca) rows.push(['CA certificate', ca]);
  const forward = Array.isArray(o['forward']) ? o['forward'].map(String) : [];
  if (proxy) {
    const reach =
      forward.length > 0 ? `route origins and ${forward.join(', ')}` : 'route origins (allow: none)';
    rows.push(['forward proxy', `HTTP_PROXY=${proxy} HTTPS_PROXY=${proxy}: ${reach}`]);
  }
  const mounts = Array.isArray(o['mounts']) ? (o['mounts'] as Record<string, unknown>[]) : [];
  if (mounts.length === 0) rows.push(['routes', 'none']);
  mounts.forEach((m, i) => {
    const at = [
      str(m['url']),
      ...(Array.isArray(m['hosts']) ? m['hosts'].map((h) => `Host: ${String(h)}`) : []),
    ]
      .filter((x) => x !== null)
      .join(', ');
    rows.push([
      i === 0 ? 'routes' : '',
      `${String(m['route'])}: ${at || '(forward proxy only)'} -> ${String(m['origin'])}`,
    ]);
  });
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `\n  ${k.padEnd(width)}  ${v}`).join('');
}

function readableValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return v.map(readableValue).join(',');
  // pino's error serialiser: show the message (and code), not the stack.
  if (typeof v === 'object' && v !== null && 'message' in v && 'type' in v) {
    const e = v as { message: unknown; code?: unknown };
    return JSON.stringify(`${e.code !== undefined ? `${String(e.code)}: ` : ''}${String(e.message)}`);
  }
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

/** HH:MM:SS.mmm in local time. */
function clockTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** An http URL for a listening address (`[::1]` for IPv6; a wildcard becomes loopback). */
/**
 * Logs the stage events of `instance` worth a line: the warm start done, origins failing and
 * recovering (keep-warm), background refreshes and store calls that failed (cache), client TLS
 * handshakes on intercepted tunnels that failed or were refused (tunnel/). Returns the unsubscribe.
 */
export function logStageEvents(logger: Logger, instance: Instance): () => void {
  const offs = [
    subscribe(instance, 'sidecache:warm:start', (result) => {
      logger.info(
        { ...result, durationMs: Math.round(result.durationMs) },
        result.initial ? 'warm start done' : 'config reload: warming of new route origins done',
      );
    }),
    subscribe(instance, 'sidecache:warm:health', ({ origin, healthy, errorCode }) => {
      if (healthy) logger.info({ origin }, 'keep-warm: origin reachable again');
      else logger.warn({ origin, code: errorCode }, 'keep-warm: cannot connect; retrying with backoff');
    }),
    subscribe(instance, 'sidecache:cache:refresh-error', ({ err, url }) => {
      logger.warn({ err, url }, 'cache: background refresh failed');
    }),
    subscribe(instance, 'sidecache:cache:store-error', ({ err, op }) => {
      logger.warn({ err, op }, 'cache: store failed');
    }),
    subscribe(instance, 'sidecache:tls:handshake-failure', ({ kind, authority, code }) => {
      logger.info({ kind, authority, code }, 'client TLS handshake failed on an intercepted tunnel');
    }),
    subscribe(instance, 'sidecache:tls:handshake-refused', ({ reason, authority, servername }) => {
      logger.warn(
        { reason, authority, servername },
        'refused a TLS handshake on an intercepted tunnel: the SNI names another host than the CONNECT',
      );
    }),
  ];
  return () => {
    for (const off of offs) off();
  };
}

export function httpUrl(address: string, port: number): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** The end of every access line. */
const ACCESS_TAIL = ',"msg":"access"}\n';

/** One JSON access line per exchange: route, status, duration, bytes, reason. No query strings. */
export function createAccessLog(logger: Logger): (end: ExchangeEnd) => void {
  // The line is written by hand straight to pino's destination: the same fields, in the same order
  // and form as `logger.info(fields, 'access')` writes them (a test compares the two), at a fraction
  // of the cost of pino's generic serialisation, which ran on every request.
  const direct = directWriter(logger);
  const infoHead = `{"level":${logger.levels.values['info']}`;
  const warnHead = `{"level":${logger.levels.values['warn']}`;
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
    direct.write(accessLine(warn ? warnHead : infoHead, direct.time(), direct.bindings, end, ACCESS_TAIL));
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
    ...(ex.cache?.stored === undefined ? {} : { stored: ex.cache.stored }),
    reused: ex.originInfo?.reusedConnection ?? null,
    ...(error ? { err: error.code, errMessage: error.message } : {}),
  };
}

/** The same fields as accessFields, as the inside of a JSON object (no braces). */
export function accessJson(end: ExchangeEnd): string {
  return accessLine('', '', '', end, '');
}

/**
 * The line's start (`head`, `time`, `bindings` and a comma, or nothing), the access fields
 * (accessJson) and `after`. The fields fixed by the request target are joined once per target
 * (targetPart); values that repeat from line to line (mode, route, method, origin, reason, cache
 * outcome) are quoted once. The line is encoded into the log batch as soon as it is made
 * (LineBatch), so the joined pieces never outlive it.
 */
function accessLine(
  head: string,
  time: string,
  bindings: string,
  { ex, status, bytes, error }: ExchangeEnd,
  after: string,
): string {
  const end = ex.timings.end ?? ex.timings.start;
  const reused = ex.originInfo?.reusedConnection;
  const cache = ex.cache?.outcome;
  const stored = ex.cache?.stored;
  let out =
    `${head}${time}${bindings}${head === '' ? '"ex":' : ',"ex":'}${jsonString(ex.id)}${targetPart(ex)}` +
    `,"status":${jsonNumber(status)},"durMs":${jsonMillis(end - ex.timings.start)},"bytes":${jsonNumber(bytes)}`;
  // JSON.stringify leaves an undefined field out.
  if (ex.reason !== undefined) out += `,"reason":${quoted(ex.reason)}`;
  out += cache === undefined ? ',"cache":null' : `,"cache":${quoted(cache)}`;
  // Whether a miss was stored: known only here, after the body (Cache-Status cannot always say).
  if (stored !== undefined) out += stored ? ',"stored":true' : ',"stored":false';
  out += reused === undefined ? ',"reused":null' : reused ? ',"reused":true' : ',"reused":false';
  if (error) out += `,"err":${jsonString(error.code)},"errMessage":${jsonString(error.message)}`;
  return out + after;
}

/** The access line's fields fixed by the request target, and the exchange they were made for. */
interface TargetPart {
  readonly mode: string;
  readonly route: ExchangeEnd['ex']['route'];
  readonly method: string;
  readonly origin: string;
  /** `,"mode":…,"route":…,"method":…,"origin":…,"path":…` */
  readonly json: string;
}

/**
 * The access line's mode, route, method, origin and path, kept per target URL: front/ gives every
 * request for the same target the same URL object, never changed (target.ts), so a target asked
 * for again costs four comparisons instead of reading the path and checking it for escapes.
 */
const targetParts = new WeakMap<URL, TargetPart>();

function targetPart(ex: ExchangeEnd['ex']): string {
  const known = targetParts.get(ex.target);
  if (
    known !== undefined &&
    known.method === ex.method &&
    known.route === ex.route &&
    known.mode === ex.mode &&
    known.origin === ex.origin
  )
    return known.json;
  const route = ex.route?.name;
  const json =
    `,"mode":${quoted(ex.mode)},"route":${route === undefined ? 'null' : quoted(route)},` +
    `"method":${quoted(ex.method)},"origin":${quoted(ex.origin)},"path":${jsonString(ex.target.pathname)}`;
  targetParts.set(ex.target, { mode: ex.mode, route: ex.route, method: ex.method, origin: ex.origin, json });
  return json;
}

/** JSON strings of values that repeat from line to line, made once each (at most QUOTED_MAX). */
const QUOTED = new Map<string, string>();
const QUOTED_MAX = 1024;

function quoted(s: string): string {
  let q = QUOTED.get(s);
  if (q === undefined) {
    q = jsonString(s);
    if (QUOTED.size < QUOTED_MAX) QUOTED.set(s, q);
  }
  return q;
}

/**
 * `ms` rounded to µs, as JSON writes that number (`String(Math.round(ms * 1000) / 1000)`), by
 * integer arithmetic: converting a fraction to a string costs more than converting two integers.
 */
export function jsonMillis(ms: number): string {
  const micros = Math.round(ms * 1000);
  // Below 1e15 µs the number has at most 15 digits, which JavaScript prints exactly as they are.
  if (!(micros >= 0 && micros < 1e15)) return jsonNumber(micros / 1000);
  const whole = Math.floor(micros / 1000);
  const frac = micros - whole * 1000;
  if (frac === 0) return String(whole);
  if (frac % 100 === 0) return `${whole}.${frac / 100}`;
  if (frac % 10 === 0) return frac < 100 ? `${whole}.0${frac / 10}` : `${whole}.${frac / 10}`;
  return frac < 10 ? `${whole}.00${frac}` : frac < 100 ? `${whole}.0${frac}` : `${whole}.${frac}`;
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
