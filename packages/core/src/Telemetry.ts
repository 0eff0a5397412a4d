/**
 * What the pools export to OpenTelemetry: effect `Metric`s named after the semantic
 * conventions, one CLIENT span per MCP request, and W3C trace context sent in `params._meta`.
 * For the JSON figures of the monitoring API, see `Metrics`.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import type * as Tracer from "effect/Tracer"

/**
 * The names of every metric the pools record. Durations are histograms in seconds; the
 * `mcp_pool.*` counters are cumulative since the pool started.
 *
 * **Gotchas**: an exporter may rewrite the names (Prometheus turns dots into underscores
 * and appends `_total` to counters: `mcp_pool_hits_total`).
 *
 * @since 0.1.0
 * @category constants
 */
export const MetricName = {
  /** Histogram (s): one MCP request through the pool, from the call to its answer, waiting and retries included. */
  operationDuration: "mcp.client.operation.duration",
  /** Histogram (s): the life of one connection, recorded when it closes. */
  sessionDuration: "mcp.client.session.duration",
  /** Gauge: connections open now, by `db.client.connection.state` (`idle` or `used`). */
  connectionCount: "db.client.connection.count",
  /** Gauge: borrowers waiting for a connection now. */
  pendingRequests: "db.client.connection.pending_requests",
  /** Counter: borrowers that found no connection within `acquireTimeout`. */
  timeouts: "db.client.connection.timeouts",
  /** Histogram (s): time to open a connection (spawn or connect, and the MCP handshake). */
  createTime: "db.client.connection.create_time",
  /** Histogram (s): time a pooled request waited for a connection. */
  waitTime: "db.client.connection.wait_time",
  /** Histogram (s): time a pooled request held its connection. */
  useTime: "db.client.connection.use_time",
  /** Gauge: `minConnections`. */
  idleMin: "db.client.connection.idle.min",
  /** Gauge: `maxConnections`. */
  limit: "db.client.connection.limit",
  /**
   * Gauge: the requests a connection may carry at once now (its adaptive limit with
   * `maxConcurrentRequestsPerConnection: "auto"`), the mean over the pool's connections.
   */
  concurrencyLimit: "mcp_pool.connection.concurrency_limit",
  /**
   * Counter: list calls (`tools/list`, `prompts/list`, `resources/list`,
   * `resources/templates/list`) answered through the server's catalog, by
   * `mcp_pool.catalog.result`: `hit` (from the catalog), `fill` (read from the server),
   * `shared` (waited for a fill another call started).
   */
  catalogLookups: "mcp_pool.catalog.lookups",
  /** Counter: acquisitions served by a connection that already existed. */
  hits: "mcp_pool.hits",
  /** Counter: acquisitions that had to open a connection. */
  misses: "mcp_pool.misses",
  /** Counter: calls made through the pool. */
  requests: "mcp_pool.requests",
  /** Counter: calls that ended in an error, after retries and fallback. */
  errors: "mcp_pool.errors",
  /** Counter: connection-level failures (failed connects, dead transports, exited processes). */
  connectionErrors: "mcp_pool.connection.errors",
  /** Counter: connections that failed a health check. */
  healthCheckFailures: "mcp_pool.health_check.failures",
  /** Gauge: the circuit breaker's state, 0 closed, 1 half-open, 2 open. */
  circuitBreakerState: "mcp_pool.circuit_breaker.state",
  /** Counter: circuit breaker transitions, by `mcp_pool.circuit_breaker.from` and `.to`. */
  circuitBreakerTransitions: "mcp_pool.circuit_breaker.transitions",
  /** Counter: alerts raised, by `mcp_pool.alert.type` and `mcp_pool.alert.severity`. */
  alerts: "mcp_pool.alerts"
} as const

/**
 * The attribute names on metrics and spans.
 *
 * @since 0.1.0
 * @category constants
 */
