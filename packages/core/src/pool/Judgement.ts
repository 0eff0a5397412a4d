/**
 * The one judgement of a pool's state: its status, its alert conditions and the verdict of a
 * health check all come from these rules and one set of thresholds.
 */
import type * as Alerts from "../Alerts.js"
import type * as CircuitBreaker from "../CircuitBreaker.js"

/**
 * Health of one pool or of all of them.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "healthy" | "warning" | "critical"

/**
 * What the judgement reads of a pool at one moment.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reading {
  /** Connections with at least one lease. */
  readonly inUse: number
  /** Borrowers waiting in line. */
  readonly waiting: number
  /** Connections open and not known dead. */
  readonly alive: number
  readonly minConnections: number
  readonly maxConnections: number
  /** Whether the latest attempt to open a connection failed. */
  readonly lastConnectFailed: boolean
  readonly breakerState: CircuitBreaker.State
  /** Calls and failed calls in the alert window. */
  readonly window: { readonly requests: number; readonly errors: number }
  /** Clock time (ms) of the last failed health check, if any. */
  readonly lastHealthCheckFailureAt: number | undefined
  readonly healthCheckIntervalMs: number
  /** Whether the pool was judged exhausted when it last looked (the condition holds until a connection frees). */
  readonly exhaustionHeld: boolean
  /** Clock time (ms) of the reading. */
  readonly now: number
}

/**
 * Connections in use divided by `maxConnections`.
 *
 * @since 0.1.0
 * @category getters
 */
export const utilization = (inUse: number, maxConnections: number): number =>
  maxConnections === 0 ? 0 : inUse / maxConnections

/**
 * Whether the pool is exhausted: it enters the condition when its utilization is above
 * `utilizationThreshold` while borrowers wait, and stays in it until the utilization drops to
 * the threshold. A connection freed while borrowers wait goes straight to one of them, so
 * under sustained load the condition lasts as long as the load does instead of ending at
 * every release; a pool of one connection used by one caller at a time never enters it.
 *
 * @since 0.1.0
 * @category getters
 */
export const exhausted = (
  reading: Pick<Reading, "inUse" | "waiting" | "maxConnections" | "exhaustionHeld">,
  thresholds: Alerts.Thresholds
): boolean => {
  const above = utilization(reading.inUse, reading.maxConnections) > thresholds.utilizationThreshold
  return above && (reading.exhaustionHeld || reading.waiting > 0)
}

/**
 * The share of failed calls in the alert window; judged only once the window holds at least
 * `errorRateMinRequests` calls.
 *
 * @since 0.1.0
 * @category getters
 */
export const errorRateHigh = (
  window: { readonly requests: number; readonly errors: number },
  thresholds: Alerts.Thresholds
): boolean =>
  window.requests >= thresholds.errorRateMinRequests && window.errors / window.requests > thresholds.errorRateThreshold

/**
 * Whether the pool has no working connection although it needs one: none open, and it should
 * keep some open or its latest attempt to open one failed.
 *
 * @since 0.1.0
 * @category getters
 */
export const noWorkingConnection = (
  reading: Pick<Reading, "alive" | "minConnections" | "lastConnectFailed">
): boolean => reading.alive === 0 && (reading.minConnections > 0 || reading.lastConnectFailed)

/**
 * Whether a health check failed within the last `healthCheckInterval`.
 *
 * @since 0.1.0
 * @category getters
 */
export const recentHealthFailure = (
  reading: Pick<Reading, "lastHealthCheckFailureAt" | "healthCheckIntervalMs" | "now">
): boolean =>
  reading.lastHealthCheckFailureAt !== undefined &&
  reading.now - reading.lastHealthCheckFailureAt < reading.healthCheckIntervalMs

/**
 * A pool's status and why:
 *
 * - `critical`: its circuit breaker is open, or it has no working connection;
 * - `warning`: it is exhausted, its error rate is high, a health check failed within the last
 *   interval, or its breaker is half-open (probing);
 * - else `healthy`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Judgement {
  readonly status: Status
  /** Why the status is not `healthy`, in words; empty when it is. */
  readonly reasons: ReadonlyArray<string>
}

/**
 * Judges a pool from one reading.
 *
 * @since 0.1.0
 * @category getters
 */
export const judge = (reading: Reading, thresholds: Alerts.Thresholds): Judgement => {
  const critical: Array<string> = []
  if (reading.breakerState === "open") critical.push("its circuit breaker is open")
  if (noWorkingConnection(reading)) critical.push("it has no working connection")
  if (critical.length > 0) return { status: "critical", reasons: critical }
  const warning: Array<string> = []
  if (exhausted(reading, thresholds)) {
    warning.push(
      `${Math.round(utilization(reading.inUse, reading.maxConnections) * 100)} % of its connections are in use`
    )
  }
  if (errorRateHigh(reading.window, thresholds)) {
    warning.push(`${reading.window.errors} of its last ${reading.window.requests} calls failed`)
  }
  if (recentHealthFailure(reading)) warning.push("a health check failed within the last interval")
  if (reading.breakerState === "half_open") warning.push("its circuit breaker is half-open")
  return warning.length > 0 ? { status: "warning", reasons: warning } : { status: "healthy", reasons: [] }
}

/**
 * The worst of several statuses (`healthy` when there are none).
 *
 * @since 0.1.0
 * @category getters
 */
export const worst = (statuses: Iterable<Status>): Status => {
  let result: Status = "healthy"
  for (const s of statuses) {
    if (s === "critical") return s
    if (s === "warning") result = s
  }
  return result
}
