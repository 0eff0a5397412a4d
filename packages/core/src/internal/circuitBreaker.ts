/**
 * The circuit breaker's state machine: synchronous functions over a small record, driven with
 * an explicit clock time, and the permits a pool carries from admission to outcome.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import { MCPCircuitOpen } from "../Errors.js"

/** The right to make one call, handed out by `admit` and handed back with `record`. */
export interface Permit {
  /** Whether this call is the single probe of a half-open breaker. */
  readonly probe: boolean
  /** The breaker's generation when the permit was given; outcomes of older generations are ignored. */
  readonly generation: number
}

/** What `admit` answers: a permit, or the error to fail the call with. */
export type Admission = { readonly permit: Permit } | { readonly rejected: MCPCircuitOpen }

/** A breaker with its state machine: what the pool and `execute` drive. */
export interface Breaker extends CircuitBreaker.CircuitBreaker {
  /** Asks to make a call at time `now`: a permit, or the error to fail the call with. */
  readonly admitUnsafe: (now: number) => Admission
  /** Hands back a permit with the call's outcome. */
  readonly recordUnsafe: (permit: Permit, outcome: CircuitBreaker.Outcome, now: number) => void
  /** Transitions made by the unsafe methods that `onTransition` has not seen yet. */
  readonly drainTransitions: () => ReadonlyArray<CircuitBreaker.Transition>
  /** Whether transitions wait for `flush` (lets a hot path skip it when there are none). */
  readonly hasPendingTransitions: () => boolean
  /** Runs `onTransition` for the pending transitions. */
  readonly flush: Effect.Effect<void>
}

interface Machine {
  readonly name: string
  readonly threshold: number
  readonly recoveryTimeoutMs: number
  readonly onTransition: ((transition: CircuitBreaker.Transition) => Effect.Effect<void>) | undefined
  state: CircuitBreaker.State
  failures: number
  retryAt: number
  probeOut: boolean
  generation: number
  readonly counts: Record<CircuitBreaker.State, number>
  pending: Array<CircuitBreaker.Transition>
  /** Every call admitted while closed gets the same permit (nothing in it is per call). */
  closedAdmission: { readonly permit: Permit }
}

const move = (m: Machine, to: CircuitBreaker.State, reason: string, now: number): void => {
  const transition: CircuitBreaker.Transition = { name: m.name, from: m.state, to, reason, at: now }
  m.state = to
  m.generation++
  m.closedAdmission = { permit: { probe: false, generation: m.generation } }
  m.counts[to]++
  m.probeOut = false
  m.failures = 0
  if (to === "open") m.retryAt = now + m.recoveryTimeoutMs
  if (m.onTransition !== undefined) m.pending.push(transition)
}

const stateAt = (m: Machine, now: number): CircuitBreaker.State => {
  if (m.state === "open" && now >= m.retryAt)
    move(m, "half_open", `recovery timeout of ${m.recoveryTimeoutMs} ms elapsed`, now)
  return m.state
}

const admit = (m: Machine, now: number): Admission => {
  const current = stateAt(m, now)
  if (current === "closed") return m.closedAdmission
  if (current === "half_open" && !m.probeOut) {
    m.probeOut = true
    return { permit: { probe: true, generation: m.generation } }
  }
  return {
    rejected: new MCPCircuitOpen({ serverName: m.name, retryAfter: new Date(current === "open" ? m.retryAt : now) })
  }
}

const record = (m: Machine, permit: Permit, outcome: CircuitBreaker.Outcome, now: number): void => {
  if (permit.generation !== m.generation) return
  if (m.state === "closed") {
    if (outcome === "success") m.failures = 0
    else if (outcome === "failure" && ++m.failures >= m.threshold) {
      move(m, "open", `${m.threshold} consecutive failure${m.threshold === 1 ? "" : "s"}`, now)
    }
    return
  }
  if (m.state === "half_open" && permit.probe) {
    if (outcome === "success") move(m, "closed", "the probe succeeded", now)
    else if (outcome === "failure") move(m, "open", "the probe failed", now)
    else m.probeOut = false
  }
}

const drain = (m: Machine): ReadonlyArray<CircuitBreaker.Transition> => {
  const drained = m.pending
  m.pending = []
  return drained
}

const breakers = new WeakMap<CircuitBreaker.CircuitBreaker, Breaker>()

/** Creates a closed breaker. */
export const make = (options: CircuitBreaker.Options): Breaker => {
  const m: Machine = {
    name: options.name,
    threshold: Math.max(1, Math.floor(options.failureThreshold)),
    recoveryTimeoutMs: Duration.toMillis(Duration.fromInputUnsafe(options.recoveryTimeout)),
    onTransition: options.onTransition,
    state: "closed",
    failures: 0,
    retryAt: 0,
    probeOut: false,
    generation: 0,
    counts: { closed: 0, open: 0, half_open: 0 },
    pending: [],
    closedAdmission: { permit: { probe: false, generation: 0 } }
  }
  const flush: Effect.Effect<void> = Effect.suspend(() => {
    const onTransition = m.onTransition
    if (m.pending.length === 0 || onTransition === undefined) return Effect.void
    return Effect.forEach(drain(m), onTransition, { discard: true })
  })
  const breaker: Breaker = {
    name: m.name,
    failureThreshold: m.threshold,
    recoveryTimeoutMs: m.recoveryTimeoutMs,
    state: Effect.flatMap(
      Effect.clockWith((clock) => Effect.sync(() => stateAt(m, clock.currentTimeMillisUnsafe()))),
      (current) => Effect.as(flush, current)
    ),
    stateUnsafe: (now) => stateAt(m, now),
    consecutiveFailures: () => m.failures,
    transitionCounts: () => ({ ...m.counts }),
    retryAt: () => (m.state === "open" ? m.retryAt : undefined),
    admitUnsafe: (now) => admit(m, now),
    recordUnsafe: (permit, outcome, now) => record(m, permit, outcome, now),
    drainTransitions: () => drain(m),
    hasPendingTransitions: () => m.pending.length > 0 && m.onTransition !== undefined,
    flush
  }
  breakers.set(breaker, breaker)
  return breaker
}

/** The state machine of a breaker made by `make`. */
export const machineOf = (breaker: CircuitBreaker.CircuitBreaker): Breaker => {
  const found = breakers.get(breaker)
  if (found === undefined) throw new TypeError(`circuit breaker "${breaker.name}" was not made by CircuitBreaker.make`)
  return found
}
