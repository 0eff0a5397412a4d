/**
 * A drop-in for the SDK `Client` whose every call borrows a pooled connection: the same
 * method names, parameters and results, in an Effect flavour and a Promise flavour.
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js"
import type { LoggingLevel } from "@modelcontextprotocol/sdk/types.js"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type MCPCallError, MCPManagerClosed, type MCPServerNotFound } from "./Errors.js"
import { invalidToolCall, untilAborted, withMeta } from "./internal/callOptions.js"
import { cacheable, lists, readAll } from "./internal/listing.js"
import { type Plain, plain, prepare, type SdkRun, toolName } from "./internal/plainRequests.js"
import type { ListKind, MCPConnectionPool, ServerSession } from "./MCPConnectionPool.js"
import type * as Notifications from "./Notifications.js"
import type * as ServerRequests from "./ServerRequests.js"

type Result<K extends keyof Client> = Client[K] extends (...args: ReadonlyArray<never>) => Promise<infer A> ? A : never

/**
 * Per-call options: the SDK's `RequestOptions` (a caller's `signal`, `timeout`, `onprogress`
 * ... take precedence over the pool's), plus `idempotent` for tool calls.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallOptions extends RequestOptions {
  /**
   * Marks a tool call as safe to run twice, so that it is retried after a connection failure
   * even when the request may have reached the server. Reads (list, read, get, ping) are
   * always treated as idempotent.
   */
  readonly idempotent?: boolean | undefined
  /**
   * Handlers for what the server asks while serving this call (elicitation, sampling, roots),
   * used instead of the server's when the pool knows the request is this call's. A kind the
   * server has no handler for is not advertised, so a call's handler of that kind is never asked.
   */
  readonly handlers?: ServerRequests.Handlers | undefined
}

/**
 * The result of `setLoggingLevel`: the server's empty answer.
 *
 * @since 0.1.0
 * @category models
 */
export type SetLevelResult = Result<"setLoggingLevel">

/**
 * The errors a pooled call can fail with: those of the pool, `MCPServerNotFound` when the
 * server was removed or never configured, and `MCPManagerClosed` once the manager closed.
 *
 * @since 0.1.0
 * @category models
 */
export type PooledCallError = MCPCallError | MCPServerNotFound | MCPManagerClosed

/**
 * The Effect flavour: each method of the SDK `Client` returns an `Effect` with typed errors.
 *
 * @since 0.1.0
 * @category models
 */
