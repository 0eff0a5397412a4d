/**
 * Fastify 5 front end of mcp-pool: a plugin that puts the manager on the instance as
 * `mcpPool`, serves the monitoring API under a prefix, and closes what it started with the app.
 *
 * @since 0.1.0
 */
import { createMcpConnectionManager, type MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { ManagerOptions } from "@mcp-pool/core/MCPConnectionManager"
import * as MonitoringApi from "@mcp-pool/core/MonitoringApi"
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify"
import fp from "fastify-plugin"

declare module "fastify" {
  interface FastifyInstance {
    /** The connection manager registered by `@mcp-pool/fastify`. */
    mcpPool: MCPConnectionManagerPromise
  }
}

/**
 * Options of the plugin: either `manager` (made with `createMcpConnectionManager`; the app
 * keeps owning it) or the options to build one (`configPath`, `servers`, `defaults`, ...;
 * the plugin owns it and closes it in `onClose`), plus the monitoring options shared by every
 * front end. `prefix` is the plugin's own (default `/api/v1/mcp`).
 *
 * @since 0.1.0
 * @category models
 */
export type McpPoolPluginOptions = MonitoringApi.Options<FastifyRequest> &
  ({ readonly manager: MCPConnectionManagerPromise } | (ManagerOptions & { readonly manager?: undefined }))

const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const

const plugin: FastifyPluginAsync<McpPoolPluginOptions> = async (fastify, options) => {
  if (fastify.hasDecorator("mcpPool")) {
    throw new Error("@mcp-pool/fastify is already registered on this instance (fastify.mcpPool exists)")
  }
  const owned = options.manager === undefined
  const manager = options.manager ?? (await createMcpConnectionManager(options))
  fastify.decorate("mcpPool", manager)
  fastify.addHook("onClose", async () => {
    if (owned) await manager.close()
  })
  const prefix = MonitoringApi.normalizePrefix(options.prefix)
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const denied = await MonitoringApi.authorize(options.auth, request)
    const params: unknown = request.params
    const rest =
      typeof params === "object" && params !== null && "*" in params && typeof params["*"] === "string"
        ? params["*"]
        : ""
    const query: unknown = request.query
    const response =
      denied ??
      (await manager.runtime.runPromise(
        MonitoringApi.handle(
          {
            method: request.method,
            path: `/${rest}`,
            query: typeof query === "object" && query !== null ? { ...query } : {}
          },
          { healthCheckRoute: options.healthCheckRoute }
        )
      ))
    return reply
      .code(response.status)
      .headers(response.headers ?? {})
      .send(response.body)
  }
  fastify.route({ method: [...methods], url: `${prefix}/*`, handler })
}

/**
 * The plugin. Register it once per instance; a second registration fails.
 *
 * @example
 * ```ts
 * import Fastify from "fastify"
 * import mcpPool from "@mcp-pool/fastify"
 *
 * const app = Fastify()
 * await app.register(mcpPool, { configPath: "./.mcp.json", auth: (req) => req.headers.authorization === "Bearer secret" })
 * await app.listen({ port: 9888, host: "127.0.0.1" })
 * ```
 *
 * @since 0.1.0
 * @category plugins
 */
export const mcpPool = fp(plugin, { fastify: "5.x", name: "@mcp-pool/fastify" })

export default mcpPool
