/**
 * A short-lived program's last export: the exporters run on an interval far longer than the
 * program, so only what is sent when it closes reaches the receiver. It must carry the pool's
 * counters and gauges, which are read from the pools and disappear with them.
 */
import { describe, expect, it } from "@effect/vitest"
import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createMcpConnectionManager, type LogEntry } from "@mcp-pool/core/PromiseApi"
import { createServer } from "node:net"
import { createInstrumentedMcpConnectionManager, instrumentMcpConnectionManager } from "../src/index.js"
import * as NodeSdk from "../src/NodeSdk.js"
import { type Collector, httpCollector, type Metric, metrics, spans } from "./collector.js"

const N = 5

class Greeting extends Context.Service<Greeting, string>()("test/Greeting") {}
const HOUR = "3600000"

const managerOptions = (server: string) => ({
  servers: { [server]: fixtureStdioConfig() },
  defaults: { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
})

/** OTLP over http/json to `collector`; nothing is exported before the program closes. */
const lateEnv = (collector: Collector, serviceName: string) => ({
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
  OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
  OTEL_METRIC_EXPORT_INTERVAL: HOUR,
  OTEL_BSP_SCHEDULE_DELAY: HOUR,
  OTEL_SERVICE_NAME: serviceName
})

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
    })
  })

const metricsExports = (collector: Collector): Array<Array<Metric>> =>
  collector
    .received()
    .filter((r) => r.signal === "metrics")
    .map(metrics)

/** Every point of `name` whose attributes include `wanted`, over all the exports. */
const pointsOf = (exports: ReadonlyArray<ReadonlyArray<Metric>>, name: string, wanted: Record<string, unknown>) =>
  exports.flatMap((exported) =>
    exported
      .filter((m) => m.name === name)
      .flatMap((m) => m.points.filter((p) => Object.entries(wanted).every(([k, v]) => p.attributes[k] === v)))
  )

/** What the exports made while closing must show about the pool `server` after N echo calls. */
const expectFinalPoolMetrics = (collector: Collector, server: string) => {
  const exports = metricsExports(collector)
  const pool = { "db.client.connection.pool.name": server }
  expect(pointsOf(exports, "mcp_pool.requests", pool).map((p) => p.value)).toContain(N)
  expect(pointsOf(exports, "mcp_pool.errors", pool).map((p) => p.value)).toContain(0)
  expect(pointsOf(exports, "db.client.connection.limit", pool).map((p) => p.value)).toContain(2)
  const idle = pointsOf(exports, "db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })
  const used = pointsOf(exports, "db.client.connection.count", { ...pool, "db.client.connection.state": "used" })
  expect(idle.length).toBeGreaterThan(0)
  expect(idle.every((p) => (p.value ?? 0) >= 1)).toBe(true)
  expect(used.map((p) => p.value)).toContain(0)
  // The histograms are kept by the registry: they are in the last export too.
  const last = exports.at(-1) ?? []
  expect(pointsOf([last], "mcp.client.operation.duration", { ...pool, "gen_ai.tool.name": "echo" })).toEqual([
    expect.objectContaining({ count: N })
  ])
  const echo = spans(collector.received()).filter(
    (s) => s.name === "tools/call echo" && s.attributes["mcp_pool.server.name"] === server
  )
  expect(echo).toHaveLength(N)
}

/** N echo calls through the manager of the context. */
const callEcho = (server: string) =>
  Effect.gen(function* () {
    const manager = yield* MCPConnectionManager
    const tools = yield* manager.getMcpTools(server)
    for (let i = 0; i < N; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
  })

describe("the export made when a short-lived program closes carries the pools' counters and gauges", () => {
  it.live("Promise API: createInstrumentedMcpConnectionManager, N calls, close() at once", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "final-promise"
      const manager = yield* Effect.promise(() =>
        createInstrumentedMcpConnectionManager(managerOptions(server), { env: lateEnv(collector, "final-promise") })
      )
      const tools = manager.tools(server)
      for (let i = 0; i < N; i++) {
        yield* Effect.promise(() => tools.callTool({ name: "echo", arguments: { text: `n${i}` } }))
      }
      expect(collector.received()).toEqual([])
      yield* Effect.promise(() => manager.close())
      expectFinalPoolMetrics(collector, server)
    }).pipe(Effect.scoped)
  )

  it.live("Effect: the manager's layer under NodeSdk.provide(NodeSdk.layer(...)), closed at once", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "final-layer"
      const Manager = MCPConnectionManager.layer(managerOptions(server))
      const Telemetry = NodeSdk.layer({ env: lateEnv(collector, "final-layer") })
      yield* callEcho(server).pipe(
        Effect.tap(() => Effect.sync(() => expect(collector.received()).toEqual([]))),
        Effect.provide(Manager.pipe(NodeSdk.provide(Telemetry)))
      )
      expectFinalPoolMetrics(collector, server)
    }).pipe(Effect.scoped)
  )

  it.live("Effect: an application layer that holds the manager, NodeSdk.provide in data-first form", () =>
    Effect.gen(function* () {
      const collector = yield* httpCollector
      const server = "final-app"
      const Manager = MCPConnectionManager.layer(managerOptions(server))
      const App = Layer.mergeAll(Manager, Layer.succeed(Greeting, "hello"))
      const Telemetry = NodeSdk.layer({ env: lateEnv(collector, "final-app") })
      const greeting = yield* Effect.gen(function* () {
        yield* callEcho(server)
        return yield* Greeting
      }).pipe(Effect.provide(NodeSdk.provide(App, Telemetry)))
      expect(greeting).toBe("hello")
      expectFinalPoolMetrics(collector, server)
    }).pipe(Effect.scoped)
  )

  it.live("a flush that cannot reach the receiver is logged as a warning; close() still closes everything", () =>
    Effect.promise(async () => {
      const lines: Array<LogEntry> = []
      const server = "final-unreachable"
      const manager = await createMcpConnectionManager({
        ...managerOptions(server),
        logger: (entry) => lines.push(entry)
      })
      const instrumented = await instrumentMcpConnectionManager(manager, {
        shutdownTimeout: 300,
        env: {
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
          OTEL_METRIC_EXPORT_INTERVAL: HOUR,
          OTEL_BSP_SCHEDULE_DELAY: HOUR
        }
      })
      await instrumented.tools(server).callTool({ name: "echo", arguments: { text: "x" } })
      await instrumented.close()
      expect(lines).toContainEqual(
        expect.objectContaining({
          level: "warning",
          message: expect.stringContaining("flushing before the pools close")
        })
      )
      await expect(manager.pools()).rejects.toMatchObject({ _tag: "MCPManagerClosed" })
    })
  )
})
