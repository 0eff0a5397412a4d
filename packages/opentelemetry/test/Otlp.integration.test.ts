/**
 * The OTLP exporters against a real receiver on 127.0.0.1, configured only through `OTEL_*`
 * values (an `env` object or a `ConfigProvider`, never `process.env`): over http/json,
 * http/protobuf (the default) and gRPC (and Zipkin), what arrives is decoded and checked.
 */
import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createInstrumentedMcpConnectionManager } from "../src/index.js"
import * as NodeSdk from "../src/NodeSdk.js"
import {
  type Collector,
  grpcCollector,
  httpCollector,
  type Metric,
  metrics,
  type Received,
  type Span,
  spans
} from "./collector.js"
import { echoSpanAttributes, withFixtureManager } from "./support.js"

const N = 7
/** OTLP's `SPAN_KIND_CLIENT`. */
const CLIENT = 3

/** Export soon, so that the test sees the periodic exports while the pool is open. */
const fast = { OTEL_BSP_SCHEDULE_DELAY: "100", OTEL_METRIC_EXPORT_INTERVAL: "200" }

/** Polls `probe` every 50 ms until it answers something; fails after 20 s. */
const eventually = <A>(what: string, probe: () => A | undefined): Effect.Effect<A, Error> =>
  Effect.gen(function* () {
    const deadline = Date.now() + 20_000
    let found = probe()
    while (found === undefined && Date.now() <= deadline) {
      yield* Effect.sleep(50)
      found = probe()
    }
    if (found === undefined) return yield* Effect.fail(new Error(`timed out waiting for ${what}`))
    return found
  })

const poolOf = (server: string) => ({ "db.client.connection.pool.name": server })

const matches = (attributes: Readonly<Record<string, unknown>>, wanted: Record<string, unknown>) =>
  Object.entries(wanted).every(([key, value]) => attributes[key] === value)

const point = (exported: ReadonlyArray<Metric>, name: string, wanted: Record<string, unknown>) =>
  exported.filter((m) => m.name === name).flatMap((m) => m.points.filter((p) => matches(p.attributes, wanted)))

/** The echo spans of `server` once all N arrived. */
const echoSpans = (collector: Collector, server: string) => () => {
  const found = spans(collector.received()).filter(
    (s) => s.name === "tools/call echo" && s.attributes["mcp_pool.server.name"] === server
  )
  return found.length >= N ? found : undefined
}

/** The latest metrics export in which the operation-duration histogram counts all N calls. */
const completeMetrics = (collector: Collector, server: string) => () => {
  const exports = collector.received().filter((r) => r.signal === "metrics")
  for (const request of exports.toReversed()) {
    const exported = metrics(request)
    const duration = point(exported, "mcp.client.operation.duration", {
      ...poolOf(server),
      "gen_ai.tool.name": "echo"
    })
    if (duration[0]?.count === N) return { request, exported }
  }
  return undefined
}

/** N echo calls through a pool of one fixture server, then waits for their spans and metrics. */
const callAndCollect = (collector: Collector, server: string) =>
  withFixtureManager(server, (manager) =>
    Effect.gen(function* () {
      const tools = yield* manager.getMcpTools(server)
      for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
      const sent = yield* eventually(`${N} spans`, echoSpans(collector, server))
      const { request, exported } = yield* eventually("metrics counting every call", completeMetrics(collector, server))
      return { spans: sent, metricsRequest: request, metrics: exported }
    })
  )

