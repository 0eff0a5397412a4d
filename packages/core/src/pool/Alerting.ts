/**
 * What a pool tells `Alerts`: the conditions of `Judgement` (exhaustion, error rate, failed
 * health checks, an open breaker), each told only when it changes.
 */
import * as Effect from "effect/Effect"
import * as Judgement from "./Judgement.js"
import { inUse, type PoolState } from "./State.js"

/**
 * Judges exhaustion now and tells `Alerts` when it changed. `joining` is 1 when a borrower about
 * to wait in line asks: it is not in the line yet, and counts.
 */
export const observeExhaustion = (state: PoolState, joining: 0 | 1): Effect.Effect<void> =>
  Effect.suspend(() => exhaustionChange(state, joining) ?? Effect.void)

/** `observeExhaustion`, judged now: the alert to tell, or `undefined` when nothing changed. */
export const exhaustionChange = (state: PoolState, joining: 0 | 1): Effect.Effect<void> | undefined => {
  const used = inUse(state)
  const waiting = state.line.size + joining
  const max = state.config.maxConnections
  const active = Judgement.exhausted(
    { inUse: used, waiting, maxConnections: max, exhaustionHeld: state.exhaustionActive },
    state.thresholds
  )
  if (active === state.exhaustionActive) return undefined
  state.exhaustionActive = active
  const alerts = state.alerts
  if (alerts === undefined) return undefined
  return alerts.observe(state.serverName, "pool_exhaustion", active, () => {
    state.telemetry.alert("pool_exhaustion", "warning")
    const percent = Math.round(Judgement.utilization(used, max) * 100)
    return {
      severity: "warning",
      message: `pool of "${state.serverName}" is ${percent} % utilized (${used} of ${max} connections in use, ${waiting} waiting)`
    }
  })
}

/** Judges the error rate of the alert window ending now and tells `Alerts` when it changed. */
export const observeErrorRate = (state: PoolState): Effect.Effect<void> =>
  Effect.suspend(() => errorRateChange(state) ?? Effect.void)

/** `observeErrorRate`, judged now: the alert to tell, or `undefined` when nothing changed. */
export const errorRateChange = (state: PoolState): Effect.Effect<void> | undefined => {
  const totals = state.window.totals(state.clock.currentTimeMillisUnsafe())
  const active = Judgement.errorRateHigh(totals, state.thresholds)
  if (active === state.errorRateActive) return undefined
  state.errorRateActive = active
  const alerts = state.alerts
  if (alerts === undefined) return undefined
  return alerts.observe(state.serverName, "high_error_rate", active, () => {
    state.telemetry.alert("high_error_rate", "warning")
    const percent = Math.round((totals.errors / totals.requests) * 1000) / 10
    const seconds = Math.round(state.thresholds.errorRateWindowMs / 1000)
    return {
      severity: "warning",
      message: `${percent} % of the calls to "${state.serverName}" failed (${totals.errors} of ${totals.requests} in the last ${seconds} s)`
    }
  })
}

/** Tells `Alerts` how a health check went: failing while any connection failed it. */
export const observeHealthCheck = (state: PoolState, checked: number, failed: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    const alerts = state.alerts
    if (alerts === undefined) return Effect.void
    return alerts.observe(state.serverName, "health_check_failure", failed > 0, () => {
      const severity = failed >= checked ? "critical" : "warning"
      state.telemetry.alert("health_check_failure", severity)
      const what = checked === 0 ? "the probe" : `${failed} of ${checked} connections`
      return { severity, message: `${what} to "${state.serverName}" failed a health check` }
    })
  })

/** Re-judges every condition (the health monitor does, so that a condition that ended is cleared). */
export const observeAll = (state: PoolState): Effect.Effect<void> =>
  Effect.andThen(state.breaker.state, Effect.andThen(observeExhaustion(state, 0), observeErrorRate(state)))
