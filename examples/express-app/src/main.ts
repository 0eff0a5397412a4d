/**
 * An Express app with MCP tools behind one of its routes and the monitoring API next to it.
 * Listens on 127.0.0.1:9888 (PORT and HOST override); SIGINT or SIGTERM stop it cleanly.
 */
import { isMCPPoolError } from "@mcp-pool/core/Errors"
import { mcpPoolLifecycle } from "@mcp-pool/express"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import express, { type NextFunction, type Request, type Response } from "express"

const port = Number(process.env["PORT"] ?? 9888)
const host = process.env["HOST"] ?? "127.0.0.1"

// The lifecycle owns the manager: it starts with the app and ends with the server.
const pool = await mcpPoolLifecycle({
  servers: { fixture: fixtureStdioConfig() },
  defaults: { minConnections: 2, maxConnections: 4 }
})

const app = express()
app.use(express.json())

// The app's own route: call a tool of a pooled server.
app.post("/tools/:server/:tool", async (req, res) => {
  const tools = pool.manager.tools(req.params["server"] ?? "")
  const args: unknown = req.body
  const result = await tools.callTool({
    name: req.params["tool"] ?? "",
    arguments: typeof args === "object" && args !== null ? { ...args } : {}
  })
  res.json(result)
})
app.get("/", (_req, res) => {
  res.json({ app: "express-app", monitoring: "/api/v1/mcp/status" })
})

// The monitoring API under /api/v1/mcp.
app.use(pool.router())

// The library's errors are typed: an unknown server is a 404, anything else from the pool a 502.
app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (!isMCPPoolError(error)) return next(error)
  res.status(error._tag === "MCPServerNotFound" ? 404 : 502).json({ error: error.message, tag: error._tag })
})

const server = app.listen(port, host, () => {
  const address = server.address()
  const actualPort = typeof address === "object" && address !== null ? address.port : port
  console.log(`express-app listening on http://${host}:${actualPort}`)
})
pool.attach(server)
server.on("close", () => console.log("express-app stopped; MCP servers closed"))
