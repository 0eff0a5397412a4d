import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { describe, expect, it } from "vitest"
import { createInstrumentedMcpConnectionManager } from "../src/index.js"
import { countOf, inMemoryMetrics, inMemorySpans, metaOf, valueOf } from "./support.js"

describe("createInstrumentedMcpConnectionManager (Promise API)", () => {
  it("traces tools() calls and exports the pools' metrics; close() shuts the exporters down", async () => {
    const metrics = inMemoryMetrics()
    const traces = inMemorySpans()
    const server = "otel-promise"
    const manager = await createInstrumentedMcpConnectionManager(
      {
        servers: { [server]: fixtureStdioConfig() },
        defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
      },
      { exportersFromEnv: false, spanProcessors: [traces.processor], metricReaders: [metrics.reader] }
    )
    try {
      const tools = manager.tools(server)
      for (let i = 0; i < 4; i++) await tools.callTool({ name: "echo", arguments: { text: "x" } })
      await expect(tools.callTool({ name: "fail" })).rejects.toMatchObject({ _tag: "MCPRequestError", code: -32050 })
      const meta = metaOf(await tools.callTool({ name: "echo_meta" }))
      expect(() => manager.tools("nope")).toThrow(/nope/)

      const echo = traces.spans().filter((s) => s.name === "tools/call echo")
      expect(echo).toHaveLength(4)
      expect(echo.every((s) => s.kind === SpanKind.CLIENT)).toBe(true)
      const failed = traces.spans().find((s) => s.name === "tools/call fail")
      expect(failed?.status.code).toBe(SpanStatusCode.ERROR)
      expect(failed?.attributes["error.type"]).toBe("-32050")
      const client = traces.spans().find((s) => s.name === "tools/call echo_meta")
      expect(meta["traceparent"]).toBe(`00-${client?.spanContext().traceId}-${client?.spanContext().spanId}-01`)

      const exported = await metrics.collect()
      const pool = { "db.client.connection.pool.name": server }
      expect(valueOf(exported, "mcp_pool.requests", pool)).toBe(6)
      expect(valueOf(exported, "mcp_pool.errors", pool)).toBe(1)
      expect(countOf(exported, "mcp.client.operation.duration", { ...pool, "gen_ai.tool.name": "echo" })).toBe(4)
      expect((await manager.pools()).pools[0]?.total_requests).toBe(6)
    } finally {
      await manager.close()
    }
    // Closed: the reader was shut down with the exporters, so a flush exports nothing.
    expect(await metrics.collect()).toEqual([])
  })
})
