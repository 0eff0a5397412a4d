/**
 * The service that owns one pool per configured MCP server: built as a `Layer` from a
 * config file, an inline config or the environment, and shut down with its scope.
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as Alerts from "./Alerts.js"
import * as Telemetry from "./internal/telemetry.js"
import type { Connection, ServerStderr } from "./Connection.js"
import {
  MCPConfigError,
  type MCPConnectionError,
  type MCPManagerClosed,
  type MCPPoolExhausted,
  type MCPServerNotFound
} from "./Errors.js"
import * as Registry from "./manager/Registry.js"
import type * as MCPConnectionPool from "./MCPConnectionPool.js"
import * as MCPHealthMonitor from "./MCPHealthMonitor.js"
import * as Metrics from "./Metrics.js"
import * as PoolConfig from "./PoolConfig.js"
import * as PooledMCPTools from "./PooledMCPTools.js"
import * as ServerConfig from "./ServerConfig.js"
import * as ServerRequests from "./ServerRequests.js"

/**
 * Where the manager finds its servers and defaults.
 *
 * - `servers`: entries in the `.mcp.json` shape (`{ name: { command, args, env } }` or
 *   `{ name: { type: "http", url, headers } }`), used instead of a file.
 * - `configPath`: a `.mcp.json` (or VS Code `mcp.json`) file.
 * - neither: `MCP_CONFIG_PATH`, else `./.mcp.json`.
 * - `defaults`: pool settings for every server, over the built-in defaults and the
 *   `MCP_POOL_*` environment variables, under each server's `"pool"` block.
 *
 * @since 0.1.0
 * @category models
 */
export interface ManagerOptions {
  readonly configPath?: string | undefined
  readonly servers?: Readonly<Record<string, unknown>> | undefined
  readonly defaults?: PoolConfig.PoolConfigInput | undefined
  /** Wait for every pool's `minConnections` before the manager is ready (default `true`). */
  readonly warmUp?: boolean | undefined
  /** Run each pool's health monitor from the start (default `true`); see `startMonitoring`. */
  readonly monitoring?: boolean | undefined
  /** Alert thresholds, cooldown and history size. */
  readonly alerts?: Alerts.Options | undefined
  /** What becomes of stdio servers' stderr: `"log"` (default, at Debug), `"inherit"` or `"ignore"`. */
  readonly serverStderr?: ServerStderr | undefined
  /**
   * Handlers for what servers ask (elicitation, sampling, roots), for every server. A server's
   * connections advertise a capability only when it has a handler for it.
   */
  readonly handlers?: ServerRequests.Handlers | undefined
  /** Each server's own handlers, by server name, over the manager's (code only, not in `.mcp.json`). */
  readonly serverHandlers?: Readonly<Record<string, ServerRequests.Handlers>> | undefined
}

/**
 * What the manager tells of one configured server.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerInfo {
  readonly name: string
  readonly transport: ServerConfig.ServerConfig["transport"]
  readonly pooled: boolean
}

/**
 * The errors of finding a server's pool: not configured, or the manager is closed.
 *
 * @since 0.1.0
 * @category models
 */
export type LookupError = MCPServerNotFound | MCPManagerClosed

