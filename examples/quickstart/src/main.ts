/**
 * Quickstart: pools for three MCP servers (a fixture over stdio and over Streamable HTTP,
 * and @modelcontextprotocol/server-everything over stdio), a few hundred concurrent tool
 * calls through them, and a table per pool. Exits 0 and leaves no process behind.
 *
 * Run it with `pnpm demo` from the repository root.
 */
import { createMcpConnectionManager, type McpConnectionManager } from "@mcp-pool/core"
import {
  descendantsOf,
  fixtureStdioConfig,
  serverEverythingStdioConfig,
  startHttpFixtureServer
} from "@mcp-pool/test-servers"

const CALLS_PER_POOL = 300

// The same shape as a `.mcp.json` file; `${FIXTURE_HTTP_URL}` is expanded from the environment.
const fixture = fixtureStdioConfig()
const everything = serverEverythingStdioConfig()
const mcpJson = {
  mcpServers: {
    "fixture-stdio": { command: fixture.command, args: fixture.args, pool: { minConnections: 2, maxConnections: 4 } },
    "fixture-http": { type: "http", url: "${FIXTURE_HTTP_URL}", pool: { minConnections: 2, maxConnections: 4 } },
    everything: { command: everything.command, args: everything.args, pool: { minConnections: 2, maxConnections: 4 } }
  }
}

const callFor: Record<string, { readonly name: string; readonly arguments: (i: number) => Record<string, unknown> }> = {
  "fixture-stdio": { name: "echo", arguments: (i) => ({ text: `hello ${i}` }) },
  "fixture-http": { name: "add", arguments: (i) => ({ a: i, b: 1 }) },
  everything: { name: "echo", arguments: (i) => ({ message: `hello ${i}` }) }
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0)

const run = async (manager: McpConnectionManager, server: string) => {
  const tools = manager.tools(server)
  const call = callFor[server]
  if (call === undefined) throw new Error(`no call planned for ${server}`)
  const latencies: Array<number> = []
  let failed = 0
  await Promise.all(
    Array.from({ length: CALLS_PER_POOL }, async (_, i) => {
      const started = performance.now()
      try {
        await tools.callTool({ name: call.name, arguments: call.arguments(i) })
      } catch (error) {
        failed++
        console.error(`${server}: ${error instanceof Error ? error.message : String(error)}`)
      } finally {
        latencies.push(performance.now() - started)
      }
    })
  )
  return { latencies: latencies.sort((a, b) => a - b), failed }
}

const main = async () => {
  const http = await startHttpFixtureServer()
  process.env["FIXTURE_HTTP_URL"] = http.url
  let manager: McpConnectionManager | undefined
  try {
    const warmStart = performance.now()
    manager = await createMcpConnectionManager({ servers: mcpJson.mcpServers })
    console.log(`pools warm in ${(performance.now() - warmStart).toFixed(0)} ms\n`)
    const ready = manager
    const results = await Promise.all(
      Object.keys(mcpJson.mcpServers).map(async (server) => ({ server, ...(await run(ready, server)) }))
    )
    const { pools } = await manager.pools()
    const rows = results.map(({ server, latencies, failed }) => {
      const pool = pools.find((p) => p.server_name === server)
      return {
        pool: server,
        connections: pool?.total_connections ?? 0,
        hits: pool?.pool_hits ?? 0,
        misses: pool?.pool_misses ?? 0,
        "hit rate": `${((pool?.hit_rate ?? 0) * 100).toFixed(1)} %`,
        errors: failed,
        "p50 ms": percentile(latencies, 50).toFixed(2),
        "p99 ms": percentile(latencies, 99).toFixed(2)
      }
    })
    console.table(rows)
    const failures = rows.reduce((sum, row) => sum + row.errors, 0)
    if (failures > 0) throw new Error(`${failures} calls failed`)
  } finally {
    await manager?.close()
    await http.close()
  }
  const left = await descendantsOf(process.pid)
  if (left.length > 0) throw new Error(`processes left behind: ${left.map((p) => p.command).join(", ")}`)
  console.log(`\n${Object.keys(mcpJson.mcpServers).length * CALLS_PER_POOL} calls done; every server process ended.`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
