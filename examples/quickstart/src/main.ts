/**
 * Quickstart: pools for three MCP servers (a fixture over stdio and over Streamable HTTP,
 * and @modelcontextprotocol/server-everything over stdio), a few hundred concurrent tool
 * calls through them, and a table per pool. Exits 0 and leaves no process behind.
 *
 * Run it with `pnpm demo` from the repository root; the servers are in ../.mcp.json.
 */
import { createMcpConnectionManager, type McpConnectionManager } from "@mcp-pool/core"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { descendantsOf, spawnHttpFixtureServer } from "@mcp-pool/test-servers"

const CALLS_PER_POOL = 300

// The servers come from ../.mcp.json, in the format the MCP ecosystem uses; its relative
// paths are resolved from the example's folder, and `${FIXTURE_HTTP_URL}` from the environment.
const exampleDir = fileURLToPath(new URL("..", import.meta.url))
process.chdir(exampleDir)
const configPath = join(exampleDir, ".mcp.json")
const serverNames = ["fixture-stdio", "fixture-http", "everything"]

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
  return { latencies: latencies.toSorted((a, b) => a - b), failed }
}

const main = async () => {
  // The remote server runs in its own process, as a remote server would.
  const http = await spawnHttpFixtureServer()
  process.env["FIXTURE_HTTP_URL"] = http.url
  let manager: McpConnectionManager | undefined
  try {
    const warmStart = performance.now()
    manager = await createMcpConnectionManager({ configPath })
    console.log(`pools warm in ${(performance.now() - warmStart).toFixed(0)} ms\n`)
    const ready = manager
    // One pool at a time, so that each row shows that pool alone on this machine.
    const results = []
    for (const server of serverNames) results.push({ server, ...(await run(ready, server)) })
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
    console.log(`${CALLS_PER_POOL} calls in flight at once per pool; latency from each call's start, queueing included`)
    console.table(rows)
    const failures = rows.reduce((sum, row) => sum + row.errors, 0)
    if (failures > 0) throw new Error(`${failures} calls failed`)
  } finally {
    await manager?.close()
    await http.stop()
  }
  const left = await descendantsOf(process.pid)
  if (left.length > 0) throw new Error(`processes left behind: ${left.map((p) => p.command).join(", ")}`)
  console.log(`\n${serverNames.length * CALLS_PER_POOL} calls done; every server process ended.`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
