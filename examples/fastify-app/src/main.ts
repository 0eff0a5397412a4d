/**
 * A Fastify app with MCP tools behind one of its routes and the monitoring API next to it.
 * Listens on 127.0.0.1:9888 (PORT and HOST override); SIGINT or SIGTERM stop it cleanly.
 */
import { mcpPool } from "@mcp-pool/fastify"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import Fastify from "fastify"
import { errorHandler, notFound } from "./errors.ts"

const port = Number(process.env["PORT"] ?? 9888)
const host = process.env["HOST"] ?? "127.0.0.1"

const app = Fastify()
// The plugin owns the manager (built from these options) and closes it with the app.
await app.register(mcpPool, {
  servers: { fixture: fixtureStdioConfig() },
  defaults: { minConnections: 2, maxConnections: 4 }
})

// The app's own route: call a tool of a pooled server.
app.post<{ Params: { server: string; tool: string } }>("/tools/:server/:tool", async (request) => {
  const body: unknown = request.body
  return app.mcpPool.tools(request.params.server).callTool({
    name: request.params.tool,
    arguments: typeof body === "object" && body !== null ? { ...body } : {}
  })
})
app.get("/", async () => ({ app: "fastify-app", monitoring: "/api/v1/mcp/status" }))

// Every error is answered as JSON without a stack: an unknown route is a 404, a body that is not
// JSON a 400; the library's errors are typed (an unknown server is a 404, anything else a 502).
app.setNotFoundHandler(notFound)
app.setErrorHandler(errorHandler)

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void app.close().then(() => console.log("fastify-app stopped; MCP servers closed"))
  })
}

const address = await app.listen({ port, host })
console.log(`fastify-app listening on ${address}`)
