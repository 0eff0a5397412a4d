/**
 * A circuit breaker: after a run of consecutive failures it fails calls at once for a
 * recovery period, then lets one probe through to decide whether to close again.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import { MCPCircuitOpen } from "./Errors.js"

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
 * The right to make one call, handed out by `admit` and handed back with `record`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Permit {
  /** Whether this call is the single probe of a half-open breaker. */
  readonly probe: boolean
  /** The breaker's generation when the permit was given; outcomes of older generations are ignored. */
  readonly generation: number
}

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
 * A breaker. The `Unsafe` methods are the synchronous state machine, driven with an explicit
 * clock time; the effectful API (`execute`, `state`) reads effect's `Clock`, so `TestClock`
 * controls recovery.
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
  /** The state at time `now`, applying the open → half-open step if it is due. */
  readonly stateUnsafe: (now: number) => State
  /** Failures in the current run (closed state). */
  readonly consecutiveFailures: () => number
  /** Opens, half-opens and closes since the breaker was made. */
  readonly transitionCounts: () => Readonly<Record<State, number>>
  /** When an open breaker will admit a probe (epoch milliseconds), else `undefined`. */
  readonly retryAt: () => number | undefined
  /** Asks to make a call at time `now`: a permit, or the error to fail the call with. */
  readonly admitUnsafe: (now: number) => { readonly permit: Permit } | { readonly rejected: MCPCircuitOpen }
  /** Hands back a permit with the call's outcome. */
  readonly recordUnsafe: (permit: Permit, outcome: Outcome, now: number) => void
  /** Transitions made by the unsafe methods that `onTransition` has not seen yet. */
  readonly drainTransitions: () => ReadonlyArray<Transition>
  /** Whether transitions wait for `flush` (lets a hot path skip it when there are none). */
  readonly hasPendingTransitions: () => boolean
  /** Runs `onTransition` for the pending transitions. */
  readonly flush: Effect.Effect<void>
}

/**
 * Creates a closed breaker.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): CircuitBreaker => {
  const threshold = Math.max(1, Math.floor(options.failureThreshold))
  const recoveryTimeoutMs = Duration.toMillis(options.recoveryTimeout)
  const onTransition = options.onTransition
  let state: State = "closed"
  let failures = 0
  let retryAt = 0
  let probeOut = false
  let generation = 0
  const counts: Record<State, number> = { closed: 0, open: 0, half_open: 0 }
  let pending: Array<Transition> = []
  // Every call admitted while closed gets the same permit (nothing in it is per call).
  let closedAdmission = { permit: { probe: false, generation } }

  const move = (to: State, reason: string, now: number) => {
    const transition: Transition = { name: options.name, from: state, to, reason, at: now }
    state = to
    generation++
    closedAdmission = { permit: { probe: false, generation } }
    counts[to]++
    probeOut = false
    failures = 0
    if (to === "open") retryAt = now + recoveryTimeoutMs
    if (onTransition !== undefined) pending.push(transition)
  }

  const stateUnsafe = (now: number): State => {
    if (state === "open" && now >= retryAt) {
      move("half_open", `recovery timeout of ${recoveryTimeoutMs} ms elapsed`, now)
    }
    return state
  }

  const admitUnsafe: CircuitBreaker["admitUnsafe"] = (now) => {
    const current = stateUnsafe(now)
    if (current === "closed") return closedAdmission
    if (current === "half_open" && !probeOut) {
      probeOut = true
      return { permit: { probe: true, generation } }
    }
    return {
      rejected: new MCPCircuitOpen({
        serverName: options.name,
        retryAfter: new Date(current === "open" ? retryAt : now)
      })
    }
  }

  const recordUnsafe: CircuitBreaker["recordUnsafe"] = (permit, outcome, now) => {
    if (permit.generation !== generation) return
    if (state === "closed") {
      if (outcome === "success") failures = 0
      else if (outcome === "failure" && ++failures >= threshold) {
        move("open", `${threshold} consecutive failure${threshold === 1 ? "" : "s"}`, now)
      }
      return
    }
    if (state === "half_open" && permit.probe) {
      if (outcome === "success") move("closed", "the probe succeeded", now)
      else if (outcome === "failure") move("open", "the probe failed", now)
      else probeOut = false
    }
  }

  const drainTransitions = () => {
    const drained = pending
    pending = []
    return drained
  }

  const flush: Effect.Effect<void> = Effect.suspend(() => {
    if (pending.length === 0 || onTransition === undefined) return Effect.void
    return Effect.forEach(drainTransitions(), onTransition, { discard: true })
  })

  return {
    name: options.name,
    failureThreshold: threshold,
    recoveryTimeoutMs,
    state: Effect.flatMap(
      Clock.clockWith((clock) => Effect.sync(() => stateUnsafe(clock.currentTimeMillisUnsafe()))),
      (current) => Effect.as(flush, current)
    ),
    stateUnsafe,
    consecutiveFailures: () => failures,
    transitionCounts: () => ({ ...counts }),
    retryAt: () => (state === "open" ? retryAt : undefined),
    admitUnsafe,
    recordUnsafe,
    drainTransitions,
    hasPendingTransitions: () => pending.length > 0 && onTransition !== undefined,
    flush
  }
}

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
      const admitted = breaker.admitUnsafe(clock.currentTimeMillisUnsafe())
      if ("rejected" in admitted) return Effect.andThen(breaker.flush, Effect.fail(admitted.rejected))
      const { permit } = admitted
      return Effect.andThen(
        breaker.flush,
        Effect.onExit(self, (exit) =>
          Effect.suspend(() => {
            breaker.recordUnsafe(permit, classify(exit), clock.currentTimeMillisUnsafe())
            return breaker.flush
          })
        )
      )
    })
)