export const Attribute = {
  methodName: "mcp.method.name",
  toolName: "gen_ai.tool.name",
  promptName: "gen_ai.prompt.name",
  resourceUri: "mcp.resource.uri",
  errorType: "error.type",
  /** `pipe` for stdio servers, `tcp` for HTTP ones. */
  networkTransport: "network.transport",
  /** The server name, on every pool metric. */
  poolName: "db.client.connection.pool.name",
  connectionState: "db.client.connection.state",
  serverName: "mcp_pool.server.name",
  connectionId: "mcp_pool.connection.id",
  /** `true` when the request ran on a connection that already existed (a pool hit). */
  connectionReused: "mcp_pool.connection.reused",
  breakerFrom: "mcp_pool.circuit_breaker.from",
  breakerTo: "mcp_pool.circuit_breaker.to",
  alertType: "mcp_pool.alert.type",
  alertSeverity: "mcp_pool.alert.severity",
  /** How the catalog answered a list call: `hit`, `fill` or `shared` (see `MetricName.catalogLookups`). */
  catalogResult: "mcp_pool.catalog.result",
  /** How `@effect/opentelemetry` carries a metric's unit; set to `s` on the duration histograms. */
  unit: "unit"
} as const

/**
 * The name of the child span that covers the wait for a connection.
 *
 * @since 0.1.0
 * @category constants
 */
export const ACQUIRE_SPAN_NAME = "mcp_pool.acquire"

/**
 * The name of the span that covers a connection lent with `withConnection` or `lease`, from
 * the wait for it to its return.
 *
 * @since 0.1.0
 * @category constants
 */
export const LEASE_SPAN_NAME = "mcp_pool.lease"

/**
 * The `error.type` of a `tools/call` whose result has `isError: true`: the call succeeded,
 * the tool did not.
 *
 * @since 0.1.0
 * @category constants
 */
export const TOOL_ERROR = "tool_error"

/**
 * Bucket boundaries (seconds) of `mcp.client.operation.duration` and
 * `mcp.client.session.duration`: the semantic conventions' advice, with finer buckets below
 * 10 ms because pooled calls to local servers are often that fast.
 *
 * @since 0.1.0
 * @category constants
 */
export const operationBoundaries: ReadonlyArray<number> = [
  0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300
]

/**
 * Bucket boundaries (seconds) of the connection-pool histograms (`create_time`,
 * `wait_time`, `use_time`).
 *
 * @since 0.1.0
 * @category constants
 */
export const poolBoundaries: ReadonlyArray<number> = [
  0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60
]

/**
 * Writes the trace context of a span into the `_meta` of an outgoing request.
 *
 * @since 0.1.0
 * @category models
 */
export interface Propagator {
  /** Sets `traceparent` (and `tracestate`, `baggage` when it knows them) on `carrier`. */
  readonly inject: (span: Tracer.AnySpan, carrier: Record<string, string>) => void
}

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/
const ZERO_TRACE = "00000000000000000000000000000000"
const ZERO_SPAN = "0000000000000000"

/**
 * The W3C `traceparent` of a span (`00-<trace id>-<span id>-<flags>`), or `undefined` when
 * its ids are not valid W3C ids.
 *
 * @since 0.1.0
 * @category getters
 */
export const traceparent = (span: Tracer.AnySpan): string | undefined => {
  const { traceId, spanId } = span
  if (!HEX32.test(traceId) || !HEX16.test(spanId) || traceId === ZERO_TRACE || spanId === ZERO_SPAN) {
    return undefined
  }
  return `00-${traceId}-${spanId}-${span.sampled ? "01" : "00"}`
}

/**
 * The default propagator: `traceparent` from effect's span. Effect spans carry no
 * `tracestate` or baggage; `@mcp-pool/opentelemetry` installs a propagator that adds them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const w3cPropagator: Propagator = {
  inject: (span, carrier) => {
    const value = traceparent(span)
    if (value !== undefined) carrier["traceparent"] = value
  }
}

/**
 * The propagator pooled requests use (default {@link w3cPropagator}); read from the caller's
 * context on every request.
 *
 * @since 0.1.0
 * @category references
 */
export const CurrentPropagator: Context.Reference<Propagator> = Context.Reference<Propagator>(
  "@mcp-pool/core/Telemetry/CurrentPropagator",
  { defaultValue: () => w3cPropagator }
)

/**
 * A layer that makes pooled requests use `propagator`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPropagator = (propagator: Propagator): Layer.Layer<never> =>
  Layer.succeed(CurrentPropagator, propagator)
