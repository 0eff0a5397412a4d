/**
 * The path of one request through a pool: admission under the breaker, the SDK call on a lent
 * connection, safe retries, the direct fallback, forwarding from a draining pool, and its end.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Connection from "../Connection.js"
import { MCPAborted, type MCPCallError, type MCPCircuitOpen, type MCPPoolExhausted } from "../Errors.js"
import { classify, describeCause } from "../internal/classify.js"
import * as Telemetry from "../internal/telemetry.js"
import { borrow, closed, release } from "./Admission.js"
import { observeErrorRate, observeExhaustion } from "./Alerting.js"
import { breakerOutcome, errorOutcome, retryable, retrySchedule } from "./Policy.js"
import {
  Forwarded,
  type Member,
  type PoolState,
  type RequestInfo,
  type Run,
  type SdkRequestOptions,
  type Ticket
} from "./State.js"

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

/** The bookkeeping of one request: its telemetry, and the lease of its current attempt. */
class PoolCall extends Telemetry.Call implements Ticket {
  member: Member | undefined = undefined
  /** Handed to the pool that replaced this one: counted and timed there, not here. */
  forwarded = false
}

const isForwarded = (error: unknown): error is Forwarded => error instanceof Forwarded

/** The request functions of one pool, built once. */
export interface RequestPath {
  readonly request: <A>(info: RequestInfo, run: Run<A>) => Effect.Effect<A, MCPCallError>
}

