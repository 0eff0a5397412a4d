/**
 * The path of one request through a pool: admission under the breaker, a connection lent for
 * the SDK call, safe retries, the direct fallback, forwarding from a draining pool, and its end.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { MCPCallError, MCPCircuitOpen, MCPPoolExhausted } from "../Errors.js"
import * as Telemetry from "../internal/telemetry.js"
import { borrow, closed, release } from "./Admission.js"
import { errorRateChange, exhaustionChange } from "./Alerting.js"
import { keepMinimum } from "./Members.js"
import { breakerOutcome, errorOutcome, retryable, retrySchedule } from "./Policy.js"
import { aborted, direct, PoolCall, send } from "./Send.js"
import { Forwarded, type PoolState, type RequestInfo, type Run } from "./State.js"

/**
 * Declares that no interruption can reach the fibers of a context: a request they make goes to
 * the SDK without an `AbortSignal`, which saves the SDK a listener per call. The Promise API
 * sets it, since nothing can interrupt the fiber behind a Promise it returned.
 *
 * **Gotchas**: set it only where that holds. An interrupted fiber that set it stops waiting
 * for its answer, but the request runs on in the server until it answers or times out.
 *
 * @since 0.1.0
 * @category references
 */
export const Uninterruptible: Context.Reference<boolean> = Context.Reference<boolean>(
  "@mcp-pool/core/MCPConnectionPool/Uninterruptible",
  { defaultValue: () => false }
)

const isForwarded = (error: unknown): error is Forwarded => error instanceof Forwarded

/**
 * One attempt under the breaker, decided now: refused at once while it is open, without
 * touching a connection; else its permit goes on the call until `settleAttempt`.
 */
const attemptNow = <A>(
  state: PoolState,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall
): Effect.Effect<A, MCPCallError | Forwarded> => {
  const rejected = admit(state, call)
  if (rejected !== undefined) return refused(state, rejected)
  return borrow(state, call, (member) => send(state, member.connection, info, run, call, true), call)
}

/** Asks the breaker for an attempt, now: its permit goes on the call, or its refusal is answered (counted). */
export const admit = (state: PoolState, call: PoolCall): MCPCircuitOpen | undefined => {
  const admitted = state.breaker.admitUnsafe(state.clock.currentTimeMillisUnsafe())
  if ("rejected" in admitted) {
    state.counters.rejected++
    return admitted.rejected
  }
  call.permit = admitted.permit
  return undefined
}

/** An attempt the breaker refused: its transitions told, then the refusal. */
export const refused = (state: PoolState, rejected: MCPCircuitOpen): Effect.Effect<never, MCPCircuitOpen> =>
  Effect.andThen(state.breaker.flush, Effect.fail(rejected))

/**
 * Tells the breaker how the call's attempt ended, once: when the retry schedule sees its
 * failure, before the fallback replaces it, or when the request ends, whichever comes first.
 */
const settleAttempt = (state: PoolState, call: PoolCall, outcome: "success" | "failure" | "ignored"): void => {
  const permit = call.permit
  if (permit === undefined) return
  call.permit = undefined
  // Only a failure or a probe can move the breaker, and only a move reads the time.
  const now = outcome === "success" && !permit.probe ? 0 : state.clock.currentTimeMillisUnsafe()
  state.breaker.recordUnsafe(permit, outcome, now)
}

/**
 * Retries after the first failure `first`, on the pool's schedule. The retry machinery is
 * built only once an attempt has failed: a call that succeeds at once pays for one `catch`.
 */
const retryAfter = <A>(
  state: PoolState,
  first: MCPCallError,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall
): Effect.Effect<A, MCPCallError | Forwarded> => {
  let replayed = false
  const again = Effect.suspend(() => {
    if (replayed) {
      state.counters.retries++
      Telemetry.attemptAgain(call)
      return attemptNow(state, info, run, call)
    }
    replayed = true
    return Effect.fail(first)
  })
  return Effect.retry(again, {
    schedule: retrySchedule(state.limits.retryDelayMs),
    times: state.config.retryAttempts,
    while: (error: MCPCallError | Forwarded): boolean => {
      settleAttempt(state, call, errorOutcome(error))
      return retryable(error, info.idempotent)
    }
  })
}

/** The request goes to the pool that replaced this one, which counts and times it. */
const forward = <A>(state: PoolState, info: RequestInfo, run: Run<A>, call: PoolCall) => {
  call.forwarded = true
  settleAttempt(state, call, "ignored")
  const successor = state.successor
  return successor === undefined ? Effect.fail(closed(state, info.method)) : successor.request(info, run)
}

/** After a failed attempt: forwarded, retried when safe, or the failure. */
const afterFailure =
  <A>(state: PoolState, info: RequestInfo, run: Run<A>, call: PoolCall) =>
  (error: MCPCallError | Forwarded): Effect.Effect<A, MCPCallError | Forwarded> => {
    if (isForwarded(error)) return forward(state, info, run, call)
    if (state.config.retryAttempts > 0 && retryable(error, info.idempotent)) {
      // A retry that finds the pool draining goes to its successor too.
      return Effect.catchIf(retryAfter(state, error, info, run, call), isForwarded, () =>
        forward(state, info, run, call)
      )
    }
    return Effect.fail(error)
  }

