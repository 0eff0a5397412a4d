import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { describe, expect, it } from "@effect/vitest"
import * as Manager from "@mcp-pool/core/MCPConnectionManager"
import type { PoolConfigInput } from "@mcp-pool/core/PoolConfig"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import * as Effect from "effect/Effect"
import * as NodeSdk from "../src/NodeSdk.js"
import {
  countOf,
  echoSpanAttributes,
  inMemoryMetrics,
  inMemorySpans,
  metaOf,
  points,
  valueOf,
  withFixtureManager
} from "./support.js"

const defaults: PoolConfigInput = {
  minConnections: 1,
  maxConnections: 2,
  connectionTimeout: 10,
  retryAttempts: 0,
  shutdownGracePeriod: 0.5
}

/** A manager of one fixture server named `name`, closed after `f`. */
const withManager = <A, E>(name: string, f: (manager: Manager.Service) => Effect.Effect<A, E>) =>
  withFixtureManager(name, f, defaults)

const N = 12

describe("NodeSdk.layer: an OpenTelemetry SDK set up by the package, in-memory exporters", () => {
  it.live("after N calls the counters are N, the duration histogram has N samples, each a CLIENT span", () => {
    const metrics = inMemoryMetrics()
    const traces = inMemorySpans()
    const server = "otel-counts"
    return withManager(server, (manager) =>
      Effect.gen(function* () {
        const tools = yield* manager.getMcpTools(server)
        for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
        const exported = yield* Effect.promise(metrics.collect)
        const pool = { "db.client.connection.pool.name": server }
        expect(valueOf(exported, "mcp_pool.requests", pool)).toBe(N)
        expect(valueOf(exported, "mcp_pool.hits", pool) + valueOf(exported, "mcp_pool.misses", pool)).toBe(N)
        expect(valueOf(exported, "mcp_pool.errors", pool)).toBe(0)
        expect(valueOf(exported, "db.client.connection.limit", pool)).toBe(2)
        expect(valueOf(exported, "db.client.connection.idle.min", pool)).toBe(1)
        expect(valueOf(exported, "db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })).toBe(
          1
        )
        expect(valueOf(exported, "mcp_pool.circuit_breaker.state", pool)).toBe(0)
        const duration = {
          ...pool,
          "mcp.method.name": "tools/call",
          "gen_ai.tool.name": "echo",
          "network.transport": "pipe"
        }
        expect(countOf(exported, "mcp.client.operation.duration", duration)).toBe(N)
        expect(countOf(exported, "db.client.connection.wait_time", pool)).toBe(N)
        expect(countOf(exported, "db.client.connection.use_time", pool)).toBe(N)
        expect(countOf(exported, "db.client.connection.create_time", pool)).toBe(1)
        const descriptor = exported.find((m) => m.descriptor.name === "mcp.client.operation.duration")?.descriptor
        expect(descriptor?.unit).toBe("s")

        const spans = traces.spans().filter((s) => s.name === "tools/call echo")
        expect(spans).toHaveLength(N)
        for (const span of spans) {
          expect(span.kind).toBe(SpanKind.CLIENT)
          expect(span.attributes).toMatchObject(echoSpanAttributes(server))
          expect(span.attributes["mcp_pool.connection.id"]).toBeTypeOf("number")
          expect(span.attributes["mcp_pool.connection.reused"]).toBeTypeOf("boolean")
          expect(span.status.code).not.toBe(SpanStatusCode.ERROR)
        }
        // One connection was always idle for these one-at-a-time calls: nobody waited.
        expect(traces.spans().filter((s) => s.name === "mcp_pool.acquire")).toHaveLength(0)

        // Three at once on a pool of at most 2: the calls that wait get a child `mcp_pool.acquire` span.
        yield* Effect.forEach([1, 2, 3], () => tools.callTool({ name: "sleep", arguments: { ms: 100 } }), {
          concurrency: "unbounded"
        })
        const sleeps = new Set(
          traces
            .spans()
            .filter((s) => s.name === "tools/call sleep")
            .map((s) => s.spanContext().spanId)
        )
        const acquires = traces.spans().filter((s) => s.name === "mcp_pool.acquire")
        expect(acquires.length).toBeGreaterThanOrEqual(1)
        for (const acquire of acquires) expect(sleeps.has(acquire.parentSpanContext?.spanId ?? "")).toBe(true)
        const waited = yield* Effect.promise(metrics.collect)
        expect(countOf(waited, "db.client.connection.wait_time", pool)).toBe(N + 3)
      })
    ).pipe(
      Effect.provide(
        NodeSdk.layer({
          exportersFromEnv: false,
          serviceName: "mcp-pool-test",
          spanProcessors: [traces.processor],
          metricReaders: [metrics.reader]
        })
      )
    )
  })

  it.live("a JSON-RPC error and an isError result give error spans with error.type; errors are counted", () => {
    const metrics = inMemoryMetrics()
    const traces = inMemorySpans()
    const server = "otel-errors"
    return withManager(server, (manager) =>
      Effect.gen(function* () {
        const tools = yield* manager.getMcpTools(server)
        const failure = yield* Effect.flip(tools.callTool({ name: "fail" }))
        expect(failure._tag).toBe("MCPRequestError")
        const result = yield* tools.callTool({ name: "tool_error" })
        expect(result.isError).toBe(true)
        const failed = traces.spans().find((s) => s.name === "tools/call fail")
        expect(failed?.status.code).toBe(SpanStatusCode.ERROR)
        expect(failed?.attributes["error.type"]).toBe("-32050")
        const errored = traces.spans().find((s) => s.name === "tools/call tool_error")
        expect(errored?.status.code).toBe(SpanStatusCode.ERROR)
        expect(errored?.attributes["error.type"]).toBe("tool_error")

        const exported = yield* Effect.promise(metrics.collect)
        const pool = { "db.client.connection.pool.name": server }
        expect(valueOf(exported, "mcp_pool.errors", pool)).toBe(1)
        expect(valueOf(exported, "mcp_pool.requests", pool)).toBe(2)
        expect(countOf(exported, "mcp.client.operation.duration", { ...pool, "error.type": "-32050" })).toBe(1)
        expect(countOf(exported, "mcp.client.operation.duration", { ...pool, "error.type": "tool_error" })).toBe(1)
        expect(points(exported, "mcp.client.operation.duration", pool)).toHaveLength(2)
      })
    ).pipe(
      Effect.provide(
        NodeSdk.layer({ exportersFromEnv: false, spanProcessors: [traces.processor], metricReaders: [metrics.reader] })
      )
    )
  })

  it.live(
    "echo_meta sees the caller's trace: traceparent of the CLIENT span in the caller's trace, and tracestate",
    () => {
      const traces = inMemorySpans()
      const server = "otel-meta"
      return withManager(server, (manager) =>
        Effect.gen(function* () {
          const tools = yield* manager.getMcpTools(server)
          const result = yield* tools.callTool({ name: "echo_meta" }).pipe(Effect.withSpan("caller"))
          const caller = traces.spans().find((s) => s.name === "caller")
          const client = traces.spans().find((s) => s.name === "tools/call echo_meta")
          const traceId = caller?.spanContext().traceId
          expect(traceId).toMatch(/^[0-9a-f]{32}$/)
          expect(client?.spanContext().traceId).toBe(traceId)
          expect(client?.parentSpanContext?.spanId).toBe(caller?.spanContext().spanId)
          expect(metaOf(result)["traceparent"]).toBe(`00-${traceId}-${client?.spanContext().spanId}-01`)

          // A remote parent with a tracestate: the server gets the same trace and the tracestate.
          const remote = OtelTracer.makeExternalSpan({
            traceId: "0af7651916cd43dd8448eb211c80319c",
            spanId: "b7ad6b7169203331",
            traceFlags: 1,
            traceState: "vendor=opaque"
          })
          const fromRemote = metaOf(yield* tools.callTool({ name: "echo_meta" }).pipe(Effect.withParentSpan(remote)))
          expect(fromRemote["traceparent"]).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/)
          expect(fromRemote["tracestate"]).toBe("vendor=opaque")
        })
      ).pipe(Effect.provide(NodeSdk.layer({ exportersFromEnv: false, spanProcessors: [traces.processor] })))
    }
  )
})
