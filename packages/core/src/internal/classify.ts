/**
 * Turns what the SDK throws into the library's typed errors, deciding whether a failed
 * request may have reached the server and whether the connection is dead.
 */
import { StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js"
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js"
import * as Predicate from "effect/Predicate"
import { MCPConnectionError, MCPRequestError, MCPTimeout } from "../Errors.js"
import { type Scrub, scrubCause, scrubData } from "./scrub.js"
import { SendFailed } from "./stdioTransport.js"

export { SendFailed }

/** Wraps a transport's `send` so that its failures can be told from failures of a sent request. */
export const tagSendFailures = (transport: Transport): void => {
  const send = transport.send.bind(transport)
  transport.send = (message, options) =>
    send(message, options).catch((cause: unknown) => {
      throw new SendFailed(cause)
    })
}

/** A short, single-line description of any thrown value. */
export const describeCause = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  // `fetch failed` alone says little: its cause says why (a code, or a message such as "bad port").
  const inner = Predicate.hasProperty(cause, "cause") ? cause.cause : undefined
  const detail =
    Predicate.hasProperty(inner, "code") && typeof inner.code === "string"
      ? inner.code
      : inner instanceof Error && !(cause instanceof SendFailed)
        ? inner.message
        : undefined
  if (cause instanceof SendFailed) {
    const deeper = inner instanceof Error ? describeCause(inner) : undefined
    return deeper === undefined ? cause.message : `send failed: ${deeper}`
  }
  return detail === undefined || cause.message.includes(detail) ? cause.message : `${cause.message} (${detail})`
}

/** The first `code` (`ECONNREFUSED`, ...) in a thrown value's chain of causes. */
export const networkCode = (cause: unknown): string | undefined => {
  let current: unknown = cause
  for (let depth = 0; depth < 4 && current !== undefined; depth++) {
    if (Predicate.hasProperty(current, "code") && typeof current.code === "string") return current.code
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return undefined
}

const refusedCodes = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"])

/** The outcome of classifying a failed request. */
export type Classified =
  | { readonly _tag: "Request"; readonly error: MCPRequestError }
  | { readonly _tag: "Timeout"; readonly error: MCPTimeout }
  | { readonly _tag: "Connection"; readonly error: MCPConnectionError; readonly dead: boolean }

const mcpPrefix = /^MCP error -?\d+: /

/**
 * Whether a transport's send failed because the server no longer knows the session: Streamable
 * HTTP's 404, or the legacy SSE transport's 404 to a POST to its messages endpoint (the SDK
 * throws a plain `Error` for it). The server did not run the request.
 */
const sessionGone = (cause: unknown, transport: "stdio" | "streamable-http" | "sse"): boolean =>
  transport === "sse"
    ? cause instanceof Error && sseSessionGone.test(cause.message)
    : cause instanceof StreamableHTTPError && cause.code === 404

const sseSessionGone = /^Error POSTing to endpoint \(HTTP 404\)/

/**
 * The limit of a timeout the SDK raised itself: `timeout` (no answer in time) or
 * `maxTotalTimeout` (progress kept resetting it past its cap). A server's own error with the
 * same code carries neither, and stays a request error.
 */
const sdkTimeoutMs = (data: unknown): number | undefined => {
  if (Predicate.hasProperty(data, "timeout") && typeof data.timeout === "number") return data.timeout
  if (Predicate.hasProperty(data, "maxTotalTimeout") && typeof data.maxTotalTimeout === "number") {
    return data.maxTotalTimeout
  }
  return undefined
}

/** Classifies what a request on a connection failed with. */
export const classify = (
  cause: unknown,
  context: {
    readonly serverName: string
    readonly method: string
    readonly transport: "stdio" | "streamable-http" | "sse"
    /** Removes the server's secrets from a text (see `ServerConfig.scrubber`). */
    readonly scrub: Scrub
  }
): Classified => {
  const { serverName, method, scrub } = context
  // What the SDK, fetch or the server said may quote a secret: the errors keep scrubbed copies.
  const connection = (reason: string, requestSent: boolean, dead: boolean): Classified => ({
    _tag: "Connection",
    error: new MCPConnectionError({ serverName, reason: scrub(reason), requestSent, cause: scrubCause(cause, scrub) }),
    dead
  })
  if (cause instanceof SendFailed) {
    const inner = cause.cause
    if (sessionGone(inner, context.transport)) {
      return connection("the server no longer knows this session (HTTP 404)", false, true)
    }
    const code = networkCode(inner)
    if (context.transport === "stdio")
      return connection(`could not send ${method}: ${describeCause(inner)}`, false, true)
    if (code !== undefined && refusedCodes.has(code)) {
      return connection(`could not reach the server (${code})`, false, true)
    }
    return connection(`${method} failed in transit: ${describeCause(inner)}`, true, false)
  }
  if (cause instanceof McpError) {
    if (cause.code === ErrorCode.RequestTimeout) {
      const timeoutMs = sdkTimeoutMs(cause.data)
      if (timeoutMs !== undefined) {
        return { _tag: "Timeout", error: new MCPTimeout({ serverName, method, timeoutMs }) }
      }
    }
    if (cause.code === ErrorCode.ConnectionClosed && cause.message.endsWith("Connection closed")) {
      return connection(`the connection closed while ${method} was in flight`, true, true)
    }
    return {
      _tag: "Request",
      error: new MCPRequestError({
        serverName,
        method,
        code: cause.code,
        reason: scrub(cause.message.replace(mcpPrefix, "")),
        data: scrubData(cause.data, scrub)
      })
    }
  }
  if (cause instanceof Error && cause.message === "Not connected") {
    return connection(`the connection was already closed before ${method} was sent`, false, true)
  }
  if (cause instanceof Error && cause.name === "ZodError") {
    return {
      _tag: "Request",
      error: new MCPRequestError({
        serverName,
        method,
        code: ErrorCode.InternalError,
        reason: scrub(`the server's answer does not match the MCP schema: ${cause.message}`)
      })
    }
  }
  return connection(`${method} failed: ${describeCause(cause)}`, true, false)
}
