/**
 * What the fixture reaches inside the SDK's `Protocol` for: the request and notification handlers
 * `McpServer` and `Protocol` installed (to wrap them in place), and errors sent with their own code.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"

/** A request handler as `Protocol` stores it: the raw request in, a promise of the result out. */
export type RequestHandler = (request: unknown, extra: unknown) => Promise<unknown>

/** A notification handler as `Protocol` stores it. */
export type NotificationHandler = (notification: unknown) => Promise<void>

/** An error carrying a JSON-RPC code; the SDK's protocol layer sends `code` and `message` as they are. */
export class JsonRpcError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.name = "JsonRpcError"
    this.code = code
  }
}

const isHandler = (value: unknown): value is RequestHandler & NotificationHandler => typeof value === "function"

/** `Protocol`'s own map of request handlers, by method (every request is looked up in it). */
const requestHandlerMap = (mcp: McpServer): ReadonlyMap<unknown, unknown> => {
  const handlers: unknown = Reflect.get(mcp.server, "_requestHandlers")
  if (!(handlers instanceof Map)) {
    throw new Error("mcp-pool fixture: cannot find the SDK's request handlers (SDK internals changed?)")
  }
  return handlers
}

/**
 * Puts `replacement` in the place of `Protocol`'s map of request handlers, first filled (through its
 * own `set`) with every handler installed so far: later registrations go through its `set` too.
 */
export const replaceRequestHandlerMap = (mcp: McpServer, replacement: Map<string, RequestHandler>): void => {
  for (const [method, handler] of requestHandlerMap(mcp)) {
    if (typeof method === "string" && isHandler(handler)) replacement.set(method, handler)
  }
  Reflect.set(mcp.server, "_requestHandlers", replacement)
}

/** The request handler installed for `method`; throws if there is none. */
export const requestHandler = (mcp: McpServer, method: string): RequestHandler => {
  const handler: unknown = requestHandlerMap(mcp).get(method)
  if (!isHandler(handler)) {
    throw new Error(`mcp-pool fixture: cannot find the SDK's ${method} handler (SDK internals changed?)`)
  }
  return handler
}

/** The notification handler installed for `method`; throws if there is none. */
export const notificationHandler = (mcp: McpServer, method: string): NotificationHandler => {
  const handlers: unknown = Reflect.get(mcp.server, "_notificationHandlers")
  const handler: unknown = handlers instanceof Map ? handlers.get(method) : undefined
  if (!isHandler(handler)) {
    throw new Error(`mcp-pool fixture: cannot find the SDK's ${method} handler (SDK internals changed?)`)
  }
  return handler
}

/** The SDK `Server`'s own judgement of whether a log message at `level` is dropped for `sessionId`. */
export const loggingFilter = (mcp: McpServer): ((level: string, sessionId: string | undefined) => boolean) => {
  const isMessageIgnored: unknown = Reflect.get(mcp.server, "isMessageIgnored")
  if (typeof isMessageIgnored !== "function") {
    throw new Error("mcp-pool fixture: cannot find the SDK's log level filter (SDK internals changed?)")
  }
  return (level, sessionId) => {
    const ignored: unknown = Reflect.apply(isMessageIgnored, mcp.server, [level, sessionId])
    return ignored === true
  }
}

/** The log level a client set with `logging/setLevel` for `sessionId`, as the SDK `Server` keeps it. */
export const loggingLevel = (mcp: McpServer, sessionId: string | undefined): string | undefined => {
  const levels: unknown = Reflect.get(mcp.server, "_loggingLevels")
  const level: unknown = levels instanceof Map ? levels.get(sessionId) : undefined
  return typeof level === "string" ? level : undefined
}