/** Builds the request path of a pool. */
export const make = (state: PoolState): RequestPath => {
  const { counters, telemetry, breaker, clock, limits } = state
  const scrub = state.scrub
  const activeSpanForSdk = state.server.transport !== "stdio"
  const schedule = retrySchedule(limits.retryDelayMs)

  // Without a signal the options are one shared object, which the SDK only reads.
  const timeoutOnly: SdkRequestOptions = { timeout: limits.requestTimeoutMs }
  const sdkOptions = (signal: AbortSignal | undefined): SdkRequestOptions =>
    signal === undefined ? timeoutOnly : { timeout: limits.requestTimeoutMs, signal }

  const aborted = (info: RequestInfo): MCPAborted => {
    const reason: unknown = info.signal?.reason
    return new MCPAborted({
      serverName: state.serverName,
      method: info.method,
      reason: reason === undefined ? "aborted" : scrub(describeCause(reason))
    })
  }

  /**
   * The typed error of a request the SDK rejected, counted: our own close and the caller's
   * abort first (never the server's fault), then what the SDK said. A connection it proves dead
   * is marked so, and counted once (a death already reported by the transport is not).
   */
  const failure = (connection: Connection.Connection, info: RequestInfo, cause: unknown): MCPCallError => {
    if (state.phase === "closed") return closed(state, info.method)
    if (info.signal?.aborted === true) return aborted(info)
    const classified = classify(cause, {
      serverName: state.serverName,
      method: info.method,
      transport: state.server.transport,
      scrub
    })
    switch (classified._tag) {
      case "Request":
        return classified.error
      case "Timeout":
        counters.timeouts++
        return classified.error
      case "Connection":
        if (!classified.dead || Connection.isAlive(connection)) counters.connectionErrors++
        if (classified.dead) Connection.markDead(connection, classified.error.reason)
        return classified.error
    }
  }

  /**
   * Sends one request on a connection. Must be called when the request runs (it counts the
   * request in flight at once). `pooled`: the connection is the call's lease, given back when
   * the request ends (a direct connection is not). A request from a fiber nobody can interrupt
   * (see {@link Uninterruptible}) goes without an AbortSignal.
   */
  const runOn = <A>(
    connection: Connection.Connection,
    info: RequestInfo,
    run: Run<A>,
    call: PoolCall,
    pooled: boolean
  ): Effect.Effect<A, MCPCallError> => {
    connection.inFlight++
    Telemetry.leased(call, telemetry, connection.id)
    if (call.leasedAt - connection.requestMapsRenewedAt > Connection.REQUEST_MAPS_RENEWAL_MS) {
      Connection.renewRequestMaps(connection, call.leasedAt)
    }
    // The bookkeeping of the request's end runs where it ends (the SDK's answer, or the
    // interruption), not in an onExit around it: one step less on every call.
    let done = false
    const settle = (): void => {
      done = true
      connection.inFlight--
      Telemetry.released(call, telemetry)
      // The time just read for the release, as epoch milliseconds (no second clock read).
      connection.lastUsedAt = performance.timeOrigin + call.releasedAt
      if (pooled) release(state, call)
    }
    const start = (resume: (effect: Effect.Effect<A, MCPCallError>) => void, signal: AbortSignal | undefined) => {
      let sent: Promise<A>
      try {
        sent = run(connection.client, sdkOptions(signal), call.meta)
      } catch (cause) {
        const error = failure(connection, info, cause)
        settle()
        resume(Effect.fail(error))
        return
      }
      sent.then(
        (value) => {
          if (done) return
          // A connection that serves a call ends a streak of failures to open one.
          state.streak = 0
          settle()
          resume(Effect.succeed(value))
        },
        (cause: unknown) => {
          if (done) return
          const error = failure(connection, info, cause)
          settle()
          resume(Effect.fail(error))
        }
      )
    }
    const send: Effect.Effect<A, MCPCallError> = call.uninterruptible
      ? // Nothing can interrupt the caller: no AbortSignal (Effect.callback makes one only
        // for a function of two parameters).
        Effect.callback((resume) => start(resume, undefined))
      : Effect.callback((resume, signal) => {
          start(resume, signal)
          // Interrupted: the signal aborts the SDK request (which sends notifications/cancelled).
          return Effect.sync(() => {
            if (!done) settle()
          })
        })
    // Only HTTP has transport instrumentation that could use the span as its parent.
    return activeSpanForSdk ? Telemetry.withinSpan(call, send) : send
  }

  /** One call on a one-off connection (`fallback: "direct"`), closed after it. */
  const direct = <A>(info: RequestInfo, run: Run<A>, call: PoolCall) =>
    Effect.scoped(
      Effect.suspend(() => {
        Telemetry.attemptAgain(call)
        call.reused = false
        return Effect.flatMap(
          Connection.make({
            server: state.server,
            connectionTimeoutMs: limits.connectionTimeoutMs,
            shutdownGracePeriodMs: limits.shutdownGracePeriodMs
          }),
          (connection) => {
            counters.fallbacks++
            return runOn(connection, info, run, call, false)
          }
        )
      })
    ).pipe(
      Effect.tap(() =>
        Effect.logWarning(`pool of "${state.serverName}" cannot serve; ran ${info.method} on a direct connection`)
      )
    )

  /**
   * One attempt under the breaker, decided now: refused at once while it is open, without
   * touching a connection; else its permit goes on the call until `settleAttempt`.
   */
  const attemptNow = <A>(
    info: RequestInfo,
    run: Run<A>,
    call: PoolCall
  ): Effect.Effect<A, MCPCallError | Forwarded> => {
    const admitted = breaker.admitUnsafe(clock.currentTimeMillisUnsafe())
    if ("rejected" in admitted) {
      counters.rejected++
      return Effect.andThen(breaker.flush, Effect.fail(admitted.rejected))
    }
    call.permit = admitted.permit
    return borrow(state, call, (member) => runOn(member.connection, info, run, call, true), call)
  }

  /**
   * Tells the breaker how the call's attempt ended, once: when the retry schedule sees its
   * failure, before the fallback replaces it, or when the request ends, whichever comes first.
   */
  const settleAttempt = (call: PoolCall, outcome: "success" | "failure" | "ignored"): void => {
    const permit = call.permit
    if (permit === undefined) return
    call.permit = undefined
    // Only a failure or a probe can move the breaker, and only a move reads the time.
    breaker.recordUnsafe(permit, outcome, outcome === "success" && !permit.probe ? 0 : clock.currentTimeMillisUnsafe())
  }

  /**
   * Retries after the first failure `first`, on the pool's schedule. The retry machinery is
   * built only once an attempt has failed: a call that succeeds at once pays for one `catch`.
   */
  const retryAfter = <A>(
    first: MCPCallError,
    info: RequestInfo,
    run: Run<A>,
    call: PoolCall
  ): Effect.Effect<A, MCPCallError | Forwarded> => {
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) {
        counters.retries++
        Telemetry.attemptAgain(call)
        return attemptNow(info, run, call)
      }
      replayed = true
      return Effect.fail(first)
    })
    return Effect.retry(again, {
      schedule,
      times: state.config.retryAttempts,
      while: (error: MCPCallError | Forwarded): boolean => {
        settleAttempt(call, errorOutcome(error))
        return retryable(error, info.idempotent)
      }
    })
  }

  /** The request goes to the pool that replaced this one, which counts and times it. */
  const forward = <A>(info: RequestInfo, run: Run<A>, call: PoolCall): Effect.Effect<A, MCPCallError> => {
    call.forwarded = true
    settleAttempt(call, "ignored")
    const successor = state.successor
    return successor === undefined ? Effect.fail(closed(state, info.method)) : successor.request(info, run)
  }

  /** After a failed attempt: forwarded, retried when safe, or the failure. */
  const afterFailure =
    <A>(info: RequestInfo, run: Run<A>, call: PoolCall) =>
    (error: MCPCallError | Forwarded): Effect.Effect<A, MCPCallError | Forwarded> => {
      if (isForwarded(error)) return forward(info, run, call)
      if (state.config.retryAttempts > 0 && retryable(error, info.idempotent)) return retryAfter(error, info, run, call)
      return Effect.fail(error)
    }

  /** The end of a request: its lease back if it still holds one, the breaker told, counted and judged. */
  const finish = (call: PoolCall, exit: Exit.Exit<unknown, MCPCallError | Forwarded>): Effect.Effect<void> => {
    release(state, call)
    settleAttempt(call, breakerOutcome(exit))
    if (call.forwarded) return Effect.void
    Telemetry.end(call, telemetry, exit)
    const now = clock.currentTimeMillisUnsafe()
    if (exit._tag === "Success") {
      state.window.record(now, false)
    } else {
      const error = Exit.findErrorOption(exit)
      // Interrupted (or a defect): nothing to say about the server.
      if (error._tag === "None") return breaker.flush
      const tag = error.value._tag
      if (tag === "MCPManagerClosed" || tag === "MCPAborted" || tag === "Forwarded") {
        counters.abandoned++
        return breaker.flush
      }
      counters.errors++
      state.lastFailureAt = now
      state.window.record(now, true)
    }
    const flush = breaker.hasPendingTransitions() ? breaker.flush : undefined
    if (state.phase !== "open") return flush ?? Effect.void
    // The rate can cross the threshold on a success too (more calls reach the minimum),
    // so judge it while the window holds a failure.
    let observe: Effect.Effect<void> | undefined
    if (state.errorRateActive || now - state.lastFailureAt < state.thresholds.errorRateWindowMs) {
      observe = state.exhaustionActive
        ? Effect.andThen(observeErrorRate(state), observeExhaustion(state, 0))
        : observeErrorRate(state)
    } else if (state.exhaustionActive) {
      observe = observeExhaustion(state, 0)
    }
    if (observe === undefined) return flush ?? Effect.void
    return flush === undefined ? observe : Effect.andThen(flush, observe)
  }

  const requestWith = <A>(info: RequestInfo, run: Run<A>, call: PoolCall): Effect.Effect<A, MCPCallError> => {
    counters.requests++
    // Lazy: the `onExit` below is in place before a connection is lent, so no interruption
    // can strand a lease.
    const attempt = Effect.suspend(() => attemptNow(info, run, call))
    const retried = Effect.catch(attempt, afterFailure(info, run, call))
    const withFallback =
      state.config.fallback === "direct"
        ? Effect.catchIf(
            retried,
            (error): error is MCPPoolExhausted | MCPCircuitOpen =>
              error._tag === "MCPPoolExhausted" || error._tag === "MCPCircuitOpen",
            (error) => {
              settleAttempt(call, errorOutcome(error))
              return direct(info, run, call)
            }
          )
        : retried
    return Effect.onExit(withFallback, (exit) => finish(call, exit)) as Effect.Effect<A, MCPCallError>
  }

  /** Ends the call with `MCPAborted` as soon as the caller's signal aborts. */
  const abortable = <A>(info: RequestInfo, signal: AbortSignal, effect: Effect.Effect<A, MCPCallError>) =>
    Effect.raceFirst(
      effect,
      Effect.callback<never, MCPCallError>((resume) => {
        const onAbort = () => {
          counters.abandoned++
          resume(Effect.fail(aborted(info)))
        }
        signal.addEventListener("abort", onAbort, { once: true })
        return Effect.sync(() => signal.removeEventListener("abort", onAbort))
      })
    )

  const request = <A>(info: RequestInfo, run: Run<A>): Effect.Effect<A, MCPCallError> =>
    Effect.withFiber((fiber) => {
      if (state.phase === "draining" && state.successor !== undefined) return state.successor.request(info, run)
      const signal = info.signal
      if (signal?.aborted === true) return Effect.fail(aborted(info))
      const call = new PoolCall(info.method, info.target)
      // A caller's signal can end the call at any point, so it needs the interruptible path.
      call.uninterruptible = signal === undefined && fiber.getRef(Uninterruptible)
      // Untraced, the request is set up in this step; traced, once the span is open (its
      // acquire span needs the request's span as parent).
      const body = Telemetry.begin(fiber, call)
        ? Telemetry.withSpan(
            call,
            telemetry,
            Effect.suspend(() => requestWith(info, run, call))
          )
        : requestWith(info, run, call)
      return signal === undefined ? body : abortable(info, signal, body)
    })

  return { request }
}
