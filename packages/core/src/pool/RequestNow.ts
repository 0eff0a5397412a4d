/**
 * The path of a request from a Promise caller, without a fiber. Its common case (a connection
 * lent at once or after a wait in line, then the server's answer) runs on callbacks alone: no
 * fiber, no effect, as a hand-written pool would. Anything else goes on along the Effect path
 * of `Request` from where this one stopped (a failure, a refusal of the breaker, a connection
 * that must be pinged first), so retries, the fallback and forwarding are the same on both.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { MCPCallError } from "../Errors.js"
import * as Telemetry from "../internal/telemetry.js"
import type { Tracing } from "../internal/telemetry.js"
import { isReady, joinLine, lendAtOnce, useLent } from "./Admission.js"
import { admit, finish, following, refused } from "./Request.js"
import { PoolCall, send, start } from "./Send.js"
import type { Forwarded, Member, PoolState, RequestInfo, Run } from "./State.js"

/**
 * Runs an effect of the Effect path for a Promise caller: its value, or its typed error.
 *
 * @since 0.1.0
 * @category models
 */
export type RunEffect = <A>(effect: Effect.Effect<A, MCPCallError>) => Promise<A>

/**
 * A caller without a fiber, as `requestNow` needs it: how to run what goes on along the Effect
 * path, and, when its context traces, how its spans are made.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseCaller {
  /** Runs what goes on along the Effect path (a retry, the fallback, an alert) in the caller's context. */
  readonly runEffect: RunEffect
  /** How the caller's spans are made, when its context traces; none are made without it. */
  readonly tracing?: Tracing | undefined
}

const ignore = (): void => {}

/**
 * Runs one request for a caller that has no fiber and no AbortSignal: the Promise of its
 * answer, or `undefined` when the request must take the Effect path from its start (the pool
 * is not open, or the call has a signal). Needs no interruption either: as with
 * `Uninterruptible`, the SDK gets no AbortSignal. With `caller.tracing`, its spans are those
 * the Effect path makes: the CLIENT span, and `mcp_pool.acquire` while it waits in line.
 */
export const requestNow = <A>(
  state: PoolState,
  info: RequestInfo,
  run: Run<A>,
  caller: PromiseCaller
): Promise<A> | undefined => {
  if (state.phase !== "open" || info.signal !== undefined) return undefined
  const call = new PoolCall(info.method, info.target)
  call.uninterruptible = true
  state.counters.requests++
  const { runEffect, tracing } = caller
  if (tracing !== undefined) Telemetry.openSpan(call, state.telemetry, tracing)
  /** The rest of the request along the Effect path, from `first`. */
  const rest = (first: Effect.Effect<A, MCPCallError | Forwarded>): Promise<A> => {
    const ended = runEffect(following(state, info, run, call, first))
    return tracing === undefined ? ended : ended.then(succeeded, failed)
  }
  const succeeded = (value: A): A => {
    Telemetry.closeSpans(call, Exit.succeed(value))
    return value
  }
  const failed = (error: unknown): never => {
    Telemetry.closeSpans(call, Exit.fail(error))
    throw error
  }
  const rejected = admit(state, call)
  if (rejected !== undefined) return rest(refused(state, rejected))
  return new Promise<A>((resolve) => {
    const answered = (exit: Exit.Exit<A, MCPCallError>): void => {
      if (exit._tag === "Failure") return resolve(rest(exit))
      const after = finish(state, call, exit)
      if (tracing !== undefined) Telemetry.closeSpans(call, exit)
      resolve(after === Effect.void ? exit.value : runEffect(Effect.as(after, exit.value)))
    }
    const go = (member: Member): void => {
      if (isReady(state, member)) {
        start(state, member.connection, info, run, call, true, undefined, answered)
        return
      }
      const use = (lent: Member) => send(state, lent.connection, info, run, call, true)
      resolve(rest(useLent(state, call, member, use, call)))
    }
    const member = lendAtOnce(state, call)
    if (member !== undefined) return go(member)
    if (tracing !== undefined) Telemetry.openAcquireSpan(call, tracing)
    const alert = joinLine(state, call, (exit) => {
      if (exit._tag === "Failure") {
        Telemetry.closeAcquireSpan(call, exit)
        return resolve(rest(Effect.failCause(exit.cause)))
      }
      const lent = call.member
      if (lent === undefined) return resolve(rest(Effect.die("a borrower was woken without a connection")))
      go(lent)
    })
    if (alert !== undefined) runEffect(alert).then(ignore, ignore)
  })
}
