/**
 * Alerts about pools: raised when a pool enters a bad condition (not on every tick), kept in
 * a bounded history, and published to live subscribers.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import * as Result from "effect/Result"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { MCPInvalidQuery } from "./Errors.js"

/**
 * The kinds of alert.
 *
 * - `pool_exhaustion`: utilization above `utilizationThreshold` (warning).
 * - `circuit_breaker_open`: the pool's breaker left the closed state (critical).
 * - `high_error_rate`: more than `errorRateThreshold` of the calls in the last
 *   `errorRateWindow` failed, over at least `errorRateMinRequests` calls (warning).
 * - `health_check_failure`: a health check failed (warning; critical when every connection
 *   checked failed).
 *
 * @since 0.1.0
 * @category models
 */
export type AlertType = "pool_exhaustion" | "circuit_breaker_open" | "high_error_rate" | "health_check_failure"

/**
 * How bad an alert is.
 *
 * @since 0.1.0
 * @category models
 */
export type Severity = "info" | "warning" | "critical"

/**
 * The severities, least severe first.
 *
 * @since 0.1.0
 * @category constants
 */
export const severities: ReadonlyArray<Severity> = ["info", "warning", "critical"]

/**
 * One alert, in the JSON shape of the monitoring API.
 *
 * @since 0.1.0
 * @category models
 */
export interface Alert {
  /** Increases with every alert of this manager. */
  readonly id: number
  readonly type: AlertType
  readonly severity: Severity
  readonly server_name: string
  readonly message: string
  /** ISO 8601, from effect's `Clock`. */
  readonly timestamp: string
}

/**
 * Thresholds and sizes; every field is optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Utilization (in-use / maxConnections) above which a pool is exhausted. Default 0.9. */
  readonly utilizationThreshold?: number | undefined
  /** Share of failed calls above which the error rate is high. Default 0.1. */
  readonly errorRateThreshold?: number | undefined
  /** Calls needed in the window before the error rate is judged. Default 20. */
  readonly errorRateMinRequests?: number | undefined
  /** The sliding window the error rate is measured over. Default 60 seconds. */
  readonly errorRateWindow?: Duration.Input | undefined
  /** After an alert, the same alert for the same pool is not raised again for this long. Default 60 seconds. */
  readonly cooldown?: Duration.Input | undefined
  /** Alerts kept in the history. Default 1000. */
  readonly historySize?: number | undefined
}

/**
 * The resolved thresholds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Thresholds {
  readonly utilizationThreshold: number
  readonly errorRateThreshold: number
  readonly errorRateMinRequests: number
  readonly errorRateWindowMs: number
  readonly cooldownMs: number
  readonly historySize: number
}

/**
 * The default thresholds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultThresholds: Thresholds = {
  utilizationThreshold: 0.9,
  errorRateThreshold: 0.1,
  errorRateMinRequests: 20,
  errorRateWindowMs: 60_000,
  cooldownMs: 60_000,
  historySize: 1000
}

/**
 * A query of the history: only this severity, at most `limit` alerts (default 100), newest first.
 *
 * @since 0.1.0
 * @category models
 */
export interface Query {
  readonly severity?: Severity | undefined
  readonly limit?: number | undefined
}

/**
 * The alerts of one manager.
 *
 * @since 0.1.0
 * @category models
 */
export interface Alerts {
  readonly thresholds: Thresholds
  /**
   * Reports whether a pool is in a condition now. An alert is raised when the condition
   * starts, unless the same alert was raised within the cooldown; `describe` is only called then.
   */
  readonly observe: (
    serverName: string,
    type: AlertType,
    active: boolean,
    describe: () => { readonly severity: Severity; readonly message: string }
  ) => Effect.Effect<void>
  /** Whether a pool is in a condition, as last observed. */
  readonly isActive: (serverName: string, type: AlertType) => boolean
  /** Forgets the conditions of a pool (it was rebuilt or removed). */
  readonly reset: (serverName: string) => void
  /** The history, newest first. */
  readonly history: (query?: Query) => ReadonlyArray<Alert>
  /** Live alerts, from the moment the stream is run. */
  readonly stream: Stream.Stream<Alert>
  /** Calls `listener` with every new alert until the returned function is called. */
  readonly subscribe: (listener: (alert: Alert) => void) => () => void
}

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Duration.toMillis(input)

/**
 * Resolves options over the defaults.
 *
 * @since 0.1.0
 * @category constructors
 */
export const thresholds = (options: Options = {}): Thresholds => ({
  utilizationThreshold: options.utilizationThreshold ?? defaultThresholds.utilizationThreshold,
  errorRateThreshold: options.errorRateThreshold ?? defaultThresholds.errorRateThreshold,
  errorRateMinRequests: options.errorRateMinRequests ?? defaultThresholds.errorRateMinRequests,
  errorRateWindowMs: millis(options.errorRateWindow, defaultThresholds.errorRateWindowMs),
  cooldownMs: millis(options.cooldown, defaultThresholds.cooldownMs),
  historySize: Math.max(1, Math.floor(options.historySize ?? defaultThresholds.historySize))
})

interface Condition {
  active: boolean
  lastRaisedAt: number
}

