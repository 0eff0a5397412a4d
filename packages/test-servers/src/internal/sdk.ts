/**
 * What the fixture reaches inside the SDK's `Protocol` for: the request and notification handlers
 * `McpServer` and `Protocol` installed (to wrap them in place, or to run every request inside code of
 * its own), and errors sent with their own code.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js"
import { ErrorCode } from "@modelcontextprotocol/sdk/types.js"

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
 * What {@link aroundRequests} puts around the handling of each request: given the request's method,
 * the `extra` its handler gets and `handle` (which runs the handler), it runs `handle` and settles as
 * it does (or, having not run it, rejects).
 */
export type AroundRequest = <A>(method: string, extra: unknown, handle: () => Promise<A>) => Promise<A>

/**
 * `Protocol`'s map of request handlers, running each handler set in it inside every {@link AroundRequest}
 * added so far (the first added innermost), those added after the handler was set included.
 */
class HandlersWithArounds extends Map<string, RequestHandler> {
  readonly #arounds: Array<AroundRequest> = []
  override set(method: string, handler: RequestHandler): this {
    return super.set(method, (request, extra) => this.run(method, extra, () => handler(request, extra)))
  }
  /** Runs `handle` inside every around added so far. */
  run<A>(method: string, extra: unknown, handle: () => Promise<A>): Promise<A> {
    return this.#arounds.reduce<() => Promise<A>>((inner, around) => () => around(method, extra, inner), handle)()
  }
  add(around: AroundRequest): void {
    this.#arounds.push(around)
  }
}

/**
 * Runs every request `mcp` receives inside `around`: the handlers installed so far, those set later,
 * and a method without a handler (still answered -32601 Method not found, as `Protocol` would). The
 * first call puts a map of its own in the place of `Protocol`'s; each call adds an around outside the
 * earlier ones. Call it after the code that reads a handler to wrap it (which would run it twice).
 */
export const aroundRequests = (mcp: McpServer, around: AroundRequest): void => {
  const current = requestHandlerMap(mcp)
  if (current instanceof HandlersWithArounds) {
    current.add(around)
    return
  }
  const handlers = new HandlersWithArounds()
  for (const [method, handler] of current) {
    if (typeof method === "string" && isHandler(handler)) handlers.set(method, handler)
  }
  Reflect.set(mcp.server, "_requestHandlers", handlers)
  const fallback =
    mcp.server.fallbackRequestHandler ??
    (() => Promise.reject(new JsonRpcError(ErrorCode.MethodNotFound, "Method not found")))
  mcp.server.fallbackRequestHandler = (request, extra) =>
    handlers.run(request.method, extra, () => fallback(request, extra))
  handlers.add(around)
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
