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
import * as Layer from "effect/Layer"
import type { OtelSetupError } from "./Errors.js"
import * as Env from "./internal/env.js"
import * as Metrics from "./Metrics.js"
import * as Propagation from "./Propagation.js"

/**
 * For an application that already runs `@opentelemetry/sdk-node` (or registered its own
 * global providers): spans go to the global tracer provider and trace context is injected
 * with the global propagator.
 *
 * **Gotchas**: metrics are pulled, not pushed. Give the application's metric reader the
 * pools' producer when you make it: `metricProducers: [Metrics.producer()]`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerGlobal: Layer.Layer<never> = Layer.mergeAll(
  OtelTracer.layerWithoutOtelTracer.pipe(Layer.provide(OtelTracer.layerGlobalTracer)),
  Propagation.layerGlobal
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
  /** How long shutting down may take to flush (default 3 s). */
  readonly shutdownTimeout?: Duration.Input | undefined
}

const tracerProvider = (processors: ReadonlyArray<SpanProcessor>, shutdownTimeout: Duration.Input) =>
  Layer.effect(
    OtelTracer.OtelTracerProvider,
    Effect.gen(function* () {
      const resource = yield* Resource.Resource
      return yield* Effect.acquireRelease(
        Effect.sync(() => new NodeTracerProvider({ resource, spanProcessors: [...processors] })),
        (provider) =>
          Effect.promise(() => provider.forceFlush().finally(() => provider.shutdown())).pipe(
            Effect.ignore,
            Effect.timeoutOption(shutdownTimeout)
          )
      )
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
 * registered.
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
      const shutdownTimeout = options.shutdownTimeout ?? 3_000
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
