/**
 * The Promise front door: the same manager and pools for code that does not use Effect.
 * Every rejection is one of the library's tagged errors (an `Error` with `_tag` and `message`).
 *
 * @since 0.1.0
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import * as Alerts from "./Alerts.js"
import * as Cause from "effect/Cause"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Result from "effect/Result"
import { MCPAborted, type MCPConfigError, MCPManagerClosed, MCPServerNotFound } from "./Errors.js"
import {
  MCPConnectionManager,
  type ManagerOptions,
  promiseTools,
  type RedactedConfig,
  type ServerInfo
} from "./MCPConnectionManager.js"
import * as MCPConnectionPool from "./MCPConnectionPool.js"
import type { HealthCheckResult } from "./MCPHealthMonitor.js"
import * as Metrics from "./Metrics.js"
import type { PoolConfigInput } from "./PoolConfig.js"
import * as Logging from "./internal/promiseLogging.js"
import * as PooledMCPTools from "./PooledMCPTools.js"

/**
 * A connection manager for Promise callers.
 *
 * @since 0.1.0
 * @category models
 */
export interface MCPConnectionManagerPromise {
  /** A `Client` look-alike for one server; throws `MCPServerNotFound` for an unknown name. */
  readonly tools: (name: string) => PooledMCPTools.PooledMCPToolsPromise
  /** Pins one connection while `f` runs (for stateful sessions) and returns it after. */
  readonly withConnection: <A>(name: string, f: (client: Client) => Promise<A>) => Promise<A>
  /** Changes a server's pool settings; rejects with `MCPConfigError` for a bad value. */
  readonly configureServerPool: (name: string, config: PoolConfigInput) => Promise<void>
  /** `{servers: [{name, transport, pooled}]}` */
  readonly servers: () => Promise<{ readonly servers: ReadonlyArray<ServerInfo> }>
  /** `{pools: [PoolMetrics]}` */
  readonly pools: () => Promise<{ readonly pools: ReadonlyArray<Metrics.PoolMetrics> }>
  /** One pool's figures with its redacted config and its connections. */
  readonly pool: (name: string) => Promise<Metrics.PoolDetails>
  /** `{pool_metrics, global_metrics}` */
  readonly metricsSummary: () => Promise<Metrics.MetricsSummary>
  /** Defaults and per-server configuration, every secret redacted. */
  readonly config: () => Promise<RedactedConfig>
  /** `{status, timestamp, total_pools, pools: {name: status}}` */
  readonly status: () => Promise<Metrics.StatusReport>
  /**
   * `{alerts: [...]}`, newest first; rejects with `MCPInvalidQuery` when `severity` is not
   * info, warning or critical, or `limit` is not an integer from 1 to 1000.
   */
  readonly alerts: (query?: {
    readonly severity?: Alerts.Severity | undefined
    readonly limit?: number | undefined
  }) => Promise<{ readonly alerts: ReadonlyArray<Alerts.Alert> }>
  /** Calls `listener` with every new alert; returns the function that stops it. */
  readonly onAlert: (listener: (alert: Alerts.Alert) => void) => () => void
  /** Runs one health check of a server's pool now: `{server_name, healthy, checked, failed, duration_ms}`. */
  readonly healthCheck: (name: string) => Promise<HealthCheckResult>
  /** Starts the pools' health monitors (they start with the manager unless `monitoring: false`). */
  readonly startMonitoring: () => Promise<void>
  /** Stops the health monitors; the pools keep serving. */
  readonly stopMonitoring: () => Promise<void>
  /** Whether the health monitors run. */
  readonly isMonitoring: () => boolean
  /** Ends every connection and every server process. Idempotent. */
  readonly close: () => Promise<void>
  /** The manager's Effect runtime, for mixing both worlds. */
  readonly runtime: ManagedRuntime.ManagedRuntime<MCPConnectionManager, MCPConfigError>
}

const closedError = (operation: string, serverName = "") => new MCPManagerClosed({ serverName, operation })

/**
 * How much the manager logs, least to most.
 *
 * @since 0.1.0
 * @category models
 */
export type PromiseLogLevel = "none" | "error" | "warning" | "info" | "debug" | "trace"

/**
 * One log line, as a `logger` callback receives it.
 *
 * @since 0.1.0
 * @category models
 */
export interface LogEntry {
  readonly level: Exclude<PromiseLogLevel, "none"> | "fatal"
  readonly message: string
  /** The line's annotations: `server`, `connection`, `stream` (`stderr` for a server's own lines), ... */
  readonly annotations: Readonly<Record<string, unknown>>
  readonly date: Date
  /** The failure the line is about, pretty-printed, when it has one. */
  readonly cause?: string | undefined
}