/** Counts a finished call in the error window; answers whether it tells about the server. */
const count = (state: PoolState, exit: Exit.Exit<unknown, MCPCallError | Forwarded>, now: number): boolean => {
  if (exit._tag === "Success") {
    state.window.record(now, false)
    return true
  }
  const error = Exit.findErrorOption(exit)
  // Interrupted (or a defect): nothing to say about the server.
  if (error._tag === "None") return false
  const tag = error.value._tag
  if (tag === "MCPManagerClosed" || tag === "MCPAborted" || tag === "Forwarded") {
    state.counters.abandoned++
    return false
  }
  state.counters.errors++
  state.lastFailureAt = now
  state.window.record(now, true)
  return true
}

/** The end of a request: its lease back if it still holds one, the breaker told, counted and judged. */
export const finish = (
  state: PoolState,
  call: PoolCall,
  exit: Exit.Exit<unknown, MCPCallError | Forwarded>
): Effect.Effect<void> => {
  release(state, call)
  settleAttempt(state, call, breakerOutcome(exit))
  if (call.forwarded) return Effect.void
  Telemetry.end(call, state.telemetry, exit)
  const now = state.clock.currentTimeMillisUnsafe()
  const counted = count(state, exit, now)
  // Below its minimum (the breaker kept it from re-opening): a call that ended tops it up.
  if (state.members.length + state.opening < state.config.minConnections) keepMinimum(state)
  const flush = state.breaker.hasPendingTransitions() ? state.breaker.flush : undefined
  if (!counted || state.phase !== "open") return flush ?? Effect.void
  // Judged now; an alert is told only when its condition changed. The rate can cross the
  // threshold on a success too (more calls reach the minimum), so it is judged while the
  // window holds a failure.
  const judgeRate = state.errorRateActive || now - state.lastFailureAt < state.thresholds.errorRateWindowMs
  const rate = judgeRate ? errorRateChange(state) : undefined
  const exhaustion = state.exhaustionActive ? exhaustionChange(state, 0) : undefined
  return andThen(andThen(flush, rate), exhaustion) ?? Effect.void
}

/** `first` then `second`, either of which may be absent. */
const andThen = (
  first: Effect.Effect<void> | undefined,
  second: Effect.Effect<void> | undefined
): Effect.Effect<void> | undefined =>
  first === undefined ? second : second === undefined ? first : Effect.andThen(first, second)

const isUnservable = (error: MCPCallError | Forwarded): error is MCPPoolExhausted | MCPCircuitOpen =>
  error._tag === "MCPPoolExhausted" || error._tag === "MCPCircuitOpen"

const requestWith = <A>(
  state: PoolState,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall
): Effect.Effect<A, MCPCallError> => {
  state.counters.requests++
  // Lazy: the `onExit` of `following` is in place before a connection is lent, so no
  // interruption can strand a lease.
  return following(
    state,
    info,
    run,
    call,
    Effect.suspend(() => attemptNow(state, info, run, call))
  )
}

/**
 * A request from its first attempt on: `first` (the attempt, or how it ended), then
 * forwarding, retries and the fallback, and the request's end (`finish`) whatever happens.
 * The request must have been counted.
 */
export const following = <A>(
  state: PoolState,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall,
  first: Effect.Effect<A, MCPCallError | Forwarded>
): Effect.Effect<A, MCPCallError> => {
  const retried = Effect.catch(first, afterFailure(state, info, run, call))
  const withFallback =
    state.config.fallback === "direct"
      ? Effect.catchIf(retried, isUnservable, (error) => {
          settleAttempt(state, call, errorOutcome(error))
          return direct(state, info, run, call)
        })
      : retried
  // A Forwarded failure never gets here: `afterFailure` forwards it.
  return Effect.onExit(withFallback, (exit) => finish(state, call, exit)) as Effect.Effect<A, MCPCallError>
}

/** Ends the call with `MCPAborted` as soon as the caller's signal aborts. */
const abortable = <A>(
  state: PoolState,
  info: RequestInfo,
  signal: AbortSignal,
  effect: Effect.Effect<A, MCPCallError>
) =>
  Effect.raceFirst(
    effect,
    Effect.callback<never, MCPCallError>((resume) => {
      const onAbort = () => {
        state.counters.abandoned++
        resume(Effect.fail(aborted(state, info)))
      }
      signal.addEventListener("abort", onAbort, { once: true })
      return Effect.sync(() => signal.removeEventListener("abort", onAbort))
    })
  )

/**
 * Runs one MCP request through the pool: acquire timeout, request timeout, safe retries on the
 * pool's schedule, counting, fallback; forwarded to its successor when the pool drains.
 */
export const request = <A>(state: PoolState, info: RequestInfo, run: Run<A>): Effect.Effect<A, MCPCallError> =>
  Effect.withFiber((fiber) => {
    if (state.phase !== "open" && state.successor !== undefined) return state.successor.request(info, run)
    const signal = info.signal
    if (signal?.aborted === true) return Effect.fail(aborted(state, info))
    const call = new PoolCall(info.method, info.target)
    // A caller's signal can end the call at any point, so it needs the interruptible path.
    call.uninterruptible = signal === undefined && fiber.getRef(Uninterruptible)
    // Untraced, the request is set up in this step; traced, once the span is open (its
    // acquire span needs the request's span as parent).
    const body = Telemetry.begin(fiber, call)
      ? Telemetry.withSpan(
          call,
          state.telemetry,
          Effect.suspend(() => requestWith(state, info, run, call))
        )
      : requestWith(state, info, run, call)
    return signal === undefined ? body : abortable(state, info, signal, body)
  })