/** What every export must show, whatever the protocol. */
const expectPoolTelemetry = (
  server: string,
  serviceName: string,
  sent: ReadonlyArray<Span>,
  exported: ReadonlyArray<Metric>
) => {
  expect(sent).toHaveLength(N)
  for (const span of sent) {
    expect(span.kind).toBe(CLIENT)
    expect(span.attributes).toMatchObject(echoSpanAttributes(server))
    expect(span.attributes["mcp_pool.connection.id"]).toBeTypeOf("number")
    expect(span.resource["service.name"]).toBe(serviceName)
  }
  const pool = poolOf(server)
  const duration = exported.find((m) => m.name === "mcp.client.operation.duration")
  expect(duration?.type).toBe("histogram")
  expect(duration?.unit).toBe("s")
  expect(duration?.resource["service.name"]).toBe(serviceName)
  expect(point(exported, "mcp.client.operation.duration", { ...pool, "mcp.method.name": "tools/call" })).toEqual([
    expect.objectContaining({ count: N })
  ])
  expect(point(exported, "mcp_pool.requests", pool)).toEqual([expect.objectContaining({ value: N })])
  expect(point(exported, "db.client.connection.limit", pool)).toEqual([expect.objectContaining({ value: 2 })])
  expect(point(exported, "db.client.connection.wait_time", pool)).toEqual([expect.objectContaining({ count: N })])
}

const tracesRequests = (received: ReadonlyArray<Received>) => received.filter((r) => r.signal === "traces")

