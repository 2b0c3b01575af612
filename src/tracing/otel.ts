/**
 * The OpenTelemetry side of tracing (index.ts loads this module only when tracing is on).
 *
 * One span tree per finished exchange, made after the fact from the Exchange's timeline:
 *
 *   <METHOD> (server)                     the whole exchange, from arrival to the response sent
 *   ├─ cache <outcome>                    the cache stage (lookup, serving, deciding to store);
 *   │                                     "coalesce wait" for a follower of another's fetch; for a
 *   │                                     hit or stale answer only when it took 1 ms or more
 *   └─ <METHOD> (client)                  the request to the origin ("revalidate" for a 304 check),
 *      ├─ dns lookup                      until its body ended, and, on a new connection, its
 *      ├─ connect                         DNS, TCP and TLS phases
 *      └─ tls handshake
 *
 * The server span continues the client's traceparent/tracestate when there is one. With
 * propagation on for the route, the upstream request carries a traceparent naming the client span
 * above; its ids are drawn when the request is sent and used when the spans are made (PresetIds).
 * With propagation off, the client's traceparent and tracestate are removed from upstream requests.
 *
 * Attributes never carry credentials: no request or response header values, and `url.full` has
 * the values of credential-like query parameters redacted (admin/cache-list.ts, redactUrl).
 */

import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_FULL,
} from '@opentelemetry/semantic-conventions';
import { Counter } from 'prom-client';
import { redactUrl } from '../admin/cache-list.js';
import type { Runtime } from '../config/runtime.js';
import type { TracingConfig } from '../config/schema.js';
import type { Exchange, ExchangeEnd, Timings } from '../exchange.js';
import { SIDECACHE_VERSION } from '../version.js';
import { type Tracing, type TracingDeps, tracesUrl } from './tracing.js';

/** Set on the server span's start attributes when the tail rule applies: TailSampler keeps it. */
const TAIL = 'sidecache.sampled.tail';

/** A hit's or stale answer's cache phase gets a span of its own from this long, ms. */
const CACHE_SPAN_MIN_MS = 1;

/** Ids drawn when the upstream request was sent with our traceparent, used when the spans are made. */
interface Preset {
  readonly traceId: string;
  readonly serverSpanId: string;
  readonly upstreamSpanId: string;
}

/**
 * The SDK's random ids, except that the next trace id and span id can be given (PresetIds.next):
 * the Tracer draws the span id, then the trace id of a root span, in startSpan.
 */
class PresetIds implements IdGenerator {
  readonly #random = new RandomIdGenerator();
  #traceId: string | undefined;
  #spanId: string | undefined;

  next(traceId: string | undefined, spanId: string | undefined): void {
    this.#traceId = traceId;
    this.#spanId = spanId;
  }

  generateTraceId(): string {
    const id = this.#traceId;
    this.#traceId = undefined;
    return id ?? this.#random.generateTraceId();
  }

  generateSpanId(): string {
    const id = this.#spanId;
    this.#spanId = undefined;
    return id ?? this.#random.generateSpanId();
  }
}

/** Head sampling as configured, plus the tail rule: a span marked TAIL is always sampled. */
class TailSampler implements Sampler {
  constructor(readonly head: Sampler) {}

  shouldSample(
    ctx: Context,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    links: [],
  ): SamplingResult {
    const r = this.head.shouldSample(ctx, traceId, name, kind, attributes, links);
    if (r.decision !== SamplingDecision.RECORD_AND_SAMPLED && attributes[TAIL] === true) {
      return { decision: SamplingDecision.RECORD_AND_SAMPLED };
    }
    return r;
  }

  toString(): string {
    return `TailSampler{${this.head.toString()}}`;
  }
}

export function headSampler(cfg: Pick<TracingConfig, 'sampler' | 'ratio'>): Sampler {
  switch (cfg.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(cfg.ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(cfg.ratio) });
  }
}

/**
 * A bounded queue in front of the SDK's batch processor, which drops silently: spans handed on and
 * not yet exported (or failed) are counted here, and a span that would exceed `maxSpans` is dropped
 * and counted in the metric instead. Export failures count as drops too.
 */
