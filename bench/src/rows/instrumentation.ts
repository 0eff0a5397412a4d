/**
 * Row 8: what metrics and tracing cost per call. Two pools of one connection on the same
 * kind of stdio server, one plain and one exporting to an OpenTelemetry SDK (spans and metrics).
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { instrument } from "@mcp-pool/opentelemetry/PromiseApi"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader
} from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import { alternate, closedLoop, sequential } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, median, ratio, round, summarize } from "../stats.ts"
import { echoParams, fixtureManager, pinnedLaunch, SERVER } from "../subjects.ts"

const LATENCY_ROUNDS = 40
const CALLS_PER_LATENCY_ROUND = 50
/**
 * As in row 2: either side's CPU per call keeps falling for tens of thousands of calls while V8
 * optimises it, and short rounds catch a collection or a scheduler hiccup whole. 2,000 warm-up
 * calls and rounds of 2,000 made the added figure move between +6 and +15 µs from run to run.
 */
const WARM_UP_CALLS = 30_000
const THROUGHPUT_ROUNDS = 12
const CALLS_PER_THROUGHPUT_ROUND = 6000
const IN_FLIGHT = 100
const MAX_ADDED_MICROS = 10

/** Takes every span and drops it: the cost of the SDK up to the export, without a network. */
class DiscardingExporter implements SpanExporter {
  exported = 0
  export(spans: Array<ReadableSpan>, done: (result: { code: 0 }) => void): void {
    this.exported += spans.length
    done({ code: 0 })
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

const defaults = { minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 128 }

export const row: RowDefinition = {
  id: 8,
  name: "instrumentation overhead",
  target: `metrics and tracing on add < ${MAX_ADDED_MICROS} µs of client CPU per call`,
  run: async () => {
    const opened: Array<MCPConnectionManagerPromise> = []
    try {
      // Both servers on the same core, as in row 2, so that the latency line compares clients.
      const launch = pinnedLaunch()
      const plain = await fixtureManager(defaults, launch)
      opened.push(plain)
      const exporter = new DiscardingExporter()
      const instrumented = await instrument(await fixtureManager(defaults, launch), {
        exportersFromEnv: false,
        spanProcessors: [new BatchSpanProcessor(exporter)],
        metricReaders: [
          new PeriodicExportingMetricReader({
            exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
            exportIntervalMillis: 1_000
          })
        ]
      })
      opened.push(instrumented)
      const calls = {
        off: () => plain.tools(SERVER).callTool(echoParams),
        on: () => instrumented.tools(SERVER).callTool(echoParams)
      }
      for (const call of Object.values(calls)) {
        await sequential(call, 500)
        await closedLoop(call, IN_FLIGHT, WARM_UP_CALLS)
      }
      const latency = await alternate(LATENCY_ROUNDS, {
        off: () => sequential(calls.off, CALLS_PER_LATENCY_ROUND),
        on: () => sequential(calls.on, CALLS_PER_LATENCY_ROUND)
      })
      const throughput = await alternate(THROUGHPUT_ROUNDS, {
        off: () => closedLoop(calls.off, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND),
        on: () => closedLoop(calls.on, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND)
      })
      const offLatency = summarize(latency.off.flat())
      const onLatency = summarize(latency.on.flat())
      const offCpu = median(throughput.off.map((t) => t.cpuMicrosPerCall))
      const onCpu = median(throughput.on.map((t) => t.cpuMicrosPerCall))
      const addedCpu = onCpu - offCpu
      const addedP50 = (onLatency.p50Ms - offLatency.p50Ms) * 1000
      const pass = addedCpu < MAX_ADDED_MICROS && exporter.exported > 0
      return {
        baseline: {
          label: "pool, no tracer or metric reader",
          latency: offLatency,
          cpuMicrosPerCall: round(offCpu, 1)
        },
        subject: {
          label: "pool exporting spans (batch processor) and metrics to the OpenTelemetry SDK",
          latency: onLatency,
          cpuMicrosPerCall: round(onCpu, 1),
          addedCpuMicrosPerCall: round(addedCpu, 1),
          addedMicrosecondsAtP50: round(addedP50, 1),
          spansExported: exporter.exported
        },
        ratioOf: "client CPU per call, on / off",
        ratio: ratio(onCpu, offCpu),
        target: row.target,
        pass,
        checks: [
          check(
            `client CPU per call, ${IN_FLIGHT} in flight`,
            `${offCpu.toFixed(1)} µs`,
            `${onCpu.toFixed(1)} µs`,
            `+${addedCpu.toFixed(1)} µs`,
            `< +${MAX_ADDED_MICROS} µs`,
            pass
          ),
          check(
            "p50 latency, sequential",
            formatMs(offLatency.p50Ms),
            formatMs(onLatency.p50Ms),
            `${addedP50 >= 0 ? "+" : ""}${addedP50.toFixed(0)} µs`
          ),
          check("spans exported", "", String(exporter.exported))
        ],
        notes: [
          `${launch.command === "taskset" ? `both servers pinned to CPU ${launch.args[1]}` : "servers not pinned (no taskset)"}; after ${WARM_UP_CALLS} warm-up calls per side; CPU: median of ${THROUGHPUT_ROUNDS} alternating rounds of ${CALLS_PER_THROUGHPUT_ROUND} calls`
        ]
      }
    } finally {
      await Promise.all(opened.map((manager) => manager.close()))
    }
  }
}
