/**
 * What a pooled call does with its caller's options and params: the pool's SDK options merged
 * with the caller's, the trace context in `_meta`, the error of a tool call without a name, and
 * a wait on a shared effect that ends when the caller's signal aborts.
 */
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import { ErrorCode } from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import { MCPAborted, type MCPCallError, MCPRequestError } from "../Errors.js"
import type { SdkRequestOptions, TraceMeta } from "../MCPConnectionPool.js"
import type { CallOptions } from "../PooledMCPTools.js"

/** The pool's SDK options with the caller's: the caller's win, except that both signals abort the request. */
export const mergeOptions = (pool: SdkRequestOptions, user: CallOptions | undefined): RequestOptions => {
  if (user === undefined) return pool
  const { idempotent: _, handlers: __, signal, ...rest } = user
  const merged: RequestOptions = { ...pool, ...rest }
  if (signal !== undefined) merged.signal = pool.signal === undefined ? signal : AbortSignal.any([pool.signal, signal])
  return merged
}

interface HasMeta {
  readonly _meta?: object | undefined
}

/** The request's params with the trace context merged into `_meta` (a copy; the caller's object is not touched). */
export const withMeta = <P extends HasMeta | undefined>(params: P, meta: TraceMeta): P => {
  if (meta === undefined) return params
  return { ...params, _meta: { ...params?._meta, ...meta } }
}

/** The failure of a `callTool` without a tool name: the request is not sent. */
export const invalidToolCall = (serverName: string, params: unknown): MCPRequestError =>
  new MCPRequestError({
    serverName,
    method: "tools/call",
    code: ErrorCode.InvalidParams,
    reason: `callTool needs params with a tool name, e.g. { name: "echo", arguments: {...} } (got ${
      params === null ? "null" : typeof params === "object" ? "an object without a string name" : typeof params
    }); nothing was sent`
  })

/** Waits for `effect` (shared with other callers) until `signal` aborts: then `MCPAborted`, the effect left running. */
export const untilAborted = <A>(
  effect: Effect.Effect<A, MCPCallError>,
  signal: AbortSignal,
  serverName: string,
  method: string
): Effect.Effect<A, MCPCallError> => {
  const abortedError = () =>
    new MCPAborted({ serverName, method, reason: signal.reason === undefined ? "aborted" : String(signal.reason) })
  if (signal.aborted) return Effect.fail(abortedError())
  const onAbort = Effect.callback<never, MCPAborted>((resume) => {
    const listener = () => resume(Effect.fail(abortedError()))
    signal.addEventListener("abort", listener, { once: true })
    return Effect.sync(() => signal.removeEventListener("abort", listener))
  })
  return Effect.raceFirst(effect, onAbort)
}
