/**
 * Health checks of a pool on an effect `Schedule`: ping idle connections, replace those that
 * fail or hang, top the pool back up to `minConnections`, and re-evaluate its alerts.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { MCPHealthCheckError } from "./Errors.js"
import type * as MCPConnectionPool from "./MCPConnectionPool.js"

export type { HealthCheckResult } from "./pool/Health.js"

/**
 * Runs one health check of a pool now, as asked for by a person or a probe: pings every idle
 * connection in parallel (each bounded by `connectionTimeout`), replaces those that fail,
 * counts the failures, raises or clears the `health_check_failure` alert, tops the pool up to
 * `minConnections` (unless its breaker is open) and re-evaluates its other alerts. A pool with
 * no idle connection pings a busy one, or opens one when it has none: the answer always finds
 * out, and says why when the pool is not healthy.
 *
 * @since 0.1.0
 * @category health
 */
export const checkNow = (
  pool: MCPConnectionPool.MCPConnectionPool
): Effect.Effect<MCPConnectionPool.HealthCheckResult> => pool.checkHealth({ onDemand: true })

/**
 * Runs a health check like `checkNow`, and fails with `MCPHealthCheckError` (naming the
 * reason) when the pool is not healthy: a readiness gate, for example before an app starts
 * taking traffic.
 *
 * @example
 * ```ts
 * import { MCPConnectionManager } from "@mcp-pool/core/MCPConnectionManager"
 * import * as MCPHealthMonitor from "@mcp-pool/core/MCPHealthMonitor"
 * import { Effect } from "effect"
 *
 * const ready = Effect.gen(function* () {
 *   const manager = yield* MCPConnectionManager
 *   yield* MCPHealthMonitor.ensureHealthy(yield* manager.pool("files"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category health
 */
export const ensureHealthy = (
  pool: MCPConnectionPool.MCPConnectionPool
): Effect.Effect<MCPConnectionPool.HealthCheckResult, MCPHealthCheckError> =>
  Effect.flatMap(checkNow(pool), (result) =>
    result.healthy
      ? Effect.succeed(result)
      : Effect.fail(
          new MCPHealthCheckError({
            serverName: result.server_name,
            reason: result.reason ?? "the pool is not healthy",
            checked: result.checked,
            failed: result.failed
          })
        )
  )

/**
 * Checks a pool every `healthCheckInterval` (the first check one interval after the start),
 * forever. A scheduled check pings idle connections only: connections busy with calls show
 * by their calls whether they work. A check never fails; a defect in one is logged and the
 * schedule goes on.
 *
 * @since 0.1.0
 * @category health
 */
export const run = (pool: MCPConnectionPool.MCPConnectionPool): Effect.Effect<never> => {
  const interval = Math.max(1, Math.round(pool.config.healthCheckInterval * 1000))
  const tick = pool.checkHealth().pipe(
    Effect.asVoid,
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause)
        ? Effect.failCause(cause)
        : Effect.logError(`health check of "${pool.serverName}" failed unexpectedly`, cause)
    )
  )
  return Effect.andThen(Effect.sleep(interval), Effect.repeat(tick, Schedule.spaced(interval))).pipe(
    Effect.andThen(Effect.never),
    Effect.annotateLogs({ server: pool.serverName, component: "health-monitor" })
  )
}
