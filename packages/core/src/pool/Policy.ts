/**
 * The pool's policies over failed calls: what an outcome tells the circuit breaker, which
 * failures may be retried and on what schedule, and the breaker itself with its alert.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import type * as Alerts from "../Alerts.js"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import * as Machine from "../internal/circuitBreaker.js"
import type { MCPCallError } from "../Errors.js"
import type * as Telemetry from "../internal/telemetry.js"
import type { Forwarded } from "./State.js"

/**
 * What an attempt that failed with `error` tells the breaker: only a failure of the connection
 * or a timeout counts against the server; an answer (even a JSON-RPC error) proves it up; the
 * rest (exhaustion, our own close, the caller's abort) says nothing about it.
 */
export const errorOutcome = (error: MCPCallError | Forwarded): CircuitBreaker.Outcome => {
  switch (error._tag) {
    case "MCPConnectionError":
    case "MCPTimeout":
      return "failure"
    case "MCPRequestError":
      return "success"
    default:
      return "ignored"
  }
}

/** What a finished attempt tells the breaker. */
export const breakerOutcome = (exit: Exit.Exit<unknown, MCPCallError | Forwarded>): CircuitBreaker.Outcome => {
  if (exit._tag === "Success") return "success"
  const error = Exit.findErrorOption(exit)
  return error._tag === "None" ? "ignored" : errorOutcome(error.value)
}

/** Whether a failed attempt may be repeated: only a connection failure, and only when the request cannot have run or may run twice. */
export const retryable = (error: MCPCallError | Forwarded, idempotent: boolean): boolean =>
  error._tag === "MCPConnectionError" && (!error.requestSent || idempotent)

/** The schedule of retries: exponential from `retryDelay`, jittered. */
export const retrySchedule = (retryDelayMs: number) => Schedule.exponential(retryDelayMs).pipe(Schedule.jittered)

const transitionWords: Record<CircuitBreaker.State, string> = {
  open: "opened",
  half_open: "half-open",
  closed: "closed"
}

/**
 * The breaker of a pool: every change is counted, logged and, for an opening, raised as a
 * `circuit_breaker_open` alert (critical) that says until when calls fail fast.
 */
export const makeBreaker = (options: {
  readonly serverName: string
  readonly failureThreshold: number
  readonly recoveryTimeoutMs: number
  readonly telemetry: Telemetry.PoolTelemetry
  readonly alerts: Alerts.Alerts | undefined
}): Machine.Breaker => {
  const { serverName, telemetry, alerts } = options
  const breaker: Machine.Breaker = Machine.make({
    name: serverName,
    failureThreshold: options.failureThreshold,
    recoveryTimeout: options.recoveryTimeoutMs,
    onTransition: (t) => {
      telemetry.transition(t.from, t.to)
      const line = `Circuit breaker for "${serverName}" ${transitionWords[t.to]}: ${t.reason}`
      const log =
        t.to === "open" ? Effect.logError(line) : t.to === "half_open" ? Effect.logWarning(line) : Effect.logInfo(line)
      const logged = log.pipe(Effect.annotateLogs({ server: serverName, circuit_breaker: t.to }))
      if (alerts === undefined) return logged
      return Effect.andThen(
        logged,
        alerts.observe(serverName, "circuit_breaker_open", t.to !== "closed", () => {
          telemetry.alert("circuit_breaker_open", "critical")
          const until = new Date(t.at + breaker.recoveryTimeoutMs).toISOString()
          return {
            severity: "critical",
            message: `circuit breaker of "${serverName}" opened: ${t.reason}; calls fail fast until ${until}`
          }
        })
      )
    }
  })
  return breaker
}