class CountingExport implements SpanExporter {
  pending = 0;
  constructor(
    readonly inner: SpanExporter,
    readonly onResult: (spans: number, result: ExportResult) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    let settled = false;
    this.inner.export(spans, (result) => {
      if (settled) return;
      settled = true;
      this.pending -= spans.length;
      this.onResult(spans.length, result);
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

class BoundedProcessor implements SpanProcessor {
  constructor(
    readonly batch: BatchSpanProcessor,
    readonly exporter: CountingExport,
    readonly maxSpans: number,
    readonly onDrop: () => void,
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.exporter.pending >= this.maxSpans) {
      this.onDrop();
      return;
    }
    this.exporter.pending++;
    this.batch.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.batch.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.batch.shutdown();
  }
}

export function createOtelTracing(cfg: TracingConfig, deps: TracingDeps): Tracing {
  const { ref, registry, logger } = deps;
  const endpoint = tracesUrl(cfg.endpoint as string);
  const dropped = new Counter({
    name: 'sidecache_tracing_spans_dropped_total',
    help: 'Spans not exported, by reason (queue_full: the export queue was full; export_failed: the collector refused or could not be reached).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const exported = new Counter({
    name: 'sidecache_tracing_spans_exported_total',
    help: 'Spans the collector accepted.',
    registers: [registry],
  });
  dropped.inc({ reason: 'queue_full' }, 0);
  dropped.inc({ reason: 'export_failed' }, 0);

  let failing = false;
  const exporter = new CountingExport(
    new OTLPTraceExporter({ url: endpoint, timeoutMillis: cfg.queue.exportTimeoutMs }),
    (count, result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        exported.inc(count);
        if (failing)
          logger.info({ endpoint: redactUrl(endpoint) }, 'tracing: exporting to the collector again');
        failing = false;
        return;
      }
      dropped.inc({ reason: 'export_failed' }, count);
      if (!failing) {
        logger.warn(
          { endpoint: redactUrl(endpoint), message: result.error?.message },
          'tracing: cannot export spans; dropping them until the collector answers',
        );
      }
      failing = true;
    },
  );
  const batch = new BatchSpanProcessor(exporter, {
    maxQueueSize: cfg.queue.maxSpans,
    maxExportBatchSize: Math.min(cfg.queue.batchSpans, cfg.queue.maxSpans),
    scheduledDelayMillis: cfg.queue.delayMs,
    exportTimeoutMillis: cfg.queue.exportTimeoutMs,
  });
  const processor = new BoundedProcessor(batch, exporter, cfg.queue.maxSpans, () =>
    dropped.inc({ reason: 'queue_full' }),
  );
  const ids = new PresetIds();
  const sampler = new TailSampler(headSampler(cfg));
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: cfg.serviceName,
      [ATTR_SERVICE_VERSION]: SIDECACHE_VERSION,
    }),
    sampler,
    idGenerator: ids,
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('sidecache', SIDECACHE_VERSION);
  const propagator = new W3CTraceContextPropagator();
  /** Keyed by the timeline, which the cache stage's upstream copy of an exchange shares. */
  const presets = new WeakMap<Timings, Preset>();
  const random = new RandomIdGenerator();

  const propagateFor = ref.derive((rt: Runtime) => {
    const byRoute = new Map<string, boolean>();
    for (const r of rt.config.routes)
      byRoute.set(r.name, r.tracing.propagateUpstream ?? cfg.propagateUpstream);
    return byRoute;
  });

  /** The caller's context (traceparent, tracestate) as a parent context; ROOT_CONTEXT when none. */
  const parentOf = (ex: Exchange): Context =>
    ex.headers.traceparent === undefined
      ? ROOT_CONTEXT
      : propagator.extract(ROOT_CONTEXT, ex.headers, defaultTextMapGetter);

  function traceContext(ex: Exchange, headers: Record<string, string | string[]>): void {
    delete headers.traceparent;
    delete headers.tracestate;
    const propagate = ex.route ? propagateFor().get(ex.route.name) : undefined;
    // An upgrade's exchange has no upstream span to name as the origin's parent: removed only.
    if ((propagate ?? cfg.propagateUpstream) && ex.headers.upgrade === undefined) inject(ex, headers);
    // The request goes out right after its headers are built: the upstream span starts here.
    ex.timings.upstreamStart = performance.now();
  }

