/**
 * An application that runs `@opentelemetry/sdk-node` and shuts it down after the manager: the
 * global providers are flushed while the pools are open, so the pools' counters and gauges
 * reach the exporter although the reader's interval is far longer than the program.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as Otel from "@opentelemetry/api"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { NodeSDK } from "@opentelemetry/sdk-node"
import * as Effect from "effect/Effect"
import { createInstrumentedMcpConnectionManager, Metrics, NodeSdk } from "../src/index.js"
import { inMemorySpans, points } from "./support.js"

const N = 4

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
const traces = inMemorySpans()
const sdk = new NodeSDK({
  serviceName: "final-global",
  spanProcessors: [traces.processor],
  metricReaders: [
    new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: 3_600_000,
      metricProducers: [Metrics.producer()]
    })
  ],
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

const managerOptions = (server: string) => ({
  servers: { [server]: fixtureStdioConfig() },
  defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
})

const exported = (): Array<MetricData> =>
  exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))

/** What the exporter got, with the application's SDK still running, once the manager closed. */
const expectPoolMetrics = (server: string) => {
  const pool = { "db.client.connection.pool.name": server }
  expect(points(exported(), "mcp_pool.requests", pool).map((p) => p.value)).toContain(N)
  expect(points(exported(), "db.client.connection.limit", pool).map((p) => p.value)).toContain(2)
  const idle = points(exported(), "db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })
  expect(idle.map((p) => p.value)).toContain(1)
}

describe("NodeSdk.layerGlobal: the application's global providers are flushed before the pools close", () => {
  it.live("Effect: the manager's layer under NodeSdk.provide(NodeSdk.layerGlobal)", () =>
    Effect.gen(function* () {
      exporter.reset()
      const server = "final-global-layer"
      yield* Effect.gen(function* () {
        const manager = yield* MCPConnectionManager
        const tools = yield* manager.getMcpTools(server)
        for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
        expect(exported()).toEqual([])
      }).pipe(
        Effect.provide(MCPConnectionManager.layer(managerOptions(server)).pipe(NodeSdk.provide(NodeSdk.layerGlobal)))
      )
      expectPoolMetrics(server)
      expect(traces.spans().filter((s) => s.name === "tools/call echo")).toHaveLength(N)
    })
  )

  it.live("Promise API: { global: true }, close() at once", () =>
    Effect.promise(async () => {
      exporter.reset()
      const server = "final-global-promise"
      const manager = await createInstrumentedMcpConnectionManager(managerOptions(server), { global: true })
      const tools = manager.tools(server)
      for (let i = 0; i < N; i++) await tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
      expect(exported()).toEqual([])
      await manager.close()
      expectPoolMetrics(server)
    })
  )
})