/**
 * Options of the Promise API's managers: those of every manager (`ManagerOptions`), and how
 * it logs, since a Promise program has no effect `Logger` of its own to provide.
 *
 * @since 0.1.0
 * @category models
 */
export interface PromiseManagerOptions extends ManagerOptions {
  /**
   * The least severe lines logged (default `"info"`; a server's stderr lines are `"debug"`).
   * `"none"` logs nothing.
   */
  readonly logLevel?: PromiseLogLevel | undefined
  /** Receives every line instead of the console (one object per line, see `LogEntry`). */
  readonly logger?: ((entry: LogEntry) => void) | undefined
}

/**
 * Creates a manager and waits until its pools are warm. With neither `configPath` nor
 * `servers` it reads `./.mcp.json` (or the file named by `MCP_CONFIG_PATH`). Rejects with
 * `MCPConfigError` when the configuration is invalid, having started nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createMcpConnectionManager = async (
  options: PromiseManagerOptions = {}
): Promise<MCPConnectionManagerPromise> => {
  const { logLevel, logger, ...managerOptions } = options
  const runtime = ManagedRuntime.make(
    MCPConnectionManager.layer(managerOptions).pipe(
      // The environment as it is now: effect's default provider keeps the first one it read.
      Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv())),
      // Kept in the runtime's context, so that the calls forked on it log the same way.
      Layer.provideMerge(Logging.layer({ logLevel, logger }))
    )
  )
  const built = await runtime.runPromiseExit(Effect.context<MCPConnectionManager>())
  if (Exit.isFailure(built)) {
    await runtime.dispose()
    throw squash(built)
  }
  // Nothing can interrupt the fiber behind a returned Promise: requests need no AbortSignal.
  const context = Context.add(built.value, MCPConnectionPool.Uninterruptible, true)
  const service = Context.get(context, MCPConnectionManager)
  const runFork: PooledMCPTools.RunFork = Effect.runForkWith(context)
  let closing: Promise<void> | undefined
  const isClosed = () => closing !== undefined || service.isClosed()
  const run = <A, E>(operation: string, effect: Effect.Effect<A, E>): Promise<A> =>
    isClosed()
      ? Promise.reject(closedError(operation))
      : PooledMCPTools.runPromise(runFork, effect, () =>
          isClosed()
            ? closedError(operation)
            : new MCPAborted({ serverName: "", method: operation, reason: "interrupted" })
        )
  /** A monitoring read: its answer now, or `MCPManagerClosed` once the manager is closing. */
  const read = <A>(operation: string, answer: () => A): Promise<A> =>
    isClosed() ? Promise.reject(closedError(operation)) : Promise.resolve(answer())
  // A server's tools are made once: they look their pool up on every call, and a manager's
  // servers never change.
  const toolsByName = new Map<string, PooledMCPTools.PooledMCPToolsPromise>()
  return {
    tools: (name) => {
      const made = toolsByName.get(name)
      if (made !== undefined) return made
      if (isClosed()) return promiseTools(service, name, runFork)
      if (!service.servers().some((server) => server.name === name)) {
        throw new MCPServerNotFound({ serverName: name, knownServers: service.servers().map((s) => s.name) })
      }
      const tools = promiseTools(service, name, runFork)
      toolsByName.set(name, tools)
      return tools
    },
    withConnection: (name, f) =>
      run(
        "withConnection",
        service.withConnection(name, (client) =>
          Effect.promise(() =>
            f(client).then(
              (value) => ({ ok: true as const, value }),
              (error: unknown) => ({ ok: false as const, error })
            )
          )
        )
      ).then((outcome) => {
        if (outcome.ok) return outcome.value
        throw outcome.error
      }),
    configureServerPool: (name, config) => run("configureServerPool", service.configureServerPool(name, config)),
    servers: () => read("servers", () => ({ servers: service.servers() })),
    pools: () => read("pools", () => ({ pools: service.pools().map(Metrics.poolMetrics) })),
    pool: (name) =>
      run("pool", service.pool(name)).then((pool) => Metrics.poolDetails(pool, service.config().servers[name])),
    metricsSummary: () => read("metricsSummary", () => Metrics.summary(service.pools())),
    config: () => read("config", () => service.config()),
    status: () => run("status", service.status),
    alerts: (query = {}) => {
      const validated = Alerts.validateQuery(query)
      if (Result.isFailure(validated)) return Promise.reject(validated.failure)
      return read("alerts", () => ({ alerts: service.alerts.history(validated.success) }))
    },
    onAlert: (listener) => service.alerts.subscribe(listener),
    healthCheck: (name) => run("healthCheck", service.healthCheck(name)),
    startMonitoring: () => run("startMonitoring", service.startMonitoring),
    stopMonitoring: () => run("stopMonitoring", service.stopMonitoring),
    isMonitoring: () => !isClosed() && service.isMonitoring(),
    close: () => (closing ??= runtime.dispose()),
    runtime
  }
}