/**
 * The manager's operations. After the manager closed, every operation that returns an
 * `Effect` fails with `MCPManagerClosed` and nothing starts again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The configured servers. */
  readonly servers: () => ReadonlyArray<ServerInfo>
  /** The pool of a server. */
  readonly pool: (name: string) => Effect.Effect<MCPConnectionPool.MCPConnectionPool, LookupError>
  /** Every pool, in configuration order. */
  readonly pools: () => ReadonlyArray<MCPConnectionPool.MCPConnectionPool>
  /** The pool serving a server now, read without an effect; `undefined` for an unknown name or a closed manager. */
  readonly currentPool: (name: string) => MCPConnectionPool.MCPConnectionPool | undefined
  /** A `Client` look-alike whose every call borrows a connection of the server's pool. */
  readonly getMcpTools: (name: string) => Effect.Effect<PooledMCPTools.PooledMCPTools, LookupError>
  /**
   * Pins one connection for the whole of `f`, for stateful sessions (several calls that
   * must reach the same server process or HTTP session).
   */
  readonly withConnection: <A, E, R>(
    name: string,
    f: (client: Client, connection: Connection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | LookupError | MCPConnectionError | MCPPoolExhausted, R>
  /** Pins one connection until the scope closes. */
  readonly lease: (
    name: string
  ) => Effect.Effect<Connection, LookupError | MCPConnectionError | MCPPoolExhausted, Scope.Scope>
  /**
   * Changes a server's pool settings (the highest precedence). New calls go to a new pool with
   * the new settings at once; the old one finishes the calls in flight (each up to its own
   * timeout), then closes.
   */
  readonly configureServerPool: (
    name: string,
    config: PoolConfig.PoolConfigInput
  ) => Effect.Effect<void, MCPConfigError | LookupError>
  /** A snapshot of every pool. */
  readonly stats: () => ReadonlyArray<MCPConnectionPool.Snapshot>
  /** The defaults every pool starts from (built-in < environment < `defaults` option). */
  readonly defaults: PoolConfig.PoolConfig
  /** The configuration, with every secret (env values, header values, URL credentials) redacted. */
  readonly config: () => RedactedConfig
  /** Every pool's status and the overall status (the body of `/status`). */
  readonly status: Effect.Effect<Metrics.StatusReport, MCPManagerClosed>
  /** The manager's alerts: history, live stream, subscriptions. */
  readonly alerts: Alerts.Alerts
  /** Runs one health check of a server's pool now (the body of `POST /pools/{name}/health-check`). */
  readonly healthCheck: (name: string) => Effect.Effect<MCPHealthMonitor.HealthCheckResult, LookupError>
  /** Starts the health monitor of every pool (idempotent). */
  readonly startMonitoring: Effect.Effect<void, MCPManagerClosed>
  /** Stops the health monitors; the pools keep serving. */
  readonly stopMonitoring: Effect.Effect<void>
  /** Whether the health monitors run. */
  readonly isMonitoring: () => boolean
  /** Whether the manager has closed (its scope closed): every operation is refused. */
  readonly isClosed: () => boolean
}

/**
 * The configuration as the monitoring API shows it: no secret in it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RedactedConfig {
  readonly defaults: Record<string, number | string>
  readonly servers: Record<
    string,
    ReturnType<typeof ServerConfig.redact> & { readonly pool_config: Record<string, number | string> }
  >
}

/**
 * The connection manager service.
 *
 * @since 0.1.0
 * @category services
 */
export class MCPConnectionManager extends Context.Service<MCPConnectionManager, Service>()(
  "@mcp-pool/core/MCPConnectionManager"
) {
  /**
   * A layer that builds the manager from options and closes every pool (and every server
   * process) when its scope closes.
   */
  static readonly layer = (options: ManagerOptions = {}): Layer.Layer<MCPConnectionManager, MCPConfigError> =>
    Layer.effect(MCPConnectionManager, make(options))

  /**
   * A layer that reads everything from effect `Config` (the environment, unless a
   * `ConfigProvider` says otherwise): the config file from `MCP_CONFIG_PATH` (default
   * `./.mcp.json`), `${VAR}` in it, and pool defaults from the `MCP_POOL_*` variables.
   */
  static readonly layerConfig = (
    configPath: Config.Config<Option.Option<string>> = Config.option(Config.String("MCP_CONFIG_PATH"))
  ): Layer.Layer<MCPConnectionManager, MCPConfigError> =>
    Layer.effect(
      MCPConnectionManager,
      Effect.flatMap(
        Effect.mapError(
          configPath,
          (error) =>
            new MCPConfigError({
              serverName: undefined,
              source: "environment variable MCP_CONFIG_PATH",
              path: "",
              rule: String(error)
            })
        ),
        (path) => make({ configPath: Option.getOrUndefined(path) })
      )
    )
}

const toEffect = <A>(result: Result.Result<A, MCPConfigError>): Effect.Effect<A, MCPConfigError> =>
  Effect.fromResult(result)

/** The servers, from code or a file; `${VAR}` and `MCP_CONFIG_PATH` through effect `Config`. */
const loadServers = (
  options: ManagerOptions
): Effect.Effect<ReadonlyArray<ServerConfig.ServerConfig>, MCPConfigError> =>
  ServerConfig.load({ servers: options.servers, configPath: options.configPath })

/** Every server's settings, validated before anything starts, and the resolver for later changes. */
const resolveConfigs = (options: ManagerOptions, servers: ReadonlyArray<ServerConfig.ServerConfig>) =>
  Effect.gen(function* () {
    const fromEnv = yield* PoolConfig.fromEnv
    const defaultsInput =
      options.defaults === undefined
        ? {}
        : yield* toEffect(PoolConfig.validateInput(options.defaults, { source: "options.defaults", path: "defaults" }))
    const defaults = yield* toEffect(
      PoolConfig.resolve([fromEnv, defaultsInput], { source: "options.defaults", path: "defaults" })
    )
    const resolveFor = (server: ServerConfig.ServerConfig, overrides: PoolConfig.PoolConfigInput) =>
      toEffect(
        PoolConfig.resolve([fromEnv, defaultsInput, server.pool, overrides], {
          source: server.origin?.source ?? "the configuration",
          path: server.origin?.poolPath ?? `${server.name}.pool`,
          serverName: server.name
        })
      )
    const configs = yield* Effect.forEach(servers, (server) => resolveFor(server, {}))
    // A misspelt variable would be ignored in silence: say so, and what was probably meant.
    for (const { name, suggestion } of yield* PoolConfig.unknownVariables) {
      yield* Effect.logWarning(
        `environment variable ${name} is not a setting of mcp-pool and is ignored${suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`}`
      )
    }
    return { defaults, configs, resolveFor }
  })

const invalid = (path: string, rule: string, serverName?: string) =>
  Effect.fail(new MCPConfigError({ serverName, source: "the manager's options", path, rule }))

/**
 * Checks the handlers given in code: each one a function of a known kind, each server named
 * in `serverHandlers` configured.
 */
const checkHandlers = (
  options: ManagerOptions,
  servers: ReadonlyArray<ServerConfig.ServerConfig>
): Effect.Effect<void, MCPConfigError> => {
  const groups: Array<[string, unknown, string | undefined]> = [["handlers", options.handlers, undefined]]
  const own: unknown = options.serverHandlers
  if (own !== undefined) {
    if (typeof own !== "object" || own === null) return invalid("serverHandlers", "must be an object of server names")
    const names = servers.map((server) => server.name)
    for (const [name, handlers] of Object.entries(own)) {
      if (!names.includes(name)) {
        return invalid(`serverHandlers.${name}`, `is not a configured server (known: ${names.join(", ")})`, name)
      }
      groups.push([`serverHandlers.${name}`, handlers, name])
    }
  }
  for (const [path, handlers, serverName] of groups) {
    if (handlers === undefined) continue
    if (typeof handlers !== "object" || handlers === null) {
      return invalid(path, `must be an object of handlers { ${ServerRequests.handlerNames.join(", ")} }`, serverName)
    }
    for (const [kind, handler] of Object.entries(handlers)) {
      if (!ServerRequests.handlerNames.includes(kind as keyof ServerRequests.Handlers)) {
        return invalid(
          `${path}.${kind}`,
          `is not a kind of handler (known: ${ServerRequests.handlerNames.join(", ")})`,
          serverName
        )
      }
      if (handler !== undefined && typeof handler !== "function")
        return invalid(`${path}.${kind}`, "must be a function", serverName)
    }
  }
  return Effect.void
}

/**
 * Builds the manager: reads the configuration, validates every pool's settings (failing
 * with `MCPConfigError` before anything starts), opens the pools in parallel, and
 * closes them (in parallel) when the current scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ManagerOptions = {}): Effect.Effect<Service, MCPConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const servers = yield* loadServers(options)
    yield* checkHandlers(options, servers)
    const { defaults, configs, resolveFor } = yield* resolveConfigs(options, servers)
    const alerts = yield* Alerts.make(options.alerts)
    const registry = yield* Registry.make({
      servers,
      configs,
      alerts,
      resolve: resolveFor,
      serverStderr: options.serverStderr,
      handlers: options.handlers,
      serverHandlers: options.serverHandlers
    })
    if (options.warmUp !== false) {
      yield* Effect.forEach(registry.entries.values(), (entry) => entry.pool.warmUp, {
        concurrency: "unbounded",
        discard: true
      })
    }
    // Nothing can have closed the registry yet.
    if (options.monitoring !== false) yield* Effect.orDie(Registry.startMonitoring(registry))
    return operations(registry, defaults)
  })

/** The manager's operations over its pools. */
const operations = (registry: Registry.Registry, defaults: PoolConfig.PoolConfig): Service => {
  const { entries, alerts } = registry
  const pool = (name: string) => Effect.map(Registry.lookup(registry, name, "pool"), (entry) => entry.pool)
  const currentPool = (name: string) => (registry.closed ? undefined : entries.get(name)?.pool)
  return {
    servers: () =>
      Array.from(entries.values(), (entry) => ({
        name: entry.server.name,
        transport: entry.server.transport,
        pooled: true
      })),
    pool,
    pools: () => Array.from(entries.values(), (entry) => entry.pool),
    currentPool,
    getMcpTools: (name) =>
      Effect.map(Registry.lookup(registry, name, "getMcpTools"), () =>
        PooledMCPTools.make(name, pool(name), () => currentPool(name))
      ),
    withConnection: (name, f) =>
      Effect.flatMap(pool(name), (p) => p.withConnection((connection) => f(connection.client, connection))),
    lease: (name) => Effect.flatMap(pool(name), (p) => p.lease),
    configureServerPool: (name, input) => Registry.reconfigure(registry, name, input),
    stats: () => Array.from(entries.values(), (entry) => entry.pool.snapshot()),
    defaults,
    config: () => ({
      defaults: PoolConfig.toSnakeCase(defaults),
      servers: Object.fromEntries(
        Array.from(entries.values(), (entry) => [
          entry.server.name,
          { ...ServerConfig.redact(entry.server), pool_config: PoolConfig.toSnakeCase(entry.pool.config) }
        ])
      )
    }),
    status: Clock.clockWith((clock) =>
      registry.closed
        ? Effect.fail(Registry.closedError("status"))
        : Effect.sync(() =>
            Metrics.statusReport(
              Array.from(entries.values(), (entry) => entry.pool),
              clock.currentTimeMillisUnsafe()
            )
          )
    ),
    alerts,
    healthCheck: (name) =>
      Effect.flatMap(Registry.lookup(registry, name, "healthCheck"), (entry) => MCPHealthMonitor.checkNow(entry.pool)),
    startMonitoring: Registry.startMonitoring(registry),
    stopMonitoring: Registry.stopMonitoring(registry),
    isMonitoring: () => registry.monitoring,
    isClosed: () => registry.closed
  }
}

/**
 * The Promise flavour of a server's pooled tools on a manager, each call started by
 * `runFork` (for example `Effect.runForkWith(context)` over the manager's context). The
 * pool is looked up on every call, so a pool rebuilt by `configureServerPool` is used.
 *
 * @since 0.1.0
 * @category constructors
 */
export const promiseTools = (
  service: Service,
  name: string,
  runFork: PooledMCPTools.RunFork
): PooledMCPTools.PooledMCPToolsPromise => {
  const currentPool = () => service.currentPool(name)
  const { fiberless, tracing } = Telemetry.promiseTracing(runFork)
  return PooledMCPTools.toPromise(PooledMCPTools.make(name, service.pool(name), currentPool), {
    runFork,
    serverInfo: () => currentPool()?.serverInfo(),
    session: () => currentPool()?.session,
    now: fiberless ? currentPool : undefined,
    tracing
  })
}
