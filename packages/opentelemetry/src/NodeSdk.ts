/**
 * Layers that send the pools' spans and metrics to OpenTelemetry: over the global providers
 * of an application that already runs `@opentelemetry/sdk-node`, or over an SDK set up here.
 *
 * @since 0.1.0
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import * as Resource from "@effect/opentelemetry/Resource"
import type * as Otel from "@opentelemetry/api"
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import * as ConfigProvider from "effect/ConfigProvider"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { OtelSetupError } from "./Errors.js"
import * as Env from "./internal/env.js"
import * as Flush from "./internal/flush.js"
import * as Metrics from "./Metrics.js"
import * as Propagation from "./Propagation.js"

/**
 * For an application that already runs `@opentelemetry/sdk-node` (or registered its own
 * global providers): spans go to the global tracer provider and trace context is injected
 * with the global propagator.
 *
 * **Gotchas**: metrics are pulled, not pushed. Give the application's metric reader the
 * pools' producer when you make it: `metricProducers: [Metrics.producer()]`. Under
 * {@link provide}, the global providers are flushed before the pools close.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGlobal: Layer.Layer<never> = Layer.mergeAll(
  OtelTracer.layerWithoutOtelTracer.pipe(Layer.provide(OtelTracer.layerGlobalTracer)),
  Propagation.layerGlobal,
  Layer.effectDiscard(
    Flush.register(Effect.suspend(() => Flush.forceFlush(Flush.globalProviders(), Flush.defaultTimeout)))
  )
)

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `service.name`; else `OTEL_SERVICE_NAME`, else the SDK's default. */
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  /** More resource attributes (over `OTEL_RESOURCE_ATTRIBUTES`). */
  readonly resourceAttributes?: Otel.Attributes | undefined
  /** Build exporters from `OTEL_TRACES_EXPORTER` and `OTEL_METRICS_EXPORTER` (default `true`). */
  readonly exportersFromEnv?: boolean | undefined
  /**
   * The `OTEL_*` variables to use instead of the current `ConfigProvider` (which reads
   * `process.env` unless you provide another), e.g. `{ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" }`.
   * Empty values count as unset.
   */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /** More span processors, e.g. `new SimpleSpanProcessor(new InMemorySpanExporter())`. */
  readonly spanProcessors?: ReadonlyArray<SpanProcessor> | undefined
  /** More metric readers, e.g. a `PrometheusExporter` configured in code. */
  readonly metricReaders?: ReadonlyArray<MetricReader> | undefined
  /** `cumulative` (default) or `delta`. */
  readonly metricTemporality?: Metrics.Options["temporality"]
  /** How long the flush before the pools close, and the shutdown, may each take (default 3 s). */
  readonly shutdownTimeout?: Duration.Input | undefined
}

const tracerProvider = (processors: ReadonlyArray<SpanProcessor>, shutdownTimeout: Duration.Input) =>
  Layer.effect(
    OtelTracer.OtelTracerProvider,
    Effect.gen(function* () {
      const resource = yield* Resource.Resource
      const provider = yield* Effect.acquireRelease(
        Effect.sync(() => new NodeTracerProvider({ resource, spanProcessors: [...processors] })),
        (made) =>
          Effect.promise(() => made.forceFlush().finally(() => made.shutdown())).pipe(
            Effect.ignore,
            Effect.timeoutOption(shutdownTimeout)
          )
      )
      yield* Flush.register(Flush.forceFlush([provider], shutdownTimeout))
      return provider
    })
  )

