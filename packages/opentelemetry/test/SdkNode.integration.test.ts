/**
 * The documented pattern for an application that already runs `@opentelemetry/sdk-node`, for
 * real: a started `NodeSDK` (in-memory span exporter; a metric reader given the pools'
 * producer) and `NodeSdk.layerGlobal`. The pools' spans and metrics reach the SDK's exporters.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as Otel from "@opentelemetry/api"
import { NodeSDK } from "@opentelemetry/sdk-node"
import * as Effect from "effect/Effect"
import { Metrics, NodeSdk } from "../src/index.js"
import { countOf, inMemoryMetrics, inMemorySpans, metaOf, valueOf } from "./support.js"

const traces = inMemorySpans()
const metrics = inMemoryMetrics([Metrics.producer()])
const sdk = new NodeSDK({
  serviceName: "my-agent",
  spanProcessors: [traces.processor],
  metricReaders: [metrics.reader],
  // No OTLP log exporter from the environment in a test.
  logRecordProcessors: []
})

beforeAll(() => sdk.start())

afterAll(async () => {
  await sdk.shutdown()
  Otel.trace.disable()
  Otel.metrics.disable()
  Otel.propagation.disable()
  Otel.context.disable()
})

const N = 5

describe("@opentelemetry/sdk-node's NodeSDK + NodeSdk.layerGlobal (docs/observability.md)", () => {
  it.live("the pool's CLIENT spans and metrics reach the SDK's exporters; _meta carries the trace", () => {
    const Manager = MCPConnectionManager.layer({
      servers: { files: fixtureStdioConfig() },
      defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
    })
    const program = Effect.gen(function* () {
      const manager = yield* MCPConnectionManager
      const tools = yield* manager.getMcpTools("files")
      for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
      const result = yield* tools.callTool({ name: "echo_meta" })
      // Read while the pool is open (its counters go with it).
      const exported = yield* Effect.promise(metrics.collect)
      return { result, exported }
    }).pipe(Effect.withSpan("answer-question"))

    return Effect.promise(() =>
      Effect.runPromise(program.pipe(Effect.provide(Manager.pipe(NodeSdk.provide(NodeSdk.layerGlobal)))))
    ).pipe(
      Effect.map(({ result, exported }) => {
        const root = traces.spans().find((s) => s.name === "answer-question")
        const echo = traces.spans().filter((s) => s.name === "tools/call echo")
        expect(echo).toHaveLength(N)
        for (const span of echo) {
          expect(span.kind).toBe(Otel.SpanKind.CLIENT)
          expect(span.attributes).toMatchObject({ "mcp_pool.server.name": "files", "gen_ai.tool.name": "echo" })
          expect(span.parentSpanContext?.spanId).toBe(root?.spanContext().spanId)
          // The SDK's provider made it: its resource, with the SDK's service name.
          expect(span.resource.attributes["service.name"]).toBe("my-agent")
        }
        // The global propagator (W3C, registered by sdk.start()) wrote _meta.
        const client = traces.spans().find((s) => s.name === "tools/call echo_meta")
        expect(metaOf(result)["traceparent"]).toBe(
          `00-${root?.spanContext().traceId}-${client?.spanContext().spanId}-01`
        )

        const pool = { "db.client.connection.pool.name": "files" }
        expect(valueOf(exported, "mcp_pool.requests", pool)).toBe(N + 1)
        expect(countOf(exported, "mcp.client.operation.duration", { ...pool, "gen_ai.tool.name": "echo" })).toBe(N)
        expect(valueOf(exported, "db.client.connection.limit", pool)).toBe(2)
      })
    )
  })
})
