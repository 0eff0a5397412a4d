/**
 * The Promise flavour of the pooled tools, over the Effect flavour: each call run for a Promise
 * caller, and the plain requests sent through the pool's path without a fiber when it has one.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { MCPAborted, MCPManagerClosed } from "../Errors.js"
import type { MCPConnectionPool, ServerSession, Tracing } from "../MCPConnectionPool.js"
import type { CallOptions, PooledCallError, PooledMCPTools, PooledMCPToolsPromise } from "../PooledMCPTools.js"
import { type Plain, plain, prepare, toolName } from "./plainRequests.js"

/**
 * Starts effects for a Promise caller, as `Effect.runForkWith(context)` does.
 *
 * @since 0.1.0
 * @category models
 */
export type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>

/**
 * Runs an effect for a Promise caller: resolves with its value, or rejects with its typed
 * error itself (an `Error` with `_tag` and `message`), not a wrapper. An effect that was
 * interrupted rejects with `interrupted()` (a tagged error too), never with effect's own
 * interruption error.
 *
 * @since 0.1.0
 * @category utils
 */
export const runPromise = <A, E>(
  runFork: RunFork,
  effect: Effect.Effect<A, E>,
  interrupted: () => unknown
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    runFork(effect).addObserver((exit) => {
      if (Exit.isSuccess(exit)) resolve(exit.value)
      else reject(Cause.hasInterruptsOnly(exit.cause) ? interrupted() : Cause.squash(exit.cause))
    })
  })

/**
 * Builds the Promise flavour over the Effect flavour.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toPromise = (
  tools: PooledMCPTools,
  options: {
    readonly runFork: RunFork
    readonly serverInfo: () => ReturnType<MCPConnectionPool["serverInfo"]> | undefined
    /** The server's session now; `undefined` once the manager closed. */
    readonly session: () => ServerSession | undefined
    /**
     * The server's pool now, when plain requests may skip the fiber (see
     * `MCPConnectionPool.requestNow`); absent, every request runs in a fiber.
     */
    readonly now?: (() => MCPConnectionPool | undefined) | undefined
    /** How those requests make their spans, when the context traces. */
    readonly tracing?: Tracing | undefined
  }
): PooledMCPToolsPromise => {
  const serverName = tools.serverName
  const run = <A, E>(method: string, effect: Effect.Effect<A, E>) =>
    runPromise(
      options.runFork,
      effect,
      () => new MCPAborted({ serverName, method, reason: "the call was interrupted" })
    )
  const { now, tracing } = options
  /** A plain request through the pool's fiberless path when it takes it, else as `slow` sends it. */
  const send = <A>(
    method: string,
    request: (pool: MCPConnectionPool) => Plain<A> | undefined,
    user: CallOptions | undefined,
    slow: () => Effect.Effect<A, PooledCallError>
  ): Promise<A> => {
    const pool = now?.()
    const described = pool === undefined ? undefined : request(pool)
    if (pool !== undefined && described !== undefined) {
      const { info, send: sdk } = prepare(described, user)
      const sent = pool.requestNow(info, sdk, { runEffect: (effect) => run(method, effect), tracing })
      if (sent !== undefined) return sent
    }
    return run(method, slow())
  }
  return {
    serverName,
    listTools: (params, o) => run("tools/list", tools.listTools(params, o)),
    callTool: (params, schema, o) =>
      send(
        "tools/call",
        (pool) => {
          const name = toolName(params)
          return name === undefined ? undefined : plain.callTool(pool, name, params, schema, o)
        },
        o,
        () => tools.callTool(params, schema, o)
      ),
    listResources: (params, o) => run("resources/list", tools.listResources(params, o)),
    listResourceTemplates: (params, o) => run("resources/templates/list", tools.listResourceTemplates(params, o)),
    readResource: (params, o) =>
      send(
        "resources/read",
        () => plain.readResource(params),
        o,
        () => tools.readResource(params, o)
      ),
    listPrompts: (params, o) => run("prompts/list", tools.listPrompts(params, o)),
    getPrompt: (params, o) =>
      send(
        "prompts/get",
        () => plain.getPrompt(params),
        o,
        () => tools.getPrompt(params, o)
      ),
    complete: (params, o) =>
      send(
        "completion/complete",
        () => plain.complete(params),
        o,
        () => tools.complete(params, o)
      ),
    ping: (o) => send("ping", plain.ping, o, () => tools.ping(o)),
    getServerCapabilities: () => options.serverInfo()?.capabilities,
    getServerVersion: () => options.serverInfo()?.version,
    setLoggingLevel: (level) => run("logging/setLevel", tools.setLoggingLevel(level)),
    sendRootsListChanged: () => run("notifications/roots/list_changed", tools.sendRootsListChanged()),
    subscribeResource: (params, onUpdated) =>
      run(
        "resources/subscribe",
        Effect.map(tools.subscribeResource(params, onUpdated), (subscription) => ({
          uri: subscription.uri,
          unsubscribe: () => run("resources/unsubscribe", subscription.unsubscribe())
        }))
      ),
    onListChanged: (listener) => {
      const session = options.session()
      if (session === undefined) throw new MCPManagerClosed({ serverName, operation: "onListChanged" })
      return session.onListChanged(listener)
    }
  }
}