/**
 * Sets up OpenTelemetry here: a tracer provider and metric readers made from the standard
 * environment variables (`OTEL_TRACES_EXPORTER` otlp|zipkin|console|none,
 * `OTEL_METRICS_EXPORTER` otlp|prometheus|console|none, default otlp for both;
 * `OTEL_EXPORTER_OTLP_PROTOCOL` http/protobuf (default)|http/json|grpc and the other
 * `OTEL_EXPORTER_OTLP_*` settings, `OTEL_BSP_*`, `OTEL_EXPORTER_PROMETHEUS_HOST`/`_PORT`,
 * `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
 * `OTEL_SDK_DISABLED`) plus those given, and W3C trace context and baggage injected into
 * pooled requests. Closing the layer flushes and shuts everything down. Nothing global is
 * registered. Give it to the manager's layer with {@link provide}, so that the last export
 * still sees the pools.
 *
 * **Gotchas**: each exporter package is an optional peer, loaded only when the variables ask
 * for it: OTLP over the default http/protobuf needs `@opentelemetry/exporter-trace-otlp-proto`
 * and `@opentelemetry/exporter-metrics-otlp-proto`. An unknown exporter, protocol or bad
 * value, or a missing package, fails the layer with `OtelSetupError` before anything starts.
 *
 * @example
 * ```ts
 * import { NodeSdk } from "@mcp-pool/opentelemetry"
 *
 * const Telemetry = NodeSdk.layer({
 *   serviceName: "my-agent",
 *   env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never, OtelSetupError> => {
  const built = layerFromConfig(options)
  if (options.env === undefined) return built
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(options.env)) if (value !== undefined) env[key] = value
  return built.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
}

const layerFromConfig = (options: Options): Layer.Layer<never, OtelSetupError> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const env = options.exportersFromEnv === false ? { spanProcessors: [], metricReaders: [] } : yield* Env.fromEnv
      const spanProcessors = [...env.spanProcessors, ...(options.spanProcessors ?? [])]
      const [firstReader, ...otherReaders] = [...env.metricReaders, ...(options.metricReaders ?? [])]
      const shutdownTimeout = options.shutdownTimeout ?? Flush.defaultTimeout
      const tracing =
        spanProcessors.length === 0
          ? Layer.empty
          : OtelTracer.layerWithoutOtelTracer.pipe(
              Layer.provide(OtelTracer.layerTracer),
              Layer.provide(tracerProvider(spanProcessors, shutdownTimeout))
            )
      const metrics =
        firstReader === undefined
          ? Layer.empty
          : Metrics.layer(() => [firstReader, ...otherReaders], {
              temporality: options.metricTemporality,
              shutdownTimeout
            })
      const resource =
        options.serviceName === undefined
          ? Resource.layerFromEnv(options.resourceAttributes)
          : Resource.layerFromEnv(
              Resource.configToAttributes({
                serviceName: options.serviceName,
                ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion }),
                ...(options.resourceAttributes === undefined ? {} : { attributes: options.resourceAttributes })
              })
            )
      return Layer.mergeAll(tracing, metrics, Propagation.layerW3C).pipe(Layer.provide(resource))
    })
  )

/**
 * Provides `telemetry` ({@link layer}, {@link layerGlobal}, `Metrics.layer`) to `self`, the
 * manager's layer or an application layer that holds it, and releases them in the order that
 * keeps the pools' last figures: the exporters are flushed while the pools are open, then
 * `self` is closed (the pools, the server processes), then the SDK is shut down.
 *
 * **When to use**: whenever a manager and its telemetry end together, above all in a
 * short-lived program, whose only export is the one made when it closes. The pools' counters
 * and gauges (`mcp_pool.requests`, `db.client.connection.count`, ...) are read from the pools
 * when an exporter collects and disappear when they close: an SDK that flushes only once the
 * manager is closed (`Layer.merge(Manager, Telemetry)`, or a manager built inside
 * `Effect.provide(Telemetry)`) exports none of them.
 *
 * @example
 * ```ts
 * import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
 * import { NodeSdk } from "@mcp-pool/opentelemetry"
 *
 * const Telemetry = NodeSdk.layer({ serviceName: "my-agent" })
 * const Live = MCPConnectionManager.layer({ configPath: ".mcp.json" }).pipe(NodeSdk.provide(Telemetry))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const provide: {
  <ROut2, E2, RIn2>(
    telemetry: Layer.Layer<ROut2, E2, RIn2>
  ): <ROut, E, RIn>(self: Layer.Layer<ROut, E, RIn>) => Layer.Layer<ROut | ROut2, E | E2, RIn2 | Exclude<RIn, ROut2>>
  <ROut, E, RIn, ROut2, E2, RIn2>(
    self: Layer.Layer<ROut, E, RIn>,
    telemetry: Layer.Layer<ROut2, E2, RIn2>
  ): Layer.Layer<ROut | ROut2, E | E2, RIn2 | Exclude<RIn, ROut2>>
} = dual(2, Flush.provide)
