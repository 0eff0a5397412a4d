/**
 * A circuit breaker: after a run of consecutive failures it fails calls at once for a
 * recovery period, then lets one probe through to decide whether to close again.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import type { MCPCircuitOpen } from "./Errors.js"
import * as internal from "./internal/circuitBreaker.js"

/**
 * The state of a breaker, spelled as the monitoring API shows it.
 *
 * @since 0.1.0
 * @category models
 */
export type State = "closed" | "open" | "half_open"

/**
 * One change of state, with the reason and the clock time (epoch milliseconds) it happened at.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly name: string
  readonly from: State
  readonly to: State
  readonly reason: string
  readonly at: number
}

/**
 * What a finished call means to the breaker.
 *
 * - `success`: the protected resource answered; closes a half-open breaker and ends a run of failures.
 * - `failure`: counts towards the threshold; re-opens a half-open breaker.
 * - `ignored`: neither (the call was interrupted, or failed for a reason that says nothing
 *   about the resource); frees the probe slot of a half-open breaker.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = "success" | "failure" | "ignored"

/**
 * Options of `make`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Named in errors and transitions (the pool uses the server name). */
  readonly name: string
  /** Consecutive failures that open the breaker (at least 1). */
  readonly failureThreshold: number
  /** How long the breaker stays open before it admits a probe. */
  readonly recoveryTimeout: Duration.Input
  /** Runs on every change of state, in the fiber that caused it (to log, count or alert). */
  readonly onTransition?: ((transition: Transition) => Effect.Effect<void>) | undefined
}

/**
 * A breaker, as its owner reads it. Time comes from effect's `Clock` (`state`), so `TestClock`
 * controls recovery; `stateUnsafe` reads it at a clock time of the caller's.
 *
 * @since 0.1.0
 * @category models
 */
export interface CircuitBreaker {
  readonly name: string
  readonly failureThreshold: number
  readonly recoveryTimeoutMs: number
  /** The state at the clock's current time (an open breaker past its timeout reads half-open). */
  readonly state: Effect.Effect<State>
  /** The state at time `now` (epoch milliseconds), applying the open → half-open step if it is due. */
  readonly stateUnsafe: (now: number) => State
  /** Failures in the current run (closed state). */
  readonly consecutiveFailures: () => number
  /** Opens, half-opens and closes since the breaker was made. */
  readonly transitionCounts: () => Readonly<Record<State, number>>
  /** When an open breaker will admit a probe (epoch milliseconds), else `undefined`. */
  readonly retryAt: () => number | undefined
}

/**
 * Creates a closed breaker; run effects under it with `execute`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): CircuitBreaker => internal.make(options)

/**
 * How `execute` reads a finished call. The default counts every failure of the effect and
 * ignores interruption.
 *
 * @since 0.1.0
 * @category models
 */
export type Classify<A, E> = (exit: Exit.Exit<A, E>) => Outcome

const defaultClassify = <A, E>(exit: Exit.Exit<A, E>): Outcome => {
  if (Exit.isSuccess(exit)) return "success"
  return Exit.hasInterrupts(exit) && !Exit.hasFails(exit) ? "ignored" : "failure"
}

/**
 * Runs an effect under the breaker: fails at once with `MCPCircuitOpen` when the breaker is
 * open (or a half-open probe is already out), else runs it and records its outcome.
 *
 * When to use: around any call to a resource that can go down, with `classify` deciding
 * which failures say the resource is unhealthy.
 *
 * @example
 * ```ts
 * import * as CircuitBreaker from "@mcp-pool/core/CircuitBreaker"
 * import * as Effect from "effect/Effect"
 *
 * const breaker = CircuitBreaker.make({ name: "search", failureThreshold: 5, recoveryTimeout: "60 seconds" })
 * const guarded = Effect.tryPromise(() => fetch("http://127.0.0.1:8080/health")).pipe(CircuitBreaker.execute(breaker))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const execute: {
  <A, E>(
    breaker: CircuitBreaker,
    classify?: Classify<A, E>
  ): <R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | MCPCircuitOpen, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    breaker: CircuitBreaker,
    classify?: Classify<A, E>
  ): Effect.Effect<A, E | MCPCircuitOpen, R>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    breaker: CircuitBreaker,
    classify: Classify<A, E> = defaultClassify
  ): Effect.Effect<A, E | MCPCircuitOpen, R> =>
    Clock.clockWith((clock): Effect.Effect<A, E | MCPCircuitOpen, R> => {
      const machine = internal.machineOf(breaker)
      const admitted = machine.admitUnsafe(clock.currentTimeMillisUnsafe())
      if ("rejected" in admitted) return Effect.andThen(machine.flush, Effect.fail(admitted.rejected))
      const { permit } = admitted
      return Effect.andThen(
        machine.flush,
        Effect.onExit(self, (exit) =>
          Effect.suspend(() => {
            machine.recordUnsafe(permit, classify(exit), clock.currentTimeMillisUnsafe())
            return machine.flush
          })
        )
      )
    })
)
