/**
 * The figures of each pool as the monitoring API serves them (`PoolMetrics`, snake_case JSON)
 * and the summary over all pools. For the metrics exported to OpenTelemetry, see `Telemetry`.
 *
 * @since 0.1.0
 */
import type * as MCPConnectionPool from "./MCPConnectionPool.js"
import type { PoolMetricsSchema, schemas } from "./internal/responses.js"
import * as Judgement from "./pool/Judgement.js"

/**
 * Health of one pool or of all of them.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = Judgement.Status

/**
 * The figures of one pool (`PoolMetricsSchema`).
 *
 * @since 0.1.0
 * @category models
 */
export type PoolMetrics = typeof PoolMetricsSchema.Type

/**
 * The summary served at `/metrics/summary` (`schemas.summary`).
 *
 * @since 0.1.0
 * @category models
 */
export type MetricsSummary = typeof schemas.summary.Type

const round = (value: number): number => Math.round(value * 10_000) / 10_000

/**
 * A pool's status, by the pool's one judgement (see `MCPConnectionPool.Judgement`):
 *
 * - `critical`: its circuit breaker is open, or it has no working connection (it should
 *   keep some open, or its latest attempt to open one failed);
 * - `warning`: it is exhausted (utilization above the alert threshold while borrowers wait,
 *   until a connection frees), more than the error-rate threshold of the calls in the alert
 *   window failed (once the window holds `errorRateMinRequests` calls), a health check failed
 *   within the last `healthCheckInterval`, or the breaker is half-open (probing);
 * - else `healthy`.
 *
 * @since 0.1.0
 * @category getters
 */
export const status = (pool: MCPConnectionPool.MCPConnectionPool, snapshot = pool.snapshot()): Status =>
  snapshot.judgement.status

/**
 * The worst of several statuses (`healthy` when there are none).
 *
 * @since 0.1.0
 * @category getters
 */
export const worst: (statuses: Iterable<Status>) => Status = Judgement.worst

/**
 * The answer of `/status` (`schemas.status`).
 *
 * @since 0.1.0
 * @category models
 */
export type StatusReport = typeof schemas.status.Type

/**
 * The status of every pool and the overall status (the worst of them).
 *
 * @since 0.1.0
 * @category getters
 */
export const statusReport = (pools: ReadonlyArray<MCPConnectionPool.MCPConnectionPool>, now: number): StatusReport => {
  const entries = pools.map((pool) => [pool.serverName, status(pool)] as const)
  return {
    status: worst(entries.map(([, s]) => s)),
    timestamp: new Date(now).toISOString(),
    total_pools: pools.length,
    pools: Object.fromEntries(entries)
  }
}

/**
 * The figures of one pool.
 *
 * @since 0.1.0
 * @category getters
 */
export const poolMetrics = (pool: MCPConnectionPool.MCPConnectionPool): PoolMetrics => {
  const snapshot = pool.snapshot()
  const { counters } = snapshot
  const acquisitions = counters.hits + counters.misses
  return {
    server_name: pool.serverName,
    status: status(pool, snapshot),
    total_connections: snapshot.totalConnections,
    available_connections: snapshot.availableConnections,
    in_use_connections: snapshot.inUseConnections,
    pending_requests: snapshot.pendingRequests,
    circuit_breaker_state: snapshot.circuitBreakerState,
    pool_hits: counters.hits,
    pool_misses: counters.misses,
    hit_rate: acquisitions === 0 ? 0 : round(counters.hits / acquisitions),
    connection_errors: counters.connectionErrors,
    health_check_failures: counters.healthCheckFailures,
    total_requests: counters.requests,
    total_errors: counters.errors,
    utilization: round(snapshot.utilization)
  }
}

/**
 * The summary over all pools.
 *
 * @since 0.1.0
 * @category getters
 */
export const summary = (pools: ReadonlyArray<MCPConnectionPool.MCPConnectionPool>): MetricsSummary => {
  const pool_metrics = pools.map(poolMetrics)
  return {
    pool_metrics,
    global_metrics: {
      total_pools: pools.length,
      total_requests: pool_metrics.reduce((sum, m) => sum + m.total_requests, 0),
      total_errors: pool_metrics.reduce((sum, m) => sum + m.total_errors, 0)
    }
  }
}

/**
 * The answer of `/pools/{server_name}`: the pool's figures, its redacted configuration and
 * its connections (`schemas.pool`).
 *
 * @since 0.1.0
 * @category models
 */
export type PoolDetails = typeof schemas.pool.Type

const iso = (millis: number) => new Date(millis).toISOString()

/**
 * The details of one pool, given its redacted server configuration (from the manager's `config()`).
 *
 * @since 0.1.0
 * @category getters
 */
export const poolDetails = (
  pool: MCPConnectionPool.MCPConnectionPool,
  redactedConfig: Readonly<Record<string, unknown>> | undefined
): PoolDetails => ({
  ...poolMetrics(pool),
  config: redactedConfig === undefined ? {} : { ...redactedConfig },
  connections: pool.snapshot().connections.map((c) => ({
    id: c.id,
    pid: c.pid ?? null,
    session_id: c.sessionId ?? null,
    in_flight: c.inFlight,
    leases: c.leases,
    created_at: iso(c.createdAt),
    last_used_at: iso(c.lastUsedAt),
    alive: c.alive,
    concurrency_limit: c.concurrencyLimit
  }))
})