const squash = <A, E>(exit: Exit.Failure<A, E>): unknown => Cause.squash(exit.cause)

let processWide: Promise<MCPConnectionManagerPromise> | undefined

/**
 * The process-wide manager: created on the first call (with these options, or from
 * `./.mcp.json` / `MCP_CONFIG_PATH`), then the same one on every later call.
 *
 * @since 0.1.0
 * @category constructors
 */
export const getMcpConnectionManager = (options?: PromiseManagerOptions): Promise<MCPConnectionManagerPromise> => {
  if (processWide === undefined) {
    const created = createMcpConnectionManager(options)
    processWide = created
    // A failed creation is not cached: the next call tries again.
    created.catch(() => {
      if (processWide === created) processWide = undefined
    })
  }
  return processWide
}

/**
 * The tools of one server of the process-wide manager. It returns at once; the first call
 * creates the manager if needed, and rejects with `MCPServerNotFound` for an unknown name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createPooledMcpTools = (name: string): PooledMCPTools.PooledMCPToolsPromise => {
  // The tools of the manager that is the process-wide one now: a manager shut down and
  // created again is followed, never a closed one.
  let resolved:
    { readonly manager: MCPConnectionManagerPromise; readonly tools: PooledMCPTools.PooledMCPToolsPromise } | undefined
  const tools = async () => {
    const manager = await getMcpConnectionManager()
    if (resolved?.manager !== manager) resolved = { manager, tools: manager.tools(name) }
    return resolved.tools
  }
  return {
    serverName: name,
    listTools: async (params, o) => (await tools()).listTools(params, o),
    callTool: async (params, schema, o) => (await tools()).callTool(params, schema, o),
    listResources: async (params, o) => (await tools()).listResources(params, o),
    listResourceTemplates: async (params, o) => (await tools()).listResourceTemplates(params, o),
    readResource: async (params, o) => (await tools()).readResource(params, o),
    listPrompts: async (params, o) => (await tools()).listPrompts(params, o),
    getPrompt: async (params, o) => (await tools()).getPrompt(params, o),
    complete: async (params, o) => (await tools()).complete(params, o),
    ping: async (o) => (await tools()).ping(o),
    getServerCapabilities: () => resolved?.tools.getServerCapabilities(),
    getServerVersion: () => resolved?.tools.getServerVersion(),
    setLoggingLevel: async (level) => (await tools()).setLoggingLevel(level),
    sendRootsListChanged: async () => (await tools()).sendRootsListChanged(),
    subscribeResource: async (params, onUpdated) => (await tools()).subscribeResource(params, onUpdated),
    // Listens on the manager of the moment (created if needed); a manager created after a
    // shutdown is not followed: listen again.
    onListChanged: (listener) => {
      let stop: (() => void) | undefined
      let stopped = false
      tools().then(
        (current) => {
          if (!stopped) stop = current.onListChanged(listener)
        },
        () => undefined
      )
      return () => {
        stopped = true
        stop?.()
      }
    }
  }
}

/**
 * Closes the process-wide manager, ending every connection and server process; the next
 * `getMcpConnectionManager()` creates a new one.
 *
 * @since 0.1.0
 * @category destructors
 */
export const shutdownMcpConnectionManager = async (): Promise<void> => {
  const current = processWide
  processWide = undefined
  if (current === undefined) return
  const manager = await current.catch(() => undefined)
  await manager?.close()
}

/**
 * Starts the health monitors of the process-wide manager, creating it if needed (with these
 * options, or from `./.mcp.json` / `MCP_CONFIG_PATH`). Idempotent.
 *
 * @since 0.1.0
 * @category monitoring
 */
export const startMcpMonitoring = async (options?: PromiseManagerOptions): Promise<MCPConnectionManagerPromise> => {
  const manager = await getMcpConnectionManager(options)
  await manager.startMonitoring()
  return manager
}

/**
 * Stops the health monitors of the process-wide manager, if there is one; its pools keep serving.
 *
 * @since 0.1.0
 * @category monitoring
 */
export const stopMcpMonitoring = async (): Promise<void> => {
  const current = processWide
  if (current === undefined) return
  const manager = await current.catch(() => undefined)
  await manager?.stopMonitoring()
}