describe("OTLP (and Zipkin) export to a receiver on 127.0.0.1, configured by OTEL_* values only", () => {
  it.live("http/json: OTEL_EXPORTER_OTLP_PROTOCOL=http/json, an endpoint and headers, as NodeSdk.layer's env", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "otlp-json"
      const telemetry = NodeSdk.layer({
        env: {
          ...fast,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20json-token,x-tenant=acme",
          OTEL_SERVICE_NAME: "otlp-json-test"
        }
      })
      const result = yield* callAndCollect(collector, server).pipe(Effect.provide(telemetry))
      expectPoolTelemetry(server, "otlp-json-test", result.spans, result.metrics)

      const traces = tracesRequests(collector.received())
      expect(traces.length).toBeGreaterThan(0)
      for (const request of [...traces, result.metricsRequest]) {
        expect(request.contentType).toBe("application/json")
        expect(request.headers["authorization"]).toBe("Bearer json-token")
        expect(request.headers["x-tenant"]).toBe("acme")
      }
      expect(new Set(traces.map((r) => r.path))).toEqual(new Set(["/v1/traces"]))
      expect(result.metricsRequest.path).toBe("/v1/metrics")
    }).pipe(Effect.scoped)
  )

  it.live("http/protobuf, the default protocol: per-signal endpoint and compression, through a ConfigProvider", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "otlp-proto"
      const env = {
        ...fast,
        // No OTEL_EXPORTER_OTLP_PROTOCOL: the specification's default, http/protobuf.
        OTEL_EXPORTER_OTLP_ENDPOINT: `${collector.url}/base`,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collector.url}/custom/traces`,
        OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: "gzip",
        OTEL_EXPORTER_OTLP_METRICS_HEADERS: "x-signal=metrics",
        OTEL_RESOURCE_ATTRIBUTES: "service.name=otlp-proto-test,deployment.environment.name=test"
      }
      const telemetry = NodeSdk.layer().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
      const result = yield* callAndCollect(collector, server).pipe(Effect.provide(telemetry))
      expectPoolTelemetry(server, "otlp-proto-test", result.spans, result.metrics)
      expect(result.spans[0]?.resource["deployment.environment.name"]).toBe("test")

      const traces = tracesRequests(collector.received())
      for (const request of traces) {
        expect(request.contentType).toBe("application/x-protobuf")
        // The per-signal endpoint is used as it is; the general one gets v1/<signal> appended.
        expect(request.path).toBe("/custom/traces")
        expect(request.contentEncoding).toBe("")
        expect(request.headers["x-signal"]).toBeUndefined()
      }
      expect(result.metricsRequest.contentType).toBe("application/x-protobuf")
      expect(result.metricsRequest.path).toBe("/base/v1/metrics")
      expect(result.metricsRequest.contentEncoding).toBe("gzip")
      expect(result.metricsRequest.headers["x-signal"]).toBe("metrics")
    }).pipe(Effect.scoped)
  )

  it.live("a per-signal protocol wins over OTEL_EXPORTER_OTLP_PROTOCOL", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "otlp-mixed"
      const telemetry = NodeSdk.layer({
        env: {
          ...fast,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf",
          OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
          OTEL_SERVICE_NAME: "otlp-mixed-test"
        }
      })
      const result = yield* callAndCollect(collector, server).pipe(Effect.provide(telemetry))
      expectPoolTelemetry(server, "otlp-mixed-test", result.spans, result.metrics)
      for (const request of tracesRequests(collector.received())) {
        expect(request.contentType).toBe("application/x-protobuf")
      }
      expect(result.metricsRequest.contentType).toBe("application/json")
    }).pipe(Effect.scoped)
  )

  it.live("zipkin: OTEL_TRACES_EXPORTER=zipkin posts the CLIENT spans to OTEL_EXPORTER_ZIPKIN_ENDPOINT", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "zipkin"
      const telemetry = NodeSdk.layer({
        env: {
          ...fast,
          OTEL_TRACES_EXPORTER: "zipkin",
          OTEL_METRICS_EXPORTER: "none",
          OTEL_EXPORTER_ZIPKIN_ENDPOINT: `${collector.url}/api/v2/spans`,
          OTEL_SERVICE_NAME: "zipkin-test"
        }
      })
      const zipkinSpans = () =>
        collector
          .received()
          .filter((r) => r.path === "/api/v2/spans")
          .flatMap((r): Array<unknown> => {
            const parsed: unknown = JSON.parse(r.body.toString("utf8"))
            return Array.isArray(parsed) ? parsed : []
          })
      const echo = yield* withFixtureManager(
        server,
        (manager) =>
          Effect.gen(function* () {
            const tools = yield* manager.getMcpTools(server)
            for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
            return yield* eventually(`${N} Zipkin spans`, () => {
              const found = zipkinSpans().filter(
                (s) => typeof s === "object" && s !== null && "name" in s && s.name === "tools/call echo"
              )
              return found.length >= N ? found : undefined
            })
          }),
        { minConnections: 1, retryAttempts: 0, shutdownGracePeriod: 0.5 }
      ).pipe(Effect.provide(telemetry))
      expect(echo).toHaveLength(N)
      for (const span of echo) {
        expect(span).toMatchObject({
          kind: "CLIENT",
          localEndpoint: { serviceName: "zipkin-test" },
          tags: { "mcp_pool.server.name": server, "gen_ai.tool.name": "echo" }
        })
      }
      expect(collector.received().every((r) => r.path === "/api/v2/spans")).toBe(true)
    }).pipe(Effect.scoped)
  )

  it.live("grpc: spans and metrics over OTLP/gRPC, headers as gRPC metadata (Promise API with env)", () =>
    Effect.gen(function* () {
      const collector = yield* grpcCollector
      const server = "otlp-grpc"
      const manager = yield* Effect.promise(() =>
        createInstrumentedMcpConnectionManager(
          {
            servers: { [server]: fixtureStdioConfig() },
            defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
          },
          {
            env: {
              ...fast,
              OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
              OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
              OTEL_EXPORTER_OTLP_HEADERS: "x-tenant=acme",
              OTEL_SERVICE_NAME: "otlp-grpc-test"
            }
          }
        )
      )
      const result = yield* Effect.gen(function* () {
        const tools = manager.tools(server)
        for (let i = 0; i < N; i++) {
          yield* Effect.promise(() => tools.callTool({ name: "echo", arguments: { text: `n${i}` } }))
        }
        const sent = yield* eventually(`${N} spans`, echoSpans(collector, server))
        const exported = yield* eventually("metrics counting every call", completeMetrics(collector, server))
        return { spans: sent, ...exported }
      }).pipe(Effect.ensuring(Effect.promise(() => manager.close())))
      expectPoolTelemetry(server, "otlp-grpc-test", result.spans, result.exported)
      for (const request of [...tracesRequests(collector.received()), result.request]) {
        expect(request.transport).toBe("grpc")
        expect(request.headers["x-tenant"]).toBe("acme")
      }
      expect(result.request.path).toBe("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export")
    }).pipe(Effect.scoped)
  )
})