  /** Our traceparent (naming the upstream span to come) and the caller's tracestate, into `headers`. */
  function inject(ex: Exchange, headers: Record<string, string | string[]>): void {
    const parentCtx = parentOf(ex);
    const parent = trace.getSpanContext(parentCtx);
    let preset = presets.get(ex.timings);
    if (preset === undefined) {
      preset = {
        traceId: parent?.traceId ?? random.generateTraceId(),
        serverSpanId: random.generateSpanId(),
        upstreamSpanId: random.generateSpanId(),
      };
      presets.set(ex.timings, preset);
    }
    // The sampled flag is the head decision; the tail rule may still export the trace later.
    const head = sampler.head.shouldSample(parentCtx, preset.traceId, ex.method, SpanKind.SERVER, {}, []);
    const sc: SpanContext = {
      traceId: preset.traceId,
      spanId: preset.upstreamSpanId,
      traceFlags:
        head.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
      ...(parent?.traceState ? { traceState: parent.traceState } : {}),
    };
    propagator.inject(trace.setSpanContext(ROOT_CONTEXT, sc), headers, defaultTextMapSetter);
  }

  function observe(end: ExchangeEnd): void {
    const ex = end.ex;
    const t = ex.timings;
    const endAt = t.end ?? t.start;
    /** `performance.now()` value → epoch ms. */
    const wall = (perf: number): number => t.startedAt + (perf - t.start);
    const failed = end.error !== undefined || end.status >= 500;
    const tail =
      (cfg.alwaysSample.errors && failed) ||
      (cfg.alwaysSample.slowMs !== null && endAt - t.start >= cfg.alwaysSample.slowMs);
    const preset = presets.get(t);
    ids.next(preset?.traceId, preset?.serverSpanId);
    const server = tracer.startSpan(
      ex.method,
      {
        kind: SpanKind.SERVER,
        startTime: t.startedAt,
        ...(tail ? { attributes: { [TAIL]: true } } : {}),
      },
      parentOf(ex),
    );
    ids.next(undefined, undefined);
    if (!server.isRecording()) return;
    server.setAttributes(serverAttributes(end, deps.savings(ex)));
    if (failed) {
      server.setStatus({ code: SpanStatusCode.ERROR, ...(end.error ? { message: end.error.code } : {}) });
    }
    const inServer = trace.setSpan(ROOT_CONTEXT, server);
    const phases = t.phases;
    const outcome = ex.cache?.outcome;
    // An answer from the store is the whole exchange, and the server span says so: its cache span
    // only when the lookup took time (a shared tier), which halves the spans of a plain hit.
    if (
      phases.cache !== undefined &&
      ex.cache !== undefined &&
      ((outcome !== 'hit' && outcome !== 'stale') || phases.cache >= CACHE_SPAN_MIN_MS)
    ) {
      const span = tracer.startSpan(
        outcome === 'coalesced' ? 'coalesce wait' : `cache ${outcome}`,
        {
          kind: SpanKind.INTERNAL,
          startTime: t.startedAt,
          attributes: {
            'sidecache.cache.status': outcome,
            ...(ex.cache.detail !== undefined ? { 'sidecache.cache.detail': ex.cache.detail } : {}),
            ...(ex.cache.stored !== undefined ? { 'sidecache.cache.stored': ex.cache.stored } : {}),
          },
        },
        inServer,
      );
      if (ex.cache.stored) span.addEvent('stored', wall(t.start + phases.cache));
      span.end(wall(t.start + phases.cache));
    }
    const info = ex.originInfo;
    if (info !== undefined && t.upstreamStart !== undefined) {
      const at = t.upstreamStart;
      ids.next(undefined, preset?.upstreamSpanId);
      const upstream = tracer.startSpan(
        outcome === 'revalidated' ? 'revalidate' : ex.method,
        {
          kind: SpanKind.CLIENT,
          startTime: wall(at),
          attributes: upstreamAttributes(end),
        },
        inServer,
      );
      ids.next(undefined, undefined);
      const inUpstream = trace.setSpan(ROOT_CONTEXT, upstream);
      let cursor = at;
      const child = (name: string, ms: number | undefined): void => {
        if (ms === undefined) return;
        tracer
          .startSpan(name, { kind: SpanKind.INTERNAL, startTime: wall(cursor) }, inUpstream)
          .end(wall(cursor + ms));
        cursor += ms;
      };
      if (!info.reusedConnection) {
        child('dns lookup', phases.dns);
        child('connect', phases.connect);
        child('tls handshake', phases.tls);
      }
      upstream.end(wall(at + (phases.upstream ?? Math.max(0, endAt - at))));
    }
    server.end(wall(endAt));
  }

