/**
 * The figures of each pool in the JSON shape the monitoring API serves (snake_case), and
 * the summary over all pools.
 *
 * @since 0.1.0
 */
import type * as MCPConnectionPool from "./MCPConnectionPool.js"

/**
 * Health of one pool or of all of them.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "healthy" | "warning" | "critical"

/**
 * The figures of one pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolMetrics {
  readonly server_name: string
  readonly status: Status
  readonly total_connections: number
  readonly available_connections: number
  readonly in_use_connections: number
  readonly pending_requests: number
  readonly circuit_breaker_state: "closed" | "open" | "half_open"
  readonly pool_hits: number
  readonly pool_misses: number
  readonly hit_rate: number
  readonly connection_errors: number
  readonly health_check_failures: number
  readonly total_requests: number
  readonly total_errors: number
  readonly utilization: number
}

/**
 * The summary served at `/metrics/summary`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetricsSummary {
  readonly pool_metrics: ReadonlyArray<PoolMetrics>
  readonly global_metrics: {
    readonly total_pools: number
    readonly total_requests: number
    readonly total_errors: number
  }
}

const round = (value: number): number => Math.round(value * 10_000) / 10_000

/**
 * A pool's status: `critical` when it has no working connection although it should,
 * `warning` when utilization is above 0.9 or more than 10 % of its calls failed, else
 * `healthy`.
 *
 * @since 0.1.0
 * @category getters
 */
export const status = (pool: MCPConnectionPool.MCPConnectionPool, snapshot = pool.snapshot()): Status => {
  const { counters } = snapshot
  if (snapshot.totalConnections === 0 && (pool.config.minConnections > 0 || counters.connectionErrors > 0)) {
    return "critical"
  }
  const errorRate = counters.requests === 0 ? 0 : counters.errors / counters.requests
  if (snapshot.utilization > 0.9 || errorRate > 0.1) return "warning"
  return "healthy"
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
    circuit_breaker_state: "closed",
    pool_hits: counters.hits,
    pool_misses: counters.misses,
    hit_rate: acquisitions === 0 ? 0 : round(counters.hits / acquisitions),
    connection_errors: counters.connectionErrors,
    health_check_failures: 0,
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
