/**
 * One request on one connection: the SDK call with the pool's options, its bookkeeping where it
 * ends, and what its failure means (a typed error, a dead connection, our close, the caller's abort).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Connection from "../internal/connection.js"
import { MCPAborted, type MCPCallError } from "../Errors.js"
import { classify, describeCause } from "../internal/classify.js"
import * as Telemetry from "../internal/telemetry.js"
import type { Attempt } from "../session/Attribution.js"
import type { Limiter } from "./Limiter.js"
import { PROOF_DELAY_MS } from "./ServerProfile.js"
import { closed, release } from "./Admission.js"
import { connectionOptions, growForWaiting } from "./Members.js"
import type { Member, PoolState, RequestInfo, Run, SdkRequestOptions, Ticket } from "./State.js"

/** The bookkeeping of one request: its telemetry, and the lease of its current attempt. */
export class PoolCall extends Telemetry.Call implements Ticket {
  member: Member | undefined = undefined
  /** Handed to the pool that replaced this one: counted and timed there, not here. */
  forwarded = false
}

/** The error of a call its caller gave up on (its signal aborted), with the signal's reason. */
export const aborted = (state: PoolState, info: RequestInfo): MCPAborted => {
  const reason: unknown = info.signal?.reason
  return new MCPAborted({
    serverName: state.serverName,
    method: info.method,
    reason: reason === undefined ? "aborted" : state.scrub(describeCause(reason))
  })
}

/**
 * The typed error of a request the SDK rejected, counted: our own close and the caller's
 * abort first (never the server's fault), then what the SDK said. A connection it proves dead
 * is marked so, and counted once (a death already reported by the transport is not).
 */
const failure = (
  state: PoolState,
  connection: Connection.LiveConnection,
  info: RequestInfo,
  cause: unknown
): MCPCallError => {
  if (state.phase === "closed") return closed(state, info.method)
  if (info.signal?.aborted === true) return aborted(state, info)
  const classified = classify(cause, {
    serverName: state.serverName,
    method: info.method,
    transport: state.server.transport,
    scrub: state.scrub
  })
  switch (classified._tag) {
    case "Request":
      return classified.error
    case "Timeout":
      state.counters.timeouts++
      return classified.error
    case "Connection":
      if (!classified.dead || Connection.isAlive(connection)) state.counters.connectionErrors++
      if (classified.dead) Connection.markDead(connection, classified.error.reason)
      return classified.error
  }
}

/** What a handler answering a server request for this call is told of it (`sentAt`: the lease's clock reading). */
const callInfo = (state: PoolState, info: RequestInfo, call: PoolCall) => ({
  method: info.method,
  target: info.target,
  handlers: info.handlers,
  timeoutMs: info.timeoutMs ?? state.limits.requestTimeoutMs,
  sentAt: call.leasedAt
})

/**
 * Gives a request's latency to its connection's adaptive limit; the kind is its method and
 * target. A higher limit is called for while borrowers wait, or while the connection is passed
 * over for a newer one because it is full (see `Admission.pick`).
 */
const measure = (
  state: PoolState,
  member: Member,
  limiter: Limiter,
  info: RequestInfo,
  call: PoolCall,
  carried: number,
  overtook: boolean
): void => {
  const kind = info.target === undefined ? info.method : `${info.method} ${info.target}`
  const demanded = state.line.size > 0 || member.passedOver
  member.passedOver = false
  limiter.record(kind, call.releasedAt - call.leasedAt, carried, demanded, overtook, call.releasedAt)
  growForWaiting(state, call.releasedAt)
}

/**
 * Pings the connection a moment after a request went out, while that request runs: a server
 * that answers the ping first runs requests concurrently, and its connection may carry several
 * (see `Limiter`). A server that answers in order answers the ping after the request; no
 * caller waits for it either way.
 */
const proveConcurrency = (connection: Connection.LiveConnection, limiter: Limiter, running: () => boolean): void => {
  const timer = setTimeout(() => {
    if (!running() || !Connection.isAlive(connection)) return
    connection.client.ping().then(
      () => {
        if (running()) limiter.proven()
        else limiter.disproven()
      },
      () => {}
    )
  }, PROOF_DELAY_MS)
  timer.unref()
}

/** The SDK options of a request: the pool's shared object, or one that also carries the fiber's signal. */
const sdkOptions = (state: PoolState, signal: AbortSignal | undefined): SdkRequestOptions =>
  signal === undefined ? state.requestOptions : { timeout: state.limits.requestTimeoutMs, signal }

/** How a request's end is told: its answer, or its typed failure. */
export type Resume<A> = (exit: Exit.Exit<A, MCPCallError>) => void

/**
 * Sends one request on a connection, now, and calls `resume` once with its end (within this
 * call only when the SDK throws at once). Must be called when the request runs (it counts the
 * request in flight at once). `pooled`: the connection is the call's lease, given back when the
 * request ends (a direct connection is not). `signal` aborts the SDK request; without one, the
 * SDK adds no listener. Answers the function that ends the request's bookkeeping when its caller
 * stops waiting.
 */
