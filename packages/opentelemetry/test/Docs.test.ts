/**
 * The code of docs/observability.md, type-checked here (and the pieces that need no
 * collector run). Keep the two in step.
 */
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { createMcpConnectionManager } from "@mcp-pool/core"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import { PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics"
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { describe, expect, it } from "vitest"
import {
  createInstrumentedMcpConnectionManager,
  instrumentMcpConnectionManager,
  Metrics,
  NodeSdk
} from "../src/index.js"

// --- docs: "Effect: let the package set up the SDK" ---
const Manager = MCPConnectionManager.layer({ configPath: ".mcp.json" })
const Telemetry = NodeSdk.layer({ serviceName: "my-agent" }) // exporters from the OTEL_* variables

const program = Effect.gen(function* () {
  const manager = yield* MCPConnectionManager
  const tools = yield* manager.getMcpTools("files")
  return yield* tools.callTool({ name: "read_file", arguments: { path: "README.md" } })
}).pipe(Effect.withSpan("answer-question"))

const runOwnSdk = () => Effect.runPromise(program.pipe(Effect.provide(Layer.merge(Manager, Telemetry))))

// --- docs: "Effect: the application already runs @opentelemetry/sdk-node" ---
// The reader the application gives `new NodeSDK({ metricReader, ... })`:
const metricReader: MetricReader = new PeriodicExportingMetricReader({
  exporter: new OTLPMetricExporter(),
  metricProducers: [Metrics.producer()]
})
const runGlobal = () => Effect.runPromise(program.pipe(Effect.provide(Layer.merge(Manager, NodeSdk.layerGlobal))))

// --- docs: "Promise API" ---
const promiseOwnSdk = async () => {
  const manager = await createInstrumentedMcpConnectionManager({ configPath: ".mcp.json" }, { serviceName: "my-agent" })
  const result = await manager.tools("files").callTool({ name: "read_file", arguments: { path: "README.md" } })
  await manager.close()
  return result
}
const promiseGlobal = async () => {
  const manager = await instrumentMcpConnectionManager(await createMcpConnectionManager(), { global: true })
  return manager
}

describe("docs/observability.md", () => {
  it("its snippets type-check; the Promise one runs with exporters switched off", async () => {
    expect([runOwnSdk, runGlobal, promiseOwnSdk, promiseGlobal, metricReader].every((x) => x !== undefined)).toBe(true)
    await metricReader.shutdown()
    const manager = await createInstrumentedMcpConnectionManager(
      { servers: { files: fixtureStdioConfig() }, defaults: { minConnections: 1, shutdownGracePeriod: 0.5 } },
      { serviceName: "my-agent", exportersFromEnv: false }
    )
    try {
      const result = await manager.tools("files").callTool({ name: "echo", arguments: { text: "ok" } })
      expect(result.content).toEqual([{ type: "text", text: "ok" }])
    } finally {
      await manager.close()
    }
  })
})
