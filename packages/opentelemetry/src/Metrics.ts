/**
 * Reads the pools' effect metrics into OpenTelemetry: a `MetricProducer` to give a reader
 * the application already has, or a layer that binds readers to it.
 *
 * @since 0.1.0
 */
import * as OtelMetrics from "@effect/opentelemetry/OtelMetrics"
import * as Resource from "@effect/opentelemetry/Resource"
import type { MetricProducer, MetricReader } from "@opentelemetry/sdk-metrics"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Flush from "./internal/flush.js"

/**
 * Options of {@link producer} and {@link layer}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `cumulative` (default) or `delta`. */
  readonly temporality?: OtelMetrics.TemporalityPreference | undefined
}

/**
 * A `MetricProducer` over effect's default metric registry, where the pools record.
 *
 * **When to use**: the application runs `@opentelemetry/sdk-node` (or its own
 * `MeterProvider`); pass it in the reader's `metricProducers`, e.g.
 * `new PeriodicExportingMetricReader({ exporter, metricProducers: [Metrics.producer()] })`.
 *
 * **Gotchas**: a reader can be bound to one producer set only when it is made; one
 * already given to a `MeterProvider` cannot take this producer later.
 *
 * @since 0.1.0
 * @category constructors
 */
export const producer = (options: Options = {}): MetricProducer =>
  Effect.runSync(OtelMetrics.makeProducer(options.temporality).pipe(Effect.provide(Resource.layerEmpty)))

const isList = (
  readers: MetricReader | readonly [MetricReader, ...Array<MetricReader>]
): readers is readonly [MetricReader, ...Array<MetricReader>] => Array.isArray(readers)

/**
 * A layer that binds metric readers (a `PrometheusExporter`, a
 * `PeriodicExportingMetricReader`, ...) to the pools' metrics, and shuts them down with
 * the layer. Under `NodeSdk.provide`, they are flushed before the pools close.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  readers: () => MetricReader | readonly [MetricReader, ...Array<MetricReader>],
  options: Options & { readonly shutdownTimeout?: Duration.Input | undefined } = {}
): Layer.Layer<never, never, Resource.Resource> =>
  Layer.unwrap(
    Effect.sync(() => {
      const made = readers()
      const all: ReadonlyArray<MetricReader> = isList(made) ? made : [made]
      return Layer.merge(
        OtelMetrics.layer(() => made, options),
        Layer.effectDiscard(Flush.register(Flush.forceFlush(all, options.shutdownTimeout ?? Flush.defaultTimeout)))
      )
    })
  )
