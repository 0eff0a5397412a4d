/**
 * The pools of a manager: one entry per server, each pool in a scope of its own under the
 * manager's, their health monitors, lookups, reconfiguring (a drain) and closing.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberMap from "effect/FiberMap"
import type * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import type * as Alerts from "../Alerts.js"
import type { ServerStderr } from "../Connection.js"
import { type MCPConfigError, MCPManagerClosed, MCPServerNotFound } from "../Errors.js"
import * as MCPConnectionPool from "../MCPConnectionPool.js"
import * as MCPHealthMonitor from "../MCPHealthMonitor.js"
import * as PoolConfig from "../PoolConfig.js"
import type * as ServerConfig from "../ServerConfig.js"
import * as ServerRequests from "../ServerRequests.js"
import * as Hub from "../session/Hub.js"

/** One configured server: its pool now, and the settings given to `configureServerPool`. */
export interface Entry {
  readonly server: ServerConfig.ServerConfig
  /** The server's session layer, which outlives each of its pools. */
  readonly hub: Hub.Hub
  overrides: PoolConfig.PoolConfigInput
  pool: MCPConnectionPool.MCPConnectionPool
  scope: Scope.Closeable
}

/** The errors of finding a server's pool: not configured, or the manager is closed. */
export type LookupError = MCPServerNotFound | MCPManagerClosed

/** Resolves a server's settings over the defaults and the environment, with `overrides` on top. */
export type Resolve = (
  server: ServerConfig.ServerConfig,
  overrides: PoolConfig.PoolConfigInput
) => Effect.Effect<PoolConfig.PoolConfig, MCPConfigError>

/** The state of a manager's pools. */
export interface Registry {
  /** In configuration order. */
  readonly entries: Map<string, Entry>
  /** The parent of every pool's scope; it closes its children in parallel. */
  readonly scopes: Scope.Closeable
  readonly monitors: FiberMap.FiberMap<string>
  readonly alerts: Alerts.Alerts
  readonly resolve: Resolve
  readonly serverStderr: ServerStderr | undefined
  closed: boolean
  monitoring: boolean
}

/** The error of an operation refused because the manager closed. */
export const closedError = (operation: string, serverName = ""): MCPManagerClosed =>
  new MCPManagerClosed({ serverName, operation })

const startPool = (
  registry: Registry,
  server: ServerConfig.ServerConfig,
  hub: Hub.Hub,
  config: PoolConfig.PoolConfig
) =>
  Effect.gen(function* () {
    const scope = yield* Scope.fork(registry.scopes)
    const pool = yield* MCPConnectionPool.make({
      server,
      config,
      hub,
      alerts: registry.alerts,
      serverStderr: registry.serverStderr
    }).pipe(Scope.provide(scope))
    return { pool, scope }
  })

/**
 * Opens a pool per server in the current scope. Every pool's scope is a child of the
 * registry's, which is a child of the current scope: no pool can outlive the manager, even one
 * started between two finalizers. Closing the current scope refuses everything from then on,
 * stops the monitors and closes every pool in parallel.
 */
export const make = (options: {
  readonly servers: ReadonlyArray<ServerConfig.ServerConfig>
  readonly configs: ReadonlyArray<PoolConfig.PoolConfig>
  readonly alerts: Alerts.Alerts
  readonly resolve: Resolve
  readonly serverStderr?: ServerStderr | undefined
  /** Handlers for what servers ask: the manager's, and each server's own (by name) over them. */
  readonly handlers?: ServerRequests.Handlers | undefined
  readonly serverHandlers?: Readonly<Record<string, ServerRequests.Handlers>> | undefined
}): Effect.Effect<Registry, never, Scope.Scope> =>
  Effect.gen(function* () {
    const managerScope = yield* Effect.scope
    const registry: Registry = {
      entries: new Map(),
      scopes: yield* Scope.fork(managerScope, "parallel"),
      monitors: yield* FiberMap.make<string>(),
      alerts: options.alerts,
      resolve: options.resolve,
      serverStderr: options.serverStderr,
      closed: false,
      monitoring: false
    }
    yield* Effect.forEach(
      options.servers,
      (server, index) => {
        const config = options.configs[index]
        if (config === undefined) return Effect.die(`no settings resolved for server "${server.name}"`)
        return Effect.gen(function* () {
          const own = options.serverHandlers
          const handlers = ServerRequests.merge(
            options.handlers,
            own !== undefined && Object.hasOwn(own, server.name) ? own[server.name] : undefined
          )
          const hub = yield* Hub.make({ server, handlers })
          const { pool, scope } = yield* startPool(registry, server, hub, config)
          registry.entries.set(server.name, { server, hub, overrides: {}, pool, scope })
        })
      },
      { discard: true }
    )
    // Registered last, so it runs first when the manager closes.
    yield* Scope.addFinalizer(managerScope, close(registry))
    return registry
  })

