/**
 * Helpers of the OpenTelemetry tests: in-memory exporters, and lookups in what they hold.
 */
import type { Attributes } from "@opentelemetry/api"
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  PeriodicExportingMetricReader,
  type DataPoint,
  type ExponentialHistogram,
  type Histogram,
  type MetricData,
  type MetricProducer
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Manager from "@mcp-pool/core/MCPConnectionManager"
import type { PoolConfigInput } from "@mcp-pool/core/PoolConfig"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"

/** A metric reader that exports only when flushed, to memory. */
export const inMemoryMetrics = (metricProducers?: Array<MetricProducer>) => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  const reader = new PeriodicExportingMetricReader({
    exporter,
    exportIntervalMillis: 3_600_000,
    ...(metricProducers === undefined ? {} : { metricProducers })
  })
  /** Flushes and answers the metrics of the latest export. */
  const collect = async (): Promise<ReadonlyArray<MetricData>> => {
    exporter.reset()
    await reader.forceFlush()
    return exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics))
  }
  return { reader, collect }
}

/** A span processor that keeps finished spans in memory. */
export const inMemorySpans = () => {
  const exporter = new InMemorySpanExporter()
  return { processor: new SimpleSpanProcessor(exporter), spans: (): Array<ReadableSpan> => exporter.getFinishedSpans() }
}

const matches = (attributes: Attributes, wanted: Record<string, string>) =>
  Object.entries(wanted).every(([key, value]) => attributes[key] === value)

/** The data points of a metric whose attributes include `wanted`. */
export const points = (
  metrics: ReadonlyArray<MetricData>,
  name: string,
  wanted: Record<string, string> = {}
): Array<DataPoint<number | Histogram | ExponentialHistogram>> =>
  metrics
    .filter((metric) => metric.descriptor.name === name)
    .flatMap((metric): Array<DataPoint<number | Histogram | ExponentialHistogram>> => metric.dataPoints)
    .filter((point) => matches(point.attributes, wanted))

/** The value of the one counter or gauge point matching `wanted`. */
export const valueOf = (metrics: ReadonlyArray<MetricData>, name: string, wanted: Record<string, string> = {}) => {
  const found = points(metrics, name, wanted)
  if (found.length !== 1)
    throw new Error(`expected one point of ${name} ${JSON.stringify(wanted)}, got ${found.length}`)
  const value = found[0]?.value
  if (typeof value !== "number") throw new Error(`${name} is not a counter or gauge`)
  return value
}

/** The sample count of the one histogram point matching `wanted`. */
export const countOf = (metrics: ReadonlyArray<MetricData>, name: string, wanted: Record<string, string> = {}) => {
  const found = points(metrics, name, wanted)
  if (found.length !== 1)
    throw new Error(`expected one point of ${name} ${JSON.stringify(wanted)}, got ${found.length}`)
  const value = found[0]?.value
  if (typeof value !== "object") throw new Error(`${name} is not a histogram`)
  return value.count
}

/** The `_meta` that the fixture's `echo_meta` tool answered with. */
export const metaOf = (result: object): Record<string, unknown> => {
  const structured: unknown = "structuredContent" in result ? result.structuredContent : undefined
  if (typeof structured !== "object" || structured === null || !("meta" in structured)) return {}
  const meta: unknown = structured.meta
  return typeof meta === "object" && meta !== null ? { ...meta } : {}
}

/**
 * Runs `f` on a manager with one pool, `server`, on the fixture server over stdio, built inside
 * the caller's context (registry, tracer); the manager is closed when `f` ends, however it ends.
 */
export const withFixtureManager = <A, E, R>(
  server: string,
  f: (manager: Manager.Service) => Effect.Effect<A, E, R>,
  defaults: PoolConfigInput = { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
) => Manager.make({ servers: { [server]: fixtureStdioConfig() }, defaults }).pipe(Effect.flatMap(f), Effect.scoped)

/** The attributes every CLIENT span of an `echo` tool call on the stdio fixture `server` carries. */
export const echoSpanAttributes = (server: string): Record<string, string> => ({
  "mcp.method.name": "tools/call",
  "gen_ai.tool.name": "echo",
  "mcp_pool.server.name": server,
  "db.client.connection.pool.name": server,
  "network.transport": "pipe"
})