/** The state of one manager's alerts. */
interface State {
  readonly thresholds: Thresholds
  readonly pubsub: PubSub.PubSub<Alert>
  readonly conditions: Map<string, Condition>
  readonly listeners: Set<(alert: Alert) => void>
  /** Oldest first. A ring would save the copy, but the history is small and read rarely. */
  history: Array<Alert>
  nextId: number
}

const conditionKey = (serverName: string, type: AlertType) => `${type}\u0000${serverName}`

/** Keeps an alert, publishes it, tells the listeners and logs it (a listener that throws is logged). */
const raise = (state: State, alert: Alert): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.history.push(alert)
    const excess = state.history.length - state.thresholds.historySize
    if (excess > 0) state.history = state.history.slice(excess)
    PubSub.publishUnsafe(state.pubsub, alert)
    const failed: Array<unknown> = []
    for (const listener of state.listeners) {
      try {
        listener(alert)
      } catch (error) {
        failed.push(error)
      }
    }
    const line = `Alert ${alert.type}: ${alert.message}`
    const log =
      alert.severity === "critical"
        ? Effect.logError(line)
        : alert.severity === "warning"
          ? Effect.logWarning(line)
          : Effect.logInfo(line)
    return Effect.andThen(
      log.pipe(Effect.annotateLogs({ server: alert.server_name, alert: alert.id })),
      Effect.forEach(failed, (error) => Effect.logError("an alert listener threw", error), { discard: true })
    )
  })

const observe =
  (state: State): Alerts["observe"] =>
  (serverName, type, active, describe) =>
    Clock.clockWith((clock) => {
      const key = conditionKey(serverName, type)
      let condition = state.conditions.get(key)
      if (condition === undefined) {
        if (!active) return Effect.void
        condition = { active: false, lastRaisedAt: Number.NEGATIVE_INFINITY }
        state.conditions.set(key, condition)
      }
      const entering = active && !condition.active
      condition.active = active
      if (!entering) return Effect.void
      const now = clock.currentTimeMillisUnsafe()
      if (now - condition.lastRaisedAt < state.thresholds.cooldownMs) return Effect.void
      condition.lastRaisedAt = now
      const { severity, message } = describe()
      const alert = { type, severity, server_name: serverName, message, timestamp: new Date(now).toISOString() }
      return raise(state, { id: state.nextId++, ...alert })
    })

/** The history, newest first: only `severity`, at most `limit` (default 100). */
const history = (state: State, query: Query): ReadonlyArray<Alert> => {
  const limit = query.limit ?? 100
  const out: Array<Alert> = []
  for (let i = state.history.length - 1; i >= 0 && out.length < limit; i--) {
    const alert = state.history[i]
    if (alert !== undefined && (query.severity === undefined || alert.severity === query.severity)) out.push(alert)
  }
  return out
}

/**
 * Creates the alerts of one manager; the live stream ends when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Alerts, never, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(PubSub.unbounded<Alert>(), PubSub.shutdown), (pubsub): Alerts => {
    const state: State = {
      thresholds: thresholds(options),
      pubsub,
      conditions: new Map(),
      listeners: new Set(),
      history: [],
      nextId: 1
    }
    return {
      thresholds: state.thresholds,
      observe: observe(state),
      isActive: (serverName, type) => state.conditions.get(conditionKey(serverName, type))?.active === true,
      reset: (serverName) => {
        for (const key of state.conditions.keys()) if (key.endsWith(`\u0000${serverName}`)) state.conditions.delete(key)
      },
      history: (query = {}) => history(state, query),
      stream: Stream.fromPubSub(pubsub),
      subscribe: (listener) => {
        state.listeners.add(listener)
        return () => {
          state.listeners.delete(listener)
        }
      }
    }
  })

/**
 * Whether a value is a severity.
 *
 * @since 0.1.0
 * @category guards
 */
export const isSeverity = (u: unknown): u is Severity =>
  typeof u === "string" && (severities as ReadonlyArray<string>).includes(u)

/**
 * Checks a history query from outside (query strings, untyped callers): `severity` must be
 * one of `info`, `warning`, `critical`; `limit` an integer from 1 to 1000. Strings are parsed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validateQuery = (input: {
  readonly severity?: unknown
  readonly limit?: unknown
}): Result.Result<Query, MCPInvalidQuery> => {
  const { severity, limit } = input
  const problems: Array<{ readonly parameter: string; readonly value: unknown; readonly rule: string }> = []
  let parsedSeverity: Severity | undefined
  if (severity !== undefined && severity !== "") {
    if (isSeverity(severity)) parsedSeverity = severity
    else problems.push({ parameter: "severity", value: severity, rule: "must be one of info, warning, critical" })
  }
  let parsedLimit: number | undefined
  if (limit !== undefined && limit !== "") {
    const n = typeof limit === "string" && /^-?\d+$/.test(limit.trim()) ? Number(limit) : limit
    if (typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 1000) parsedLimit = n
    else problems.push({ parameter: "limit", value: limit, rule: "must be an integer from 1 to 1000" })
  }
  const [first] = problems
  if (first === undefined) return Result.succeed({ severity: parsedSeverity, limit: parsedLimit })
  return Result.fail(new MCPInvalidQuery({ ...first, problems }))
}