export const start = <A>(
  state: PoolState,
  connection: Connection.LiveConnection,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall,
  pooled: boolean,
  signal: AbortSignal | undefined,
  resume: Resume<A>
): (() => void) => {
  connection.inFlight++
  Telemetry.leased(call, state.telemetry, connection.id)
  if (call.leasedAt - connection.requestMapsRenewedAt > Connection.REQUEST_MAPS_RENEWAL_MS) {
    Connection.renewRequestMaps(connection, call.leasedAt)
  }
  // The bookkeeping of the request's end runs where it ends (the SDK's answer, or the
  // interruption), not in an onExit around it: one step less on every call.
  let done = false
  const attribution = connection.attribution
  let attempt: Attempt | undefined = undefined
  // With an adaptive limit: what the connection carried when this request went out, and its
  // place in line (a fixed limit measures nothing).
  const member = pooled ? call.member : undefined
  const limiter = member?.limiter
  const carried = connection.inFlight
  const number = limiter === undefined ? -1 : connection.sent++
  if (limiter !== undefined) connection.outstanding.add(number)
  /** `measured`: the request ended with the server's answer or a failure, not its caller's abort. */
  const settle = (measured: boolean): void => {
    done = true
    if (attempt !== undefined) attribution?.end(attempt)
    connection.inFlight--
    Telemetry.released(call, state.telemetry)
    if (limiter !== undefined) {
      // Answered while a request sent before it was not: the server does not answer in order.
      const overtook = connection.outstanding.values().next().value !== number
      connection.outstanding.delete(number)
      if (measured && member !== undefined) measure(state, member, limiter, info, call, carried, overtook)
    }
    // The time just read for the release, as epoch milliseconds (no second clock read).
    connection.lastUsedAt = performance.timeOrigin + call.releasedAt
    if (pooled) release(state, call)
  }
  let sent: Promise<A>
  // What the server asks while serving this call may be answered by the call's handlers.
  if (attribution !== undefined) attempt = attribution.begin(callInfo(state, info, call))
  try {
    sent = run(connection.client, sdkOptions(state, signal), call.meta)
  } catch (cause) {
    attribution?.sent()
    const error = failure(state, connection, info, cause)
    settle(false)
    resume(Exit.fail(error))
    return ignore
  }
  attribution?.sent()
  // Only a request sent alone: one queued behind others may not have started when the ping comes.
  if (carried === 1 && limiter?.wantsProof(call.leasedAt) === true) proveConcurrency(connection, limiter, () => !done)
  sent.then(
    (value) => {
      if (done) return
      // A connection that serves a call ends a streak of failures to open one.
      state.streak = 0
      settle(true)
      resume(Exit.succeed(value))
    },
    (cause: unknown) => {
      if (done) return
      const error = failure(state, connection, info, cause)
      settle(!(error instanceof MCPAborted) && state.phase === "open")
      resume(Exit.fail(error))
    }
  )
  return () => {
    if (!done) settle(false)
  }
}

const ignore = (): void => {}

/**
 * `start` as an effect, for a caller in a fiber. A request from a fiber nobody can interrupt
 * (see `Uninterruptible`) goes without an AbortSignal.
 */
export const send = <A>(
  state: PoolState,
  connection: Connection.LiveConnection,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall,
  pooled: boolean
): Effect.Effect<A, MCPCallError> => {
  const sending: Effect.Effect<A, MCPCallError> = call.uninterruptible
    ? // Nothing can interrupt the caller: no AbortSignal (Effect.callback makes one only for a
      // function of two parameters).
      Effect.callback((resume) => {
        start(state, connection, info, run, call, pooled, undefined, resume)
      })
    : Effect.callback((resume, signal) => {
        const stop = start(state, connection, info, run, call, pooled, signal, resume)
        // Interrupted: the signal aborts the SDK request (which sends notifications/cancelled).
        return Effect.sync(stop)
      })
  // Only HTTP has transport instrumentation that could use the span as its parent.
  return state.server.transport === "stdio" ? sending : Telemetry.withinSpan(call, sending)
}

/** One call on a one-off connection (`fallback: "direct"`), closed after it. */
export const direct = <A>(
  state: PoolState,
  info: RequestInfo,
  run: Run<A>,
  call: PoolCall
): Effect.Effect<A, MCPCallError> =>
  Effect.scoped(
    Effect.suspend(() => {
      Telemetry.attemptAgain(call)
      call.reused = false
      return Effect.flatMap(Connection.make(connectionOptions(state, false)), (connection) => {
        state.counters.fallbacks++
        return send(state, connection, info, run, call, false)
      })
    })
  ).pipe(
    Effect.tap(() =>
      Effect.logWarning(`pool of "${state.serverName}" cannot serve; ran ${info.method} on a direct connection`)
    )
  )
