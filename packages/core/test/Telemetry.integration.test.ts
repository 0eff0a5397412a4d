import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig, startHttpFixtureServer } from "@mcp-pool/test-servers"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Tracer from "effect/Tracer"
import type { PoolConfigInput } from "../src/PoolConfig.js"
import * as Telemetry from "../src/Telemetry.js"
import { captureLogs, realWait, recordingTracer, startManager } from "./support.js"

const fast: PoolConfigInput = {
  minConnections: 1,
  maxConnections: 2,
  connectionTimeout: 10,
  retryAttempts: 0,
  shutdownGracePeriod: 0.5
}

/** A manager of one fixture server, "fx", built in the caller's context (registry, tracer), closed by the test's scope. */
const fixtureManager = () => startManager({ fx: fixtureStdioConfig() }, fast)

const series = (registry: Metric.MetricRegistry, name: string, attributes: Record<string, string> = {}) =>
  Metric.snapshotUnsafe(Context.make(Metric.MetricRegistry, registry)).filter(
    (s) => s.id === name && Object.entries(attributes).every(([k, v]) => s.attributes?.[k] === v)
  )

const metaOf = (result: object): Record<string, unknown> => {
  const structured: unknown = "structuredContent" in result ? result.structuredContent : undefined
  if (typeof structured !== "object" || structured === null || !("meta" in structured)) return {}
  const meta: unknown = structured.meta
  return typeof meta === "object" && meta !== null ? { ...meta } : {}
}

