/**
 * Health checks of a pool on an effect `Schedule`: ping idle connections, replace those that
 * fail or hang, top the pool back up to `minConnections`, and re-evaluate its alerts.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as MCPConnectionPool from "./MCPConnectionPool.js"

/**
 * The answer of one health check (the body of `POST /pools/{server_name}/health-check`).
 *
 * @since 0.1.0
 * @category models
 */
export interface HealthCheckResult {
  readonly server_name: string
  /** No connection failed, and the pool has a working connection (or needs none). */
  readonly healthy: boolean
  /** Idle connections pinged. */
  readonly checked: number
  /** Connections that failed or did not answer within `connectionTimeout`, now replaced. */
  readonly failed: number
  readonly duration_ms: number
}

/**
 * Runs one health check of a pool now: pings every idle connection in parallel (each bounded
 * by `connectionTimeout`), invalidates those that fail, counts the failures, raises or clears
 * the `health_check_failure` alert, tops the pool up to `minConnections` (unless its breaker
 * is open) and re-evaluates its other alerts.
 *
 * Connections busy with calls are not pinged: the calls themselves tell whether they work.
 * Connections idle past `maxIdleTime` beyond the minimum are retired by the pool itself.
 *
 * @since 0.1.0
 * @category health
 */
export const checkNow = (pool: MCPConnectionPool.MCPConnectionPool): Effect.Effect<HealthCheckResult> =>
  Clock.clockWith((clock) =>
    Effect.gen(function* () {
      const started = clock.currentTimeMillisUnsafe()
      const idle = pool.idleConnections()
      const results = yield* Effect.forEach(idle, pool.check, { concurrency: "unbounded" })
      const failed = results.filter((ok) => !ok).length
      yield* pool.recordHealthCheck(idle.length, failed)
      yield* pool.topUp
      yield* pool.evaluateAlerts
      const snapshot = pool.snapshot()
      const working = snapshot.totalConnections > 0 || (pool.config.minConnections === 0 && !snapshot.lastConnectFailed)
      return {
        server_name: pool.serverName,
        healthy: failed === 0 && working && snapshot.circuitBreakerState !== "open",
        checked: idle.length,
        failed,
        duration_ms: clock.currentTimeMillisUnsafe() - started
      }
    })
  )

/**
 * Checks a pool every `healthCheckInterval` (the first check one interval after the start),
 * forever. A check never fails; a defect in one is logged and the schedule goes on.
 *
 * @since 0.1.0
 * @category health
 */
export const run = (pool: MCPConnectionPool.MCPConnectionPool): Effect.Effect<never> => {
  const interval = Math.max(1, Math.round(pool.config.healthCheckInterval * 1000))
  const tick = checkNow(pool).pipe(
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
