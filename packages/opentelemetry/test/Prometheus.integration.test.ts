import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createServer } from "node:net"
import * as NodeSdk from "../src/NodeSdk.js"
import { withFixtureManager } from "./support.js"

/** A port that was free a moment ago on 127.0.0.1. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** The value of the sample `name{labels}` in a Prometheus text exposition. */
const sample = (text: string, name: string, labels: Record<string, string>): number | undefined => {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)/.exec(line)
    if (match?.[1] !== name) continue
    const body = match[2] ?? ""
    if (Object.entries(labels).every(([key, value]) => body.includes(`${key}="${value}"`))) return Number(match[3])
  }
  return undefined
}

describe("a real Prometheus scrape (OTEL_METRICS_EXPORTER=prometheus)", () => {
  it.live("GET /metrics over HTTP shows the pool's metrics with the right values", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      const env = {
        OTEL_TRACES_EXPORTER: "none",
        OTEL_METRICS_EXPORTER: "prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST: "127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT: String(port)
      }
      const telemetry = NodeSdk.layer().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
      const server = "otel-prom"
      const scrape = yield* withFixtureManager(
        server,
        (manager) =>
          Effect.gen(function* () {
            const tools = yield* manager.getMcpTools(server)
            for (let i = 0; i < 9; i++) yield* tools.callTool({ name: "add", arguments: { a: i, b: 1 } })
            yield* Effect.flip(tools.callTool({ name: "fail" }))
            const response = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`))
            expect(response.status).toBe(200)
            return yield* Effect.promise(() => response.text())
          }),
        { minConnections: 2, maxConnections: 3, retryAttempts: 0, shutdownGracePeriod: 0.5 }
      ).pipe(Effect.provide(telemetry))

      const pool = { db_client_connection_pool_name: server }
      expect(sample(scrape, "mcp_pool_requests_total", pool)).toBe(10)
      expect(sample(scrape, "mcp_pool_errors_total", pool)).toBe(1)
      expect(
        (sample(scrape, "mcp_pool_hits_total", pool) ?? 0) + (sample(scrape, "mcp_pool_misses_total", pool) ?? 0)
      ).toBe(10)
      expect(sample(scrape, "db_client_connection_limit", pool)).toBe(3)
      expect(sample(scrape, "db_client_connection_idle_min", pool)).toBe(2)
      expect(sample(scrape, "db_client_connection_count", { ...pool, db_client_connection_state: "idle" })).toBe(2)
      expect(sample(scrape, "db_client_connection_count", { ...pool, db_client_connection_state: "used" })).toBe(0)
      expect(sample(scrape, "db_client_connection_pending_requests", pool)).toBe(0)
      expect(sample(scrape, "mcp_pool_circuit_breaker_state", pool)).toBe(0)
      expect(
        sample(scrape, "mcp_client_operation_duration_count", {
          ...pool,
          gen_ai_tool_name: "add",
          mcp_method_name: "tools/call"
        })
      ).toBe(9)
      expect(sample(scrape, "mcp_client_operation_duration_count", { ...pool, error_type: "-32050" })).toBe(1)
      expect(scrape).toContain("# UNIT mcp_client_operation_duration s")
      // The layer closed: the endpoint is gone.
      const after = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}/metrics`).then(
          () => "answered",
          () => "refused"
        )
      )
      expect(after).toBe("refused")
    })
  )

  it.live("an unknown exporter name fails the layer with OtelSetupError naming the variable", () =>
    Effect.gen(function* () {
      const env = { OTEL_TRACES_EXPORTER: "jaeger", OTEL_METRICS_EXPORTER: "none" }
      const error = yield* Effect.flip(
        Layer.build(NodeSdk.layer().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))).pipe(
          Effect.scoped
        )
      )
      expect(error._tag).toBe("OtelSetupError")
      expect(error.message).toContain("OTEL_TRACES_EXPORTER")
      expect(error.message).toContain("jaeger")
    })
  )
})