describe("Telemetry over a real fixture server", () => {
  it.live("N calls: the duration histogram has N samples, the lazy counters and gauges read the pool", () => {
    const registry: Metric.MetricRegistry = new Map()
    return Effect.gen(function* () {
      const { manager, close } = yield* fixtureManager()
      const tools = yield* manager.getMcpTools("fx")
      for (let i = 0; i < 7; i++) yield* tools.callTool({ name: "echo", arguments: { text: `n${i}` } })
      const [duration, ...others] = series(registry, Telemetry.MetricName.operationDuration, {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "echo"
      })
      expect(others).toHaveLength(0)
      expect(duration?.type).toBe("Histogram")
      expect(duration?.state).toMatchObject({ count: 7 })
      expect(duration?.attributes).toMatchObject({
        "db.client.connection.pool.name": "fx",
        "network.transport": "pipe",
        unit: "s"
      })
      const value = (name: string, attributes: Record<string, string> = {}) => {
        const state = series(registry, name, { "db.client.connection.pool.name": "fx", ...attributes })[0]?.state
        if (state === undefined) return undefined
        const found = "count" in state ? state.count : "value" in state ? state.value : undefined
        return found === undefined ? undefined : Number(found)
      }
      expect(value(Telemetry.MetricName.requests)).toBe(7)
      expect((value(Telemetry.MetricName.hits) ?? 0) + (value(Telemetry.MetricName.misses) ?? 0)).toBe(7)
      expect(value(Telemetry.MetricName.errors)).toBe(0)
      expect(value(Telemetry.MetricName.limit)).toBe(2)
      expect(value(Telemetry.MetricName.idleMin)).toBe(1)
      expect(value(Telemetry.MetricName.connectionCount, { "db.client.connection.state": "idle" })).toBe(1)
      expect(value(Telemetry.MetricName.connectionCount, { "db.client.connection.state": "used" })).toBe(0)
      expect(value(Telemetry.MetricName.circuitBreakerState)).toBe(0)
      expect(series(registry, Telemetry.MetricName.waitTime)[0]?.state).toMatchObject({ count: 7 })
      expect(series(registry, Telemetry.MetricName.useTime)[0]?.state).toMatchObject({ count: 7 })
      expect(series(registry, Telemetry.MetricName.createTime)[0]?.state).toMatchObject({ count: 1 })
      // List calls through the catalog: one read of the server, then answers from it.
      yield* tools.listTools()
      yield* tools.listTools()
      const lookups = (result: string) =>
        value(Telemetry.MetricName.catalogLookups, { [Telemetry.Attribute.catalogResult]: result })
      expect([lookups("fill"), lookups("hit"), lookups("shared")]).toEqual([1, 1, 0])
      yield* close
      // Closing the pool recorded the session and removed its lazily read series.
      expect(series(registry, Telemetry.MetricName.sessionDuration)[0]?.state).toMatchObject({ count: 1 })
      expect(series(registry, Telemetry.MetricName.requests)).toHaveLength(0)
      expect(series(registry, Telemetry.MetricName.catalogLookups)).toHaveLength(0)
    }).pipe(Effect.provideService(Metric.MetricRegistry, registry))
  })

  it.live("an opening breaker: transition counted, state gauge 2, the alert counted, connection errors counted", () => {
    const registry: Metric.MetricRegistry = new Map()
    const logs = captureLogs()
    return Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { down: { command: "/nonexistent/mcp-server-binary" } },
        { minConnections: 0, retryAttempts: 0, circuitBreakerFailureThreshold: 2 }
      )
      const tools = yield* manager.getMcpTools("down")
      for (let i = 0; i < 3; i++) yield* Effect.flip(tools.listTools())
      const pool = { "db.client.connection.pool.name": "down" }
      const one = (name: string, attributes: Record<string, string> = {}) =>
        series(registry, name, { ...pool, ...attributes })[0]?.state
      expect(
        one(Telemetry.MetricName.circuitBreakerTransitions, { "mcp_pool.circuit_breaker.to": "open" })
      ).toMatchObject({ count: 1 })
      expect(one(Telemetry.MetricName.circuitBreakerState)).toMatchObject({ value: 2 })
      expect(
        one(Telemetry.MetricName.alerts, {
          "mcp_pool.alert.type": "circuit_breaker_open",
          "mcp_pool.alert.severity": "critical"
        })
      ).toMatchObject({ count: 1 })
      expect(one(Telemetry.MetricName.connectionErrors)).toMatchObject({ count: 2 })
      expect(one(Telemetry.MetricName.errors)).toMatchObject({ count: 3 })
      expect(
        one(Telemetry.MetricName.operationDuration, { "mcp.method.name": "tools/list", "error.type": "MCPCircuitOpen" })
      ).toMatchObject({ count: 1 })
      // The opening and its alert are logged.
      yield* realWait(
        () =>
          logs.messages.includes('Circuit breaker for "down" opened: 2 consecutive failures') &&
          logs.messages.some((line) => line.startsWith('Alert circuit_breaker_open: circuit breaker of "down" opened')),
        5_000
      )
      yield* close
    }).pipe(Effect.provideService(Metric.MetricRegistry, registry), logs.capture)
  })

  it.live("a CLIENT span per request, the acquire span under it, and the span's traceparent in _meta", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.gen(function* () {
      const { manager } = yield* fixtureManager()
      const tools = yield* manager.getMcpTools("fx")
      const result = yield* tools.callTool({ name: "echo_meta" }).pipe(Effect.withSpan("caller"))
      const caller = spans.find((s) => s.name === "caller")
      const client = spans.find((s) => s.name === "tools/call echo_meta")
      expect(client?.kind).toBe("client")
      expect(client?.traceId).toBe(caller?.traceId)
      expect(client?.parent._tag === "Some" && client.parent.value.spanId).toBe(caller?.spanId)
      // An idle connection was there: no wait, no acquire span.
      expect(spans.filter((s) => s.name === Telemetry.ACQUIRE_SPAN_NAME)).toHaveLength(0)
      expect(Object.fromEntries(client?.attributes ?? [])).toMatchObject({
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "echo_meta",
        "mcp_pool.server.name": "fx",
        "db.client.connection.pool.name": "fx",
        "network.transport": "pipe",
        "mcp_pool.connection.reused": true
      })
      expect(client?.attributes.get("mcp_pool.connection.id")).toBeTypeOf("number")
      expect(metaOf(result)["traceparent"]).toBe(`00-${client?.traceId}-${client?.spanId}-01`)

      // Three at once on a pool of at most 2 (one open): the ones that wait get an acquire span.
      yield* Effect.forEach([1, 2, 3], () => tools.callTool({ name: "sleep", arguments: { ms: 100 } }), {
        concurrency: "unbounded"
      })
      const sleeps = new Map(spans.filter((s) => s.name === "tools/call sleep").map((s) => [s.spanId, s]))
      const acquires = spans.filter((s) => s.name === Telemetry.ACQUIRE_SPAN_NAME)
      expect(acquires.length).toBeGreaterThanOrEqual(1)
      for (const acquire of acquires) {
        expect(acquire.status._tag).toBe("Ended")
        expect(acquire.parent._tag === "Some" && sleeps.has(acquire.parent.value.spanId)).toBe(true)
      }
    }).pipe(Effect.withTracer(tracer))
  })

  it.live("over HTTP, the SDK call runs under the request's span in the tracer's context hook; not over stdio", () => {
    const { spans, tracer } = recordingTracer()
    const underSpan: Array<string> = []
    const hooked = Tracer.make({
      span: (options) => tracer.span(options),
      context: (primitive, fiber) => {
        const current = fiber.cache.span
        if (current?._tag === "Span") underSpan.push(current.name)
        return primitive["~effect/Effect/evaluate"](fiber)
      }
    })
    return Effect.gen(function* () {
      const http = yield* Effect.acquireRelease(
        Effect.promise(() => startHttpFixtureServer()),
        (server) => Effect.promise(() => server.close())
      )
      const { manager } = yield* startManager({ fx: fixtureStdioConfig(), web: { type: "http", url: http.url } }, fast)
      for (const name of ["fx", "web"]) {
        underSpan.length = 0
        const tools = yield* manager.getMcpTools(name)
        yield* tools.callTool({ name: "echo", arguments: { text: name } }).pipe(Effect.withSpan(`caller ${name}`))
        const client = spans.findLast((s) => s.name === "tools/call echo")
        const caller = spans.find((s) => s.name === `caller ${name}`)
        expect(client?.parent._tag === "Some" && client.parent.value.spanId).toBe(caller?.spanId)
        // The caller's own steps see the caller's span; the SDK call sees the request's over HTTP only.
        expect(underSpan).toContain(`caller ${name}`)
        expect(underSpan.includes("tools/call echo")).toBe(name === "web")
      }
    }).pipe(Effect.withTracer(hooked))
  })

  it.live("withConnection and lease: wait and use timed, one mcp_pool.lease span each", () => {
    const { spans, tracer } = recordingTracer()
    const registry: Metric.MetricRegistry = new Map()
    return Effect.gen(function* () {
      const { manager } = yield* fixtureManager()
      const answer = yield* manager
        .withConnection("fx", (client) =>
          Effect.promise(() => client.callTool({ name: "echo", arguments: { text: "a" } }))
        )
        .pipe(Effect.withSpan("caller"))
      expect(answer.content).toEqual([{ type: "text", text: "a" }])
      const leased = yield* Effect.scoped(
        Effect.map(manager.lease("fx"), (connection) => {
          // The lease is open while the scope is: its use is not recorded yet.
          expect(series(registry, Telemetry.MetricName.useTime)[0]?.state).toMatchObject({ count: 1 })
          return connection.id
        })
      )
      const leases = spans.filter((s) => s.name === Telemetry.LEASE_SPAN_NAME)
      expect(leases).toHaveLength(2)
      const caller = spans.find((s) => s.name === "caller")
      expect(leases[0]?.parent._tag === "Some" && leases[0].parent.value.spanId).toBe(caller?.spanId)
      for (const lease of leases) {
        expect(lease.status._tag).toBe("Ended")
        expect(lease.attributes.get("db.client.connection.pool.name")).toBe("fx")
        expect(lease.attributes.get("mcp_pool.connection.id")).toBeTypeOf("number")
      }
      expect(leases[1]?.attributes.get("mcp_pool.connection.id")).toBe(leased)
      expect(series(registry, Telemetry.MetricName.waitTime)[0]?.state).toMatchObject({ count: 2 })
      expect(series(registry, Telemetry.MetricName.useTime)[0]?.state).toMatchObject({ count: 2 })
    }).pipe(Effect.withTracer(tracer), Effect.provideService(Metric.MetricRegistry, registry))
  })

  it.live("a JSON-RPC error and an isError result end the span as failed, with error.type", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.gen(function* () {
      const { manager } = yield* fixtureManager()
      const tools = yield* manager.getMcpTools("fx")
      const failure = yield* Effect.flip(tools.callTool({ name: "fail" }))
      expect(failure._tag).toBe("MCPRequestError")
      const toolError = yield* tools.callTool({ name: "tool_error" })
      expect(toolError.isError).toBe(true)
      const failed = spans.find((s) => s.name === "tools/call fail")
      const errored = spans.find((s) => s.name === "tools/call tool_error")
      expect(failed?.attributes.get("error.type")).toBe("-32050")
      expect(errored?.attributes.get("error.type")).toBe("tool_error")
      for (const span of [failed, errored]) {
        expect(span?.status._tag === "Ended" && Exit.isFailure(span.status.exit)).toBe(true)
      }
    }).pipe(Effect.withTracer(tracer))
  })

  it.live("without a tracing backend no span is made, but the caller's trace context is still sent", () =>
    Effect.gen(function* () {
      const { manager } = yield* fixtureManager()
      const tools = yield* manager.getMcpTools("fx")
      const bare = yield* tools.callTool({ name: "echo_meta" })
      expect(metaOf(bare)["traceparent"]).toBeUndefined()
      const parent = yield* Effect.makeSpan("caller")
      const traced = yield* tools.callTool({ name: "echo_meta" }).pipe(Effect.withParentSpan(parent))
      expect(metaOf(traced)["traceparent"]).toBe(`00-${parent.traceId}-${parent.spanId}-01`)
      // Listing and pings carry it too.
      const listed = yield* tools.listTools().pipe(Effect.withParentSpan(parent))
      expect(listed.tools.length).toBeGreaterThan(0)
      yield* tools.ping().pipe(Effect.withParentSpan(parent))
    })
  )
})
