/**
 * The span processors and metric readers that the standard `OTEL_*` environment variables
 * ask for; exporter packages are loaded only when asked for.
 */
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import { ConsoleMetricExporter, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import { OtelSetupError } from "../Errors.js"

/** What the environment asks for. */
export interface FromEnv {
  readonly spanProcessors: ReadonlyArray<SpanProcessor>
  readonly metricReaders: ReadonlyArray<MetricReader>
}

const list = (name: string, fallback: string) =>
  Effect.map(Config.String(name).pipe(Config.withDefault(fallback)), (value) =>
    value
      .split(",")
      .map((item) => item.trim().toLowerCase())
      .filter((item) => item !== "")
  )

const integer = (name: string, fallback: number) =>
  Effect.flatMap(Config.String(name).pipe(Config.withDefault(String(fallback))), (value) => {
    const parsed = Number(value)
    return Number.isSafeInteger(parsed) && parsed >= 0
      ? Effect.succeed(parsed)
      : Effect.fail(new OtelSetupError({ variable: name, value, reason: "expected a non-negative integer" }))
  })

const load = <A>(variable: string, value: string, packageName: string, importer: () => Promise<A>) =>
  Effect.tryPromise({
    try: importer,
    catch: (cause) =>
      new OtelSetupError({ variable, value, reason: `needs the package ${packageName}; install it`, cause })
  })

const unsupported = (variable: string, value: string, supported: string) =>
  new OtelSetupError({ variable, value, reason: `not supported here (use ${supported})` })

const spanProcessor = (name: string) => {
  const variable = "OTEL_TRACES_EXPORTER"
  switch (name) {
    case "otlp":
      return Effect.map(
        load(
          variable,
          name,
          "@opentelemetry/exporter-trace-otlp-http",
          () => import("@opentelemetry/exporter-trace-otlp-http")
        ),
        (module): SpanProcessor => new BatchSpanProcessor(new module.OTLPTraceExporter())
      )
    case "console":
      return Effect.succeed<SpanProcessor>(new SimpleSpanProcessor(new ConsoleSpanExporter()))
    default:
      return Effect.fail(unsupported(variable, name, "otlp, console or none"))
  }
}

const metricReader = (name: string, intervalMs: number, timeoutMs: number) => {
  const variable = "OTEL_METRICS_EXPORTER"
  const periodic = { exportIntervalMillis: intervalMs, exportTimeoutMillis: Math.min(timeoutMs, intervalMs) }
  switch (name) {
    case "otlp":
      return Effect.map(
        load(
          variable,
          name,
          "@opentelemetry/exporter-metrics-otlp-http",
          () => import("@opentelemetry/exporter-metrics-otlp-http")
        ),
        (module): MetricReader =>
          new PeriodicExportingMetricReader({ exporter: new module.OTLPMetricExporter(), ...periodic })
      )
    case "prometheus":
      return Effect.gen(function* () {
        const module = yield* load(
          variable,
          name,
          "@opentelemetry/exporter-prometheus",
          () => import("@opentelemetry/exporter-prometheus")
        )
        const host = yield* Config.String("OTEL_EXPORTER_PROMETHEUS_HOST").pipe(Config.withDefault("localhost"))
        const port = yield* integer("OTEL_EXPORTER_PROMETHEUS_PORT", 9464)
        return yield* Effect.callback<MetricReader, OtelSetupError>((resume) => {
          const exporter: MetricReader = new module.PrometheusExporter({ host, port }, (error) => {
            resume(
              error === undefined
                ? Effect.succeed(exporter)
                : Effect.fail(
                    new OtelSetupError({
                      variable: "OTEL_EXPORTER_PROMETHEUS_PORT",
                      value: String(port),
                      reason: `the Prometheus endpoint could not listen on ${host}:${port}: ${error.message}`,
                      cause: error
                    })
                  )
            )
          })
        })
      })
    case "console":
      return Effect.succeed<MetricReader>(
        new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), ...periodic })
      )
    default:
      return Effect.fail(unsupported(variable, name, "otlp, prometheus, console or none"))
  }
}

/**
 * Reads `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` (otlp, console, none; default otlp),
 * `OTEL_METRICS_EXPORTER` (otlp, prometheus, console, none; default otlp),
 * `OTEL_METRIC_EXPORT_INTERVAL` / `_TIMEOUT` and `OTEL_EXPORTER_PROMETHEUS_HOST` / `_PORT`
 * through effect `Config`. The OTLP exporters read `OTEL_EXPORTER_OTLP_*` themselves.
 */
export const fromEnv: Effect.Effect<FromEnv, OtelSetupError> = Effect.gen(function* () {
  const disabled = yield* Config.String("OTEL_SDK_DISABLED").pipe(Config.withDefault("false"))
  if (disabled.trim().toLowerCase() === "true") return { spanProcessors: [], metricReaders: [] }
  const traces = yield* list("OTEL_TRACES_EXPORTER", "otlp")
  const metrics = yield* list("OTEL_METRICS_EXPORTER", "otlp")
  const intervalMs = yield* integer("OTEL_METRIC_EXPORT_INTERVAL", 60_000)
  const timeoutMs = yield* integer("OTEL_METRIC_EXPORT_TIMEOUT", 30_000)
  // Refuse an unknown name before starting anything (a Prometheus endpoint listens at once).
  for (const name of traces) {
    if (!["otlp", "console", "none"].includes(name)) {
      return yield* unsupported("OTEL_TRACES_EXPORTER", name, "otlp, console or none")
    }
  }
  for (const name of metrics) {
    if (!["otlp", "prometheus", "console", "none"].includes(name)) {
      return yield* unsupported("OTEL_METRICS_EXPORTER", name, "otlp, prometheus, console or none")
    }
  }
  const spanProcessors = yield* Effect.forEach(
    traces.filter((name) => name !== "none"),
    spanProcessor
  )
  const metricReaders = yield* Effect.forEach(
    metrics.filter((name) => name !== "none"),
    (name) => metricReader(name, intervalMs, timeoutMs)
  )
  return { spanProcessors, metricReaders }
}).pipe(
  Effect.catchTag("ConfigError", (error) =>
    Effect.fail(new OtelSetupError({ variable: "OTEL_*", value: "", reason: error.message, cause: error }))
  )
)
