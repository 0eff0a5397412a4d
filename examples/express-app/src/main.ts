/**
 * An Express app with MCP tools behind one of its routes and the monitoring API next to it.
 * Listens on 127.0.0.1:9888 (PORT and HOST override); SIGINT or SIGTERM stop it cleanly.
 */
import { mcpPoolLifecycle } from "@mcp-pool/express"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import express from "express"
import { errorHandler, notFound } from "./errors.ts"

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

// Every error is answered as JSON without a stack: an unknown route is a 404, a body that is not
// JSON a 400; the library's errors are typed (an unknown server is a 404, anything else a 502).
app.use(notFound)
app.use(errorHandler)

const server = app.listen(port, host, () => {
  const address = server.address()
  const actualPort = typeof address === "object" && address !== null ? address.port : port
  console.log(`express-app listening on http://${host}:${actualPort}`)
})
pool.attach(server)
server.on("close", () => console.log("express-app stopped; MCP servers closed"))