/** Refuses everything from now on, stops the monitors, closes every pool in parallel. */
const close = (registry: Registry): Effect.Effect<void> =>
  Effect.suspend(() => {
    registry.closed = true
    registry.monitoring = false
    return Effect.andThen(FiberMap.clear(registry.monitors), Scope.close(registry.scopes, Exit.void))
  })

/** A server's entry, unless the manager closed or no server has that name. */
export const lookup = (registry: Registry, name: string, operation: string): Effect.Effect<Entry, LookupError> =>
  Effect.suspend((): Effect.Effect<Entry, LookupError> => {
    if (registry.closed) return Effect.fail(closedError(operation, name))
    const entry = registry.entries.get(name)
    if (entry !== undefined) return Effect.succeed(entry)
    return Effect.fail(new MCPServerNotFound({ serverName: name, knownServers: Array.from(registry.entries.keys()) }))
  })

const startMonitor = (registry: Registry, name: string, entry: Entry): Effect.Effect<void> =>
  Effect.asVoid(FiberMap.run(registry.monitors, name, MCPHealthMonitor.run(entry.pool)))

/** Starts the health monitor of every pool (one per pool; starting again replaces none). */
export const startMonitoring = (registry: Registry): Effect.Effect<void, MCPManagerClosed> =>
  Effect.suspend(() => {
    if (registry.closed) return Effect.fail(closedError("startMonitoring"))
    registry.monitoring = true
    return Effect.forEach(
      registry.entries,
      ([name, entry]) =>
        FiberMap.hasUnsafe(registry.monitors, name) ? Effect.void : startMonitor(registry, name, entry),
      { discard: true }
    )
  })

/** Stops every health monitor; the pools keep serving. */
export const stopMonitoring = (registry: Registry): Effect.Effect<void> =>
  Effect.suspend(() => {
    registry.monitoring = false
    return FiberMap.clear(registry.monitors)
  })

/**
 * Rebuilds a server's pool with new settings (over those given before). New calls go to the
 * new pool at once; the old one forwards the borrowers in its line, finishes its calls in
 * flight, then closes, without holding the caller.
 */
export const reconfigure = (
  registry: Registry,
  name: string,
  input: PoolConfig.PoolConfigInput
): Effect.Effect<void, MCPConfigError | LookupError> =>
  Effect.gen(function* () {
    const entry = yield* lookup(registry, name, "configureServerPool")
    const validated = yield* fromResult(
      PoolConfig.validateInput(input, { source: "configureServerPool", path: name, serverName: name })
    )
    const overrides = { ...entry.overrides, ...validated }
    const config = yield* registry.resolve(entry.server, overrides)
    const started = yield* startPool(registry, entry.server, entry.hub, config)
    const previous = { pool: entry.pool, scope: entry.scope }
    entry.overrides = overrides
    entry.pool = started.pool
    entry.scope = started.scope
    registry.alerts.reset(name)
    // Replaces (interrupts) the old pool's monitor.
    if (registry.monitoring) yield* startMonitor(registry, name, entry)
    yield* Effect.forkIn(
      Effect.andThen(previous.pool.drain(started.pool), Scope.close(previous.scope, Exit.void)),
      registry.scopes
    )
  })

const fromResult = <A>(result: Result.Result<A, MCPConfigError>): Effect.Effect<A, MCPConfigError> =>
  Effect.fromResult(result)