  return {
    observe,
    traceContext,
    async close(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        provider.shutdown().catch(() => undefined),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
    },
  };
}

/** The server span's attributes: HTTP semantic conventions and sidecache's own, no header values. */
function serverAttributes(end: ExchangeEnd, saved: Partial<Record<string, number>>): Attributes {
  const ex = end.ex;
  const a: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: ex.method,
    [ATTR_URL_FULL]: safeUrl(ex.target),
    [ATTR_SERVER_ADDRESS]: ex.target.hostname,
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: end.status,
    'sidecache.mode': ex.mode,
    'sidecache.exchange_id': ex.id,
    'sidecache.response.bytes': end.bytes,
  };
  if (ex.target.port !== '') a[ATTR_SERVER_PORT] = Number(ex.target.port);
  const version = ex.client.httpVersion;
  // Node says `2.0` for HTTP/2; OpenTelemetry writes `2` (and `1.1`, `1.0` as they are).
  if (version !== undefined) a[ATTR_NETWORK_PROTOCOL_VERSION] = version === '2.0' ? '2' : version;
  if (ex.route) a['sidecache.route'] = ex.route.name;
  if (ex.cache) a['sidecache.cache.status'] = ex.cache.outcome;
  if (ex.reason) a['sidecache.reason'] = ex.reason;
  if (ex.originInfo) a['sidecache.connection.reused'] = ex.originInfo.reusedConnection;
  if (end.error) a[ATTR_ERROR_TYPE] = end.error.code;
  let total = 0;
  for (const kind in saved) {
    const ms = saved[kind] as number;
    a[`sidecache.saved.${kind}_ms`] = round3(ms);
    total += ms;
  }
  a['sidecache.saved_ms'] = round3(total);
  return a;
}

function upstreamAttributes(end: ExchangeEnd): Attributes {
  const ex = end.ex;
  const info = ex.originInfo;
  const a: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: ex.method,
    [ATTR_URL_FULL]: safeUrl(ex.target),
    [ATTR_SERVER_ADDRESS]: ex.target.hostname,
    [ATTR_SERVER_PORT]:
      ex.target.port !== '' ? Number(ex.target.port) : ex.target.protocol === 'https:' ? 443 : 80,
  };
  if (info) {
    a['sidecache.connection.reused'] = info.reusedConnection;
    a['sidecache.retried'] = info.retried;
    a['sidecache.upstream.body_bytes'] = info.bodyBytes;
    if (info.httpVersion !== undefined) a[ATTR_NETWORK_PROTOCOL_VERSION] = info.httpVersion;
    if (info.preconnectedMs !== undefined)
      a['sidecache.connection.preconnected_ms'] = round3(info.preconnectedMs);
  }
  if (ex.reason) a['sidecache.reason'] = ex.reason;
  // The client got the origin's answer as it came (a miss, a pass-through): its status is the origin's.
  if (end.replySource === 'origin') a[ATTR_HTTP_RESPONSE_STATUS_CODE] = end.status;
  return a;
}

/** `url.full` without user info, and with credential-like query values redacted. */
export function safeUrl(target: URL): string {
  const path = `${target.protocol}//${target.host}${target.pathname}`;
  return target.search === '' ? path : redactUrl(`${path}${target.search}`);
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
