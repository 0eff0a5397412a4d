/**
 * Which exporters the `OTEL_*` variables ask for and how they are checked, read through a
 * `ConfigProvider` of an env object (process.env is never touched).
 */
import { describe, expect, it } from "@effect/vitest"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { OtelSetupError } from "../../src/Errors.js"
import * as Env from "../../src/internal/env.js"
import * as Otlp from "../../src/internal/otlp.js"
import * as NodeSdk from "../../src/NodeSdk.js"

const withEnv = (env: Record<string, string>) => Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

/** What `fromEnv` makes of `env`; everything it made is shut down again. */
const fromEnv = (env: Record<string, string>) =>
  Effect.acquireRelease(Env.fromEnv.pipe(withEnv(env)), (made) =>
    Effect.promise(() =>
      Promise.all([
        ...made.spanProcessors.map((p) => p.shutdown()),
        ...made.metricReaders.map((r) => r.shutdown().catch(() => undefined))
      ])
    )
  )

const failure = (env: Record<string, string>) => Effect.flip(Env.fromEnv.pipe(withEnv(env)))

const settings = (signal: Otlp.Signal, env: Record<string, string>) =>
  Otlp.settings(signal).pipe(
    Effect.catchTag("ConfigError", (error) => Effect.die(error)),
    withEnv(env)
  )

const expectError = (error: OtelSetupError, variable: string, value: string) => {
  expect(error._tag).toBe("OtelSetupError")
  expect(error.variable).toBe(variable)
  expect(error.value).toBe(value)
  expect(error.message).toContain(variable)
}

