import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Otel from "@opentelemetry/api"
import { MeterProvider } from "@opentelemetry/sdk-metrics"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import * as Effect from "effect/Effect"
import * as Metrics from "../src/Metrics.js"
import * as NodeSdk from "../src/NodeSdk.js"
import { countOf, inMemoryMetrics, inMemorySpans, metaOf, valueOf, withFixtureManager } from "./support.js"

// What `new NodeSDK({ spanProcessors, metricReader }).start()` does: register the global
// tracer provider (with the W3C propagators and an AsyncLocalStorage context manager) and
// the global meter provider. The application gives its metric reader the pools' producer.
const traces = inMemorySpans()
const metrics = inMemoryMetrics([Metrics.producer()])
const tracerProvider = new NodeTracerProvider({ spanProcessors: [traces.processor] })
const meterProvider = new MeterProvider({ readers: [metrics.reader] })

beforeAll(() => {
  tracerProvider.register()
  Otel.metrics.setGlobalMeterProvider(meterProvider)
})

afterAll(async () => {
  await tracerProvider.shutdown()
  await meterProvider.shutdown()
  Otel.trace.disable()
  Otel.metrics.disable()
  Otel.propagation.disable()
  Otel.context.disable()
})

describe("NodeSdk.layerGlobal: an application that already runs the OpenTelemetry SDK", () => {
  it.live("spans go to the global provider, metrics to the application's reader, baggage to the server", () => {
    const server = "otel-global"
    const program = withFixtureManager(server, (manager) =>
      Effect.gen(function* () {
        const tools = yield* manager.getMcpTools(server)
        for (let i = 0; i < 5; i++) yield* tools.callTool({ name: "echo", arguments: { text: "x" } })
        const result = yield* tools.callTool({ name: "echo_meta" }).pipe(Effect.withSpan("caller"))
        const exported = yield* Effect.promise(metrics.collect)
        return { result, exported }
      })
    ).pipe(Effect.provide(NodeSdk.layerGlobal))

    // The application's own active context, with baggage, around the call.
    const baggage = Otel.propagation.createBaggage({ tenant: { value: "acme" } })
    return Effect.promise(() =>
      Otel.context.with(Otel.propagation.setBaggage(Otel.context.active(), baggage), () => Effect.runPromise(program))
    ).pipe(
      Effect.map(({ result, exported }) => {
        const pool = { "db.client.connection.pool.name": server }
        expect(valueOf(exported, "mcp_pool.requests", pool)).toBe(6)
        expect(countOf(exported, "mcp.client.operation.duration", { ...pool, "gen_ai.tool.name": "echo" })).toBe(5)
        expect(traces.spans().filter((s) => s.name === "tools/call echo")).toHaveLength(5)
        const client = traces.spans().find((s) => s.name === "tools/call echo_meta")
        const caller = traces.spans().find((s) => s.name === "caller")
        const meta = metaOf(result)
        expect(meta["traceparent"]).toBe(`00-${caller?.spanContext().traceId}-${client?.spanContext().spanId}-01`)
        expect(meta["baggage"]).toBe("tenant=acme")
      })
    )
  })
})
