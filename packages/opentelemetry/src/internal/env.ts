/**
 * The span processors and metric readers that the standard `OTEL_*` environment variables
 * ask for, read through effect `Config`; exporter packages are loaded only when asked for.
 */
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import type { SpanExporter, SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import { OtelSetupError } from "../Errors.js"
import * as Otlp from "./otlp.js"

/** What the environment asks for. */
export interface FromEnv {
  readonly spanProcessors: ReadonlyArray<SpanProcessor>
  readonly metricReaders: ReadonlyArray<MetricReader>
}

/** The exporter names each variable accepts, as `@opentelemetry/sdk-node` does. */
export const tracesExporters = ["otlp", "zipkin", "console", "none"] as const
export const metricsExporters = ["otlp", "prometheus", "console", "none"] as const

/**
 * The exporters a list variable names: comma-separated, case and blanks ignored, duplicates
 * dropped; unset or empty means `otlp`; `none` anywhere means none. An unknown name fails.
 */
const exporterNames = <Name extends string>(variable: string, supported: ReadonlyArray<Name>) =>
  Effect.gen(function* () {
    const setting = yield* Otlp.first(variable)
    const names = [
      ...new Set(
        (setting?.value ?? "")
          .split(",")
          .map((name) => name.trim().toLowerCase())
          .filter((name) => name !== "")
      )
    ]
    const known: Array<Name> = []
    for (const name of names) {
      const found = supported.find((s) => s === name)
      if (found === undefined) {
        return yield* new OtelSetupError({
          variable,
          value: name,
          reason: `unknown exporter; use ${supported.join(", ")} (a comma-separated list; default otlp)`
        })
      }
      known.push(found)
    }
    const isExporter = (name: Name): name is Exclude<Name, "none"> => name !== "none"
    if (known.length === 0) return supported.filter((name) => name === "otlp").filter(isExporter)
    return known.some((name) => name === "none") ? [] : known.filter(isExporter)
  })

/** A number of milliseconds (or a count) greater than 0, or `fallback` when unset. */
const positive = (variable: string, fallback: number) =>
  Effect.flatMap(Otlp.first(variable), (setting) => {
    if (setting === undefined) return Effect.succeed(fallback)
    const parsed = Number(setting.value)
    return Number.isFinite(parsed) && parsed > 0
      ? Effect.succeed(parsed)
      : Effect.fail(new OtelSetupError({ variable, value: setting.value, reason: "expected a number greater than 0" }))
  })

const port = (variable: string, fallback: number) =>
  Effect.flatMap(Otlp.first(variable), (setting) => {
    if (setting === undefined) return Effect.succeed(fallback)
    const parsed = Number(setting.value)
    return Number.isSafeInteger(parsed) && parsed >= 0 && parsed <= 65_535
      ? Effect.succeed(parsed)
      : Effect.fail(
          new OtelSetupError({ variable, value: setting.value, reason: "expected a port number, 0 to 65535" })
        )
  })

/** `OTEL_BSP_*`: the batch span processor of the OTLP and Zipkin exporters. */
const batchConfig = Effect.all({
  scheduledDelayMillis: positive("OTEL_BSP_SCHEDULE_DELAY", 5_000),
  exportTimeoutMillis: positive("OTEL_BSP_EXPORT_TIMEOUT", 30_000),
  maxQueueSize: positive("OTEL_BSP_MAX_QUEUE_SIZE", 2_048),
  maxExportBatchSize: positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
})

type Make<A> = () => Effect.Effect<A, OtelSetupError>

/** Checks the variables and loads the package of one trace exporter; makes it later. */
const prepareSpanProcessor = (name: Exclude<(typeof tracesExporters)[number], "none">) =>
  Effect.gen(function* () {
    switch (name) {
      case "otlp": {
        const settings = yield* Otlp.settings("traces")
        const exporter = yield* Otlp.spanExporter(settings)
        const batch = yield* batchConfig
        return (): Effect.Effect<SpanProcessor, OtelSetupError> =>
          Effect.map(exporter(), (made): SpanProcessor => new BatchSpanProcessor(made, batch))
      }
      case "zipkin": {
        const module = yield* Otlp.load(
          { variable: "OTEL_TRACES_EXPORTER", value: name },
          "@opentelemetry/exporter-zipkin",
          () => import("@opentelemetry/exporter-zipkin")
        )
        const url = yield* Otlp.first("OTEL_EXPORTER_ZIPKIN_ENDPOINT")
        const batch = yield* batchConfig
        return () =>
          Effect.sync((): SpanProcessor => {
            const exporter: SpanExporter = new module.ZipkinExporter({
              url: url?.value ?? "http://localhost:9411/api/v2/spans"
            })
            return new BatchSpanProcessor(exporter, batch)
          })
      }
      case "console":
        return () => Effect.succeed<SpanProcessor>(new SimpleSpanProcessor(new ConsoleSpanExporter()))
    }
  })

/** Checks the variables and loads the package of one metric exporter; makes it later. */
const prepareMetricReader = (name: Exclude<(typeof metricsExporters)[number], "none">) =>
  Effect.gen(function* () {
    const intervalMs = yield* positive("OTEL_METRIC_EXPORT_INTERVAL", 60_000)
    const timeoutMs = yield* positive("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)
    const periodic = { exportIntervalMillis: intervalMs, exportTimeoutMillis: Math.min(timeoutMs, intervalMs) }
    switch (name) {
      case "otlp": {
        const settings = yield* Otlp.settings("metrics")
        const exporter = yield* Otlp.metricExporter(settings)
        return (): Effect.Effect<MetricReader, OtelSetupError> =>
          Effect.map(
            exporter(),
            (made): MetricReader => new PeriodicExportingMetricReader({ exporter: made, ...periodic })
          )
      }
      case "prometheus": {
        const module = yield* Otlp.load(
          { variable: "OTEL_METRICS_EXPORTER", value: name },
          "@opentelemetry/exporter-prometheus",
          () => import("@opentelemetry/exporter-prometheus")
        )
        const host = (yield* Otlp.first("OTEL_EXPORTER_PROMETHEUS_HOST"))?.value ?? "localhost"
        const listenOn = yield* port("OTEL_EXPORTER_PROMETHEUS_PORT", 9464)
        // Listens at once: made only after every variable was checked and every package loaded.
        return () =>
          Effect.callback<MetricReader, OtelSetupError>((resume) => {
            const exporter: MetricReader = new module.PrometheusExporter({ host, port: listenOn }, (error) => {
              resume(
                error === undefined
                  ? Effect.succeed(exporter)
                  : Effect.fail(
                      new OtelSetupError({
                        variable: "OTEL_EXPORTER_PROMETHEUS_PORT",
                        value: String(listenOn),
                        reason: `the Prometheus endpoint could not listen on ${host}:${listenOn}: ${error.message}`,
                        cause: error
                      })
                    )
              )
            })
          })
      }
      case "console":
        return () =>
          Effect.succeed<MetricReader>(
            new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), ...periodic })
          )
    }
  })