describe("OTEL_EXPORTER_OTLP_* settings", () => {
  it.effect("defaults: http/protobuf to localhost:4318/v1/<signal>, 10 s, no compression, no headers", () =>
    Effect.gen(function* () {
      const traces = yield* settings("traces", {})
      expect(traces).toEqual({
        signal: "traces",
        protocol: "http/protobuf",
        protocolVariable: undefined,
        url: "http://localhost:4318/v1/traces",
        headers: {},
        timeoutMillis: 10_000,
        compression: "none"
      })
      expect((yield* settings("metrics", {})).url).toBe("http://localhost:4318/v1/metrics")
      expect((yield* settings("traces", { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).url).toBe("http://localhost:4317/")
    })
  )

  it.effect("per-signal variables win; the general endpoint is a base, a per-signal one is used as it is", () =>
    Effect.gen(function* () {
      const env = {
        OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "HTTP/PROTOBUF",
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://collector.example:4318/otlp",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "https://metrics.example/ingest",
        OTEL_EXPORTER_OTLP_HEADERS: "a=1,b=two%20words",
        OTEL_EXPORTER_OTLP_TRACES_HEADERS: "b=3",
        OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
        OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "gzip"
      }
      const traces = yield* settings("traces", env)
      expect(traces).toMatchObject({
        protocol: "http/json",
        protocolVariable: "OTEL_EXPORTER_OTLP_PROTOCOL",
        url: "https://collector.example:4318/otlp/v1/traces",
        headers: { a: "1", b: "3" },
        timeoutMillis: 2500,
        compression: "gzip"
      })
      const metrics = yield* settings("metrics", env)
      expect(metrics).toMatchObject({
        protocol: "http/protobuf",
        protocolVariable: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
        url: "https://metrics.example/ingest",
        headers: { a: "1", b: "two words" },
        compression: "none"
      })
    })
  )

  it.effect("gRPC: an endpoint without a scheme is https unless OTEL_EXPORTER_OTLP_INSECURE=true", () =>
    Effect.gen(function* () {
      const grpc = { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc", OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4317" }
      expect((yield* settings("traces", grpc)).url).toBe("https://collector:4317/")
      expect((yield* settings("traces", { ...grpc, OTEL_EXPORTER_OTLP_INSECURE: "true" })).url).toBe(
        "http://collector:4317/"
      )
      expect((yield* settings("metrics", { ...grpc, OTEL_EXPORTER_OTLP_METRICS_INSECURE: "TRUE" })).url).toBe(
        "http://collector:4317/"
      )
    })
  )

  it.effect("an unknown protocol fails naming the variable, the value and the supported ones", () =>
    Effect.gen(function* () {
      const general = yield* Effect.flip(settings("traces", { OTEL_EXPORTER_OTLP_PROTOCOL: "http/xml" }))
      expectError(general, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml")
      expect(general.message).toBe(
        'OpenTelemetry set-up: OTEL_EXPORTER_OTLP_PROTOCOL="http/xml": unknown OTLP protocol; use http/protobuf, http/json, grpc (default http/protobuf)'
      )
      const perSignal = yield* Effect.flip(settings("metrics", { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "thrift" }))
      expectError(perSignal, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "thrift")
      // Through the layer: it fails before anything starts.
      const fromLayer = yield* Effect.flip(
        Layer.build(NodeSdk.layer({ env: { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "udp" } })).pipe(Effect.scoped)
      )
      expectError(fromLayer, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "udp")
    })
  )

  it.effect("bad endpoint, timeout, compression or headers fail naming the variable; headers are not shown", () =>
    Effect.gen(function* () {
      expectError(
        yield* Effect.flip(settings("traces", { OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" })),
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "localhost:4318"
      )
      expectError(
        yield* Effect.flip(settings("traces", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "not a url" })),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "not a url"
      )
      expectError(
        yield* Effect.flip(settings("metrics", { OTEL_EXPORTER_OTLP_TIMEOUT: "-5" })),
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "-5"
      )
      expectError(
        yield* Effect.flip(settings("metrics", { OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: "brotli" })),
        "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
        "brotli"
      )
      const headers = yield* Effect.flip(
        settings("traces", { OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20secret,oops" })
      )
      expect(headers.variable).toBe("OTEL_EXPORTER_OTLP_HEADERS")
      expect(headers.message).toContain("entry 2 is not key=value")
      expect(headers.message).not.toContain("secret")
    })
  )

  it.effect("a missing exporter package fails naming the package", () =>
    Effect.gen(function* () {
      const missing = "@opentelemetry/exporter-not-installed"
      const error = yield* Effect.flip(
        Otlp.load({ variable: "OTEL_EXPORTER_OTLP_PROTOCOL", value: "grpc" }, missing, () => import(missing))
      )
      expectError(error, "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
      expect(error.message).toContain(`needs the package ${missing}; install it`)
      expect(Otlp.packageOf("traces", "http/protobuf")).toBe("@opentelemetry/exporter-trace-otlp-proto")
      expect(Otlp.packageOf("metrics", "grpc")).toBe("@opentelemetry/exporter-metrics-otlp-grpc")
    })
  )
})

describe("OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER, as @opentelemetry/sdk-node reads them", () => {
  it.effect("unset or empty means otlp: a batch span processor and a periodic reader", () =>
    Effect.gen(function* () {
      for (const env of [{}, { OTEL_TRACES_EXPORTER: " ", OTEL_METRICS_EXPORTER: "," }]) {
        const made = yield* fromEnv(env)
        expect(made.spanProcessors).toHaveLength(1)
        expect(made.spanProcessors[0]).toBeInstanceOf(BatchSpanProcessor)
        expect(made.metricReaders).toHaveLength(1)
        expect(made.metricReaders[0]).toBeInstanceOf(PeriodicExportingMetricReader)
      }
    }).pipe(Effect.scoped)
  )

  it.effect("lists: case and blanks ignored, duplicates dropped, none anywhere turns the signal off", () =>
    Effect.gen(function* () {
      const listed = yield* fromEnv({
        OTEL_TRACES_EXPORTER: "Console, otlp ,console,zipkin",
        OTEL_METRICS_EXPORTER: "none"
      })
      expect(listed.spanProcessors.map((p) => p.constructor)).toEqual([
        SimpleSpanProcessor,
        BatchSpanProcessor,
        BatchSpanProcessor
      ])
      expect(listed.metricReaders).toEqual([])
      const off = yield* fromEnv({ OTEL_TRACES_EXPORTER: "otlp,none", OTEL_METRICS_EXPORTER: "none,console" })
      expect(off).toEqual({ spanProcessors: [], metricReaders: [] })
      const disabled = yield* fromEnv({ OTEL_SDK_DISABLED: "TRUE", OTEL_TRACES_EXPORTER: "bogus" })
      expect(disabled).toEqual({ spanProcessors: [], metricReaders: [] })
    }).pipe(Effect.scoped)
  )

  it.effect("an unknown exporter name fails naming the variable and the name", () =>
    Effect.gen(function* () {
      const traces = yield* failure({ OTEL_TRACES_EXPORTER: "otlp,jaeger" })
      expectError(traces, "OTEL_TRACES_EXPORTER", "jaeger")
      expect(traces.message).toContain("otlp, zipkin, console, none")
      const metrics = yield* failure({ OTEL_METRICS_EXPORTER: "statsd" })
      expectError(metrics, "OTEL_METRICS_EXPORTER", "statsd")
      // Checked before anything is made: a bad OTLP value after a Prometheus endpoint.
      const late = yield* failure({
        OTEL_METRICS_EXPORTER: "prometheus,otlp",
        OTEL_EXPORTER_PROMETHEUS_PORT: "0",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "nope"
      })
      expectError(late, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "nope")
    })
  )

  it.effect("bad numbers fail naming the variable", () =>
    Effect.gen(function* () {
      expectError(yield* failure({ OTEL_METRIC_EXPORT_INTERVAL: "0" }), "OTEL_METRIC_EXPORT_INTERVAL", "0")
      expectError(yield* failure({ OTEL_BSP_SCHEDULE_DELAY: "soon" }), "OTEL_BSP_SCHEDULE_DELAY", "soon")
      expectError(
        yield* failure({ OTEL_METRICS_EXPORTER: "prometheus", OTEL_EXPORTER_PROMETHEUS_PORT: "70000" }),
        "OTEL_EXPORTER_PROMETHEUS_PORT",
        "70000"
      )
    })
  )
})
