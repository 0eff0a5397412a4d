/**
 * Express 5 front end of mcp-pool: a `Router` serving the monitoring API, and a lifecycle
 * helper that starts the manager with the app and closes it with the server.
 *
 * @since 0.1.0
 */
import type { Server } from "node:http"
import { createMcpConnectionManager, type MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { ManagerOptions } from "@mcp-pool/core/MCPConnectionManager"
import * as MonitoringApi from "@mcp-pool/core/MonitoringApi"
import { type NextFunction, type Request, type Response, Router } from "express"

/**
 * Options of the router: route prefix (default `/api/v1/mcp`), an auth hook that sees the
 * Express request, and whether `POST /pools/{server_name}/health-check` is served.
 *
 * @since 0.1.0
 * @category models
 */
export type McpMonitoringRouterOptions = MonitoringApi.Options<Request>

const isManager = (u: unknown): u is MCPConnectionManagerPromise =>
  typeof u === "object" && u !== null && "runtime" in u && "tools" in u && "close" in u

/**
 * A `Router` answering the monitoring API under `prefix`; mount it with `app.use(router)`.
 * Takes a manager from `createMcpConnectionManager` (or a promise of one). Errors that are
 * not answers of the API go to `next(err)`.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { createMcpConnectionManager } from "@mcp-pool/core"
 * import { mcpMonitoringRouter } from "@mcp-pool/express"
 *
 * const manager = await createMcpConnectionManager({ configPath: "./.mcp.json" })
 * const app = express()
 * app.use(mcpMonitoringRouter(manager, { auth: (req) => req.get("authorization") === "Bearer secret" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const mcpMonitoringRouter = (
  manager: MCPConnectionManagerPromise | Promise<MCPConnectionManagerPromise>,
  options: McpMonitoringRouterOptions = {}
): Router => {
  const router = Router()
  const prefix = MonitoringApi.normalizePrefix(options.prefix)
  const handler = (req: Request, res: Response, next: NextFunction) => {
    const answer = async () => {
      const denied = await MonitoringApi.authorize(options.auth, req)
      const response =
        denied ??
        (await (
          await manager
        ).runtime.runPromise(
          MonitoringApi.handle(
            { method: req.method, path: req.path, query: req.query },
            { healthCheckRoute: options.healthCheckRoute }
          )
        ))
      res.status(response.status)
      if (response.headers !== undefined) res.set(response.headers)
      res.json(response.body)
    }
    answer().catch(next)
  }
  router.use(prefix === "" ? "/" : prefix, handler)
  return router
}

/**
 * The manager of an app and what ties it to the app's server.
 *
 * @since 0.1.0
 * @category models
 */
export interface McpPoolLifecycle {
  readonly manager: MCPConnectionManagerPromise
  /** The monitoring router over this manager. */
  readonly router: (options?: McpMonitoringRouterOptions) => Router
  /**
   * Ends the pool with the server: when `server` closes, monitoring stops and a manager the
   * lifecycle created is closed. With `signals` (default SIGINT and SIGTERM), those signals
   * close the server (and its idle keep-alive sockets), so the process can end on its own.
   */
  readonly attach: (server: Server, options?: { readonly signals?: ReadonlyArray<NodeJS.Signals> }) => void
  /** Stops monitoring and closes a manager the lifecycle created. Idempotent. */
  readonly close: () => Promise<void>
}

/**
 * Starts the pool for an Express app (the counterpart of a FastAPI lifespan): builds a
 * manager from options (and owns it), or takes one made with `createMcpConnectionManager`;
 * then starts its health monitoring.
 *
 * @example
 * ```ts
 * import express from "express"
 * import { mcpPoolLifecycle } from "@mcp-pool/express"
 *
 * const pool = await mcpPoolLifecycle({ configPath: "./.mcp.json" })
 * const app = express()
 * app.use(pool.router())
 * pool.attach(app.listen(9888, "127.0.0.1"))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const mcpPoolLifecycle = async (
  managerOrOptions: MCPConnectionManagerPromise | ManagerOptions = {}
): Promise<McpPoolLifecycle> => {
  const owned = !isManager(managerOrOptions)
  const manager = isManager(managerOrOptions) ? managerOrOptions : await createMcpConnectionManager(managerOrOptions)
  await manager.startMonitoring()
  let closing: Promise<void> | undefined
  const cleanups: Array<() => void> = []
  const close = () =>
    (closing ??= (async () => {
      for (const cleanup of cleanups.splice(0)) cleanup()
      if (owned) await manager.close()
      else await manager.stopMonitoring()
    })())
  const onClose = () => {
    void close()
  }
  return {
    manager,
    router: (options) => mcpMonitoringRouter(manager, options),
    attach: (server, options = {}) => {
      server.once("close", onClose)
      cleanups.push(() => server.off("close", onClose))
      for (const signal of options.signals ?? ["SIGINT", "SIGTERM"]) {
        const onSignal = () => {
          server.close()
          server.closeIdleConnections()
        }
        process.once(signal, onSignal)
        cleanups.push(() => process.off(signal, onSignal))
      }
    },
    close
  }
}