/**
 * Reads `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` (otlp, zipkin, console, none; default
 * otlp), `OTEL_METRICS_EXPORTER` (otlp, prometheus, console, none; default otlp), the
 * `OTEL_EXPORTER_OTLP_*` settings of the OTLP exporters (protocol default http/protobuf),
 * `OTEL_BSP_*`, `OTEL_METRIC_EXPORT_INTERVAL` / `_TIMEOUT`, `OTEL_EXPORTER_ZIPKIN_ENDPOINT`
 * and `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT` through effect `Config`. Every value is
 * checked and every package loaded before any exporter is made.
 */
export const fromEnv: Effect.Effect<FromEnv, OtelSetupError> = Effect.gen(function* () {
  const disabled = yield* Otlp.first("OTEL_SDK_DISABLED")
  if (disabled?.value.toLowerCase() === "true") return { spanProcessors: [], metricReaders: [] }
  const traces = yield* exporterNames("OTEL_TRACES_EXPORTER", tracesExporters)
  const metrics = yield* exporterNames("OTEL_METRICS_EXPORTER", metricsExporters)
  const makeSpanProcessors: Array<Make<SpanProcessor>> = yield* Effect.forEach(traces, prepareSpanProcessor)
  const makeMetricReaders: Array<Make<MetricReader>> = yield* Effect.forEach(metrics, prepareMetricReader)
  const spanProcessors = yield* Effect.forEach(makeSpanProcessors, (make) => make())
  const metricReaders = yield* Effect.forEach(makeMetricReaders, (make) => make())
  return { spanProcessors, metricReaders }
}).pipe(
  Effect.catchTag("ConfigError", (error) =>
    Effect.fail(new OtelSetupError({ variable: "OTEL_*", value: "", reason: error.message, cause: error }))
  )
)