export interface PooledMCPTools {
  readonly serverName: string
  readonly listTools: (
    params?: Parameters<Client["listTools"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"listTools">, PooledCallError>
  readonly callTool: (
    params: Parameters<Client["callTool"]>[0],
    resultSchema?: Parameters<Client["callTool"]>[1],
    options?: CallOptions
  ) => Effect.Effect<Result<"callTool">, PooledCallError>
  readonly listResources: (
    params?: Parameters<Client["listResources"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"listResources">, PooledCallError>
  readonly listResourceTemplates: (
    params?: Parameters<Client["listResourceTemplates"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"listResourceTemplates">, PooledCallError>
  readonly readResource: (
    params: Parameters<Client["readResource"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"readResource">, PooledCallError>
  readonly listPrompts: (
    params?: Parameters<Client["listPrompts"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"listPrompts">, PooledCallError>
  readonly getPrompt: (
    params: Parameters<Client["getPrompt"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"getPrompt">, PooledCallError>
  readonly complete: (
    params: Parameters<Client["complete"]>[0],
    options?: CallOptions
  ) => Effect.Effect<Result<"complete">, PooledCallError>
  readonly ping: (options?: CallOptions) => Effect.Effect<Result<"ping">, PooledCallError>
  /** The server's capabilities from the handshake; opens a connection if none was ever made. */
  readonly getServerCapabilities: () => Effect.Effect<ReturnType<Client["getServerCapabilities"]>, PooledCallError>
  /** The server's name and version from the handshake; opens a connection if none was ever made. */
  readonly getServerVersion: () => Effect.Effect<ReturnType<Client["getServerVersion"]>, PooledCallError>
  /** Sets the server's logging level on every connection of the pool, and on those opened later. */
  readonly setLoggingLevel: (level: LoggingLevel) => Effect.Effect<SetLevelResult, PooledCallError>
  /** Tells every open connection that the roots (of the manager's or server's roots handler) changed. */
  readonly sendRootsListChanged: () => Effect.Effect<void, PooledCallError>
  /**
   * Subscribes to updates of a resource until the subscription is ended: `onUpdated` gets every
   * `notifications/resources/updated` for its URI.
   */
  readonly subscribeResource: (
    params: { readonly uri: string },
    onUpdated: (update: Notifications.ResourceUpdated) => void
  ) => Effect.Effect<Notifications.ResourceSubscription<Effect.Effect<void>>, PooledCallError>
  /** Every `list_changed` the server sends, from any connection, after the catalog forgot that list. */
  readonly listChanged: Stream.Stream<Notifications.ListChanged, MCPServerNotFound | MCPManagerClosed>
}

/**
 * The Promise flavour: the same methods as the SDK `Client`, returning Promises that reject
 * with the library's tagged errors. `getServerCapabilities` and `getServerVersion` are
 * synchronous as on `Client`, answering from the latest handshake (`undefined` before any).
 *
 * @since 0.1.0
 * @category models
 */
export interface PooledMCPToolsPromise {
  readonly serverName: string
  readonly listTools: (
    params?: Parameters<Client["listTools"]>[0],
    options?: CallOptions
  ) => Promise<Result<"listTools">>
  readonly callTool: (
    params: Parameters<Client["callTool"]>[0],
    resultSchema?: Parameters<Client["callTool"]>[1],
    options?: CallOptions
  ) => Promise<Result<"callTool">>
  readonly listResources: (
    params?: Parameters<Client["listResources"]>[0],
    options?: CallOptions
  ) => Promise<Result<"listResources">>
  readonly listResourceTemplates: (
    params?: Parameters<Client["listResourceTemplates"]>[0],
    options?: CallOptions
  ) => Promise<Result<"listResourceTemplates">>
  readonly readResource: (
    params: Parameters<Client["readResource"]>[0],
    options?: CallOptions
  ) => Promise<Result<"readResource">>
  readonly listPrompts: (
    params?: Parameters<Client["listPrompts"]>[0],
    options?: CallOptions
  ) => Promise<Result<"listPrompts">>
  readonly getPrompt: (
    params: Parameters<Client["getPrompt"]>[0],
    options?: CallOptions
  ) => Promise<Result<"getPrompt">>
  readonly complete: (params: Parameters<Client["complete"]>[0], options?: CallOptions) => Promise<Result<"complete">>
  readonly ping: (options?: CallOptions) => Promise<Result<"ping">>
  readonly getServerCapabilities: () => ReturnType<Client["getServerCapabilities"]>
  readonly getServerVersion: () => ReturnType<Client["getServerVersion"]>
  readonly setLoggingLevel: (level: LoggingLevel) => Promise<SetLevelResult>
  readonly sendRootsListChanged: () => Promise<void>
  readonly subscribeResource: (
    params: { readonly uri: string },
    onUpdated: (update: Notifications.ResourceUpdated) => void
  ) => Promise<Notifications.ResourceSubscription<Promise<void>>>
  /**
   * Calls `listener` with every `list_changed` the server sends until the returned function is
   * called. Throws `MCPManagerClosed` when the manager has closed (or the server was removed).
   */
  readonly onListChanged: (listener: (event: Notifications.ListChanged) => void) => () => void
}

/**
 * Builds the Effect flavour over a way to find the pool (looked up on every call, so that a
 * pool rebuilt by `configureServerPool` is picked up). `current`, when given, answers the
 * pool without running an effect; `getPool` then only runs when it answers `undefined`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  serverName: string,
  getPool: Effect.Effect<MCPConnectionPool, MCPServerNotFound | MCPManagerClosed>,
  current?: () => MCPConnectionPool | undefined
): PooledMCPTools => {
  const withPool = <A, E>(use: (pool: MCPConnectionPool) => Effect.Effect<A, E>) => {
    if (current === undefined) return Effect.flatMap(getPool, use)
    return Effect.suspend(() => {
      const pool = current()
      return pool === undefined ? Effect.flatMap(getPool, use) : use(pool)
    })
  }
  const call = <A>(request: Plain<A>, user: CallOptions | undefined): Effect.Effect<A, PooledCallError> => {
    const { info, send } = prepare(request, user)
    return withPool((pool) => pool.request(info, send))
  }
  /** A list request sent as it is. */
  const listing = <A>(method: string, user: CallOptions | undefined, run: SdkRun<A>) =>
    call({ method, idempotent: true, target: undefined, run }, user)
  /** A list call: from the server's catalog when it may be (see `cacheable`), else sent as it is. */
  const list = <A>(
    kind: ListKind,
    params: object | undefined,
    user: CallOptions | undefined,
    direct: SdkRun<A>
  ): Effect.Effect<A, PooledCallError> => {
    const { method } = lists[kind]
    if (!cacheable(params, user)) return listing(method, user, direct)
    return withPool((pool) => {
      // Without the catalog, a list call is what it is on a `Client`: one page.
      if (pool.config.catalog === "off") return listing(method, user, direct)
      const fill = pool.request({ method, idempotent: true }, (client, options, meta) =>
        readAll(kind, client, options, meta)
      ) as Effect.Effect<A, MCPCallError>
      const shared = pool.catalogList(kind, fill)
      return user?.signal === undefined ? shared : untilAborted(shared, user.signal, serverName, method)
    })
  }
  const serverInfo = Effect.flatMap(getPool, (pool) => {
    const info = pool.serverInfo()
    if (info.capabilities !== undefined) return Effect.succeed(info)
    return Effect.as(
      pool.request({ method: "ping", idempotent: true }, (client, options) => client.ping(options)),
      undefined
    ).pipe(Effect.map(() => pool.serverInfo()))
  })
  const session = <A, E>(use: (session: ServerSession) => Effect.Effect<A, E>) => withPool((pool) => use(pool.session))
  return {
    serverName,
    listTools: (params, options) =>
      list("tools", params, options, (client, o, meta) => client.listTools(withMeta(params, meta), o)),
    callTool: (params, resultSchema, options) => {
      const name = toolName(params)
      // An untyped caller may pass anything: a bad argument is a typed failure, never a throw.
      if (name === undefined) return Effect.fail(invalidToolCall(serverName, params))
      return withPool((pool) => call(plain.callTool(pool, name, params, resultSchema, options), options))
    },
    listResources: (params, options) =>
      list("resources", params, options, (client, o, meta) => client.listResources(withMeta(params, meta), o)),
    listResourceTemplates: (params, options) =>
      list("resourceTemplates", params, options, (client, o, meta) =>
        client.listResourceTemplates(withMeta(params, meta), o)
      ),
    readResource: (params, options) => call(plain.readResource(params), options),
    listPrompts: (params, options) =>
      list("prompts", params, options, (client, o, meta) => client.listPrompts(withMeta(params, meta), o)),
    getPrompt: (params, options) => call(plain.getPrompt(params), options),
    complete: (params, options) => call(plain.complete(params), options),
    ping: (options) => call(plain.ping(), options),
    getServerCapabilities: () => Effect.map(serverInfo, (info) => info.capabilities),
    getServerVersion: () => Effect.map(serverInfo, (info) => info.version),
    setLoggingLevel: (level) => session((s) => Effect.as(s.setLoggingLevel(level), {})),
    sendRootsListChanged: () => session((s) => s.sendRootsListChanged),
    subscribeResource: (params, onUpdated) =>
      session((s) =>
        Effect.as(s.subscribeResource(params.uri, onUpdated), {
          uri: params.uri,
          unsubscribe: () => s.unsubscribeResource(params.uri, onUpdated)
        })
      ),
    listChanged: Stream.unwrap(session((s) => Effect.succeed(s.listChanged)))
  }
}

export { runPromise, type RunFork, toPromise } from "./internal/promiseFlavour.js"
