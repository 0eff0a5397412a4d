/**
 * Quickstart: pools for three MCP servers (a fixture over stdio and over Streamable HTTP, and
 * @modelcontextprotocol/server-everything over stdio). It sends a burst of concurrent calls
 * through each pool, then times one call at a time through the warm pools against the same calls
 * each made on a new connection. Checks its own figures, exits 0 and leaves no process behind.
 *
 * Run it with `pnpm demo` from the repository root; the servers are in ../.mcp.json.
 */
import { createMcpConnectionManager, type LogEntry, type MCPConnectionManagerPromise } from "@mcp-pool/core"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { descendantsOf, spawnHttpFixtureServer } from "@mcp-pool/test-servers"
import { callOnNewConnection, readServers, type ServerEntry } from "./direct.ts"
import { ms, summarize, table, times } from "./report.ts"

/** Calls on a new connection per server: one per round, each round followed by pooled calls. */
const ROUNDS = 4
const POOLED_PER_ROUND = 50
/**
 * Pooled calls made before timing, `WARM_UP_IN_FLIGHT` at a time: the client and every server
 * process run their code a few hundred times before it is fast, as in a long-running application.
 */
const WARM_UP_CALLS = 600
const WARM_UP_IN_FLIGHT = 8
const BURST = 300

// The servers come from ../.mcp.json, in the format the MCP ecosystem uses; its relative
// paths are resolved from the example's folder, and `${FIXTURE_HTTP_URL}` from the environment.
const exampleDir = fileURLToPath(new URL("..", import.meta.url))
process.chdir(exampleDir)
const configPath = join(exampleDir, ".mcp.json")
const serverNames = ["fixture-stdio", "fixture-http", "everything"] as const
type ServerName = (typeof serverNames)[number]

const callFor: Record<
  ServerName,
  (i: number) => { readonly name: string; readonly arguments: Record<string, unknown> }
> = {
  "fixture-stdio": (i) => ({ name: "echo", arguments: { text: `hello ${i}` } }),
  "fixture-http": (i) => ({ name: "add", arguments: { a: i, b: 1 } }),
  everything: (i) => ({ name: "echo", arguments: { message: `hello ${i}` } })
}

const timed = async (f: () => Promise<unknown>): Promise<number> => {
  const started = performance.now()
  await f()
  return performance.now() - started
}

/**
 * One call at a time: rounds that alternate a call on a new connection with calls through the
 * warm pool, so that whatever else the machine is doing weighs on both sides alike.
 */
const compare = async (manager: MCPConnectionManagerPromise, server: ServerName, entry: ServerEntry) => {
  const tools = manager.tools(server)
  const pooledCall = (i: number) => timed(() => tools.callTool(callFor[server](i)))
  for (let i = 0; i < WARM_UP_CALLS; i += WARM_UP_IN_FLIGHT) {
    await Promise.all(Array.from({ length: WARM_UP_IN_FLIGHT }, (_, j) => pooledCall(i + j)))
  }
  const pooled: Array<number> = []
  const direct: Array<number> = []
  // A new connection closes while the next calls run (a server can take a while to exit: server-everything
  // waits about 0.4 s); every one is closed before the comparison ends.
  const closing: Array<Promise<void>> = []
  for (let round = 0; round < ROUNDS; round++) {
    const call = await callOnNewConnection(entry, callFor[server](round))
    direct.push(call.ms)
    closing.push(call.closed)
    for (let i = 0; i < POOLED_PER_ROUND; i++) pooled.push(await pooledCall(i))
  }
  const failed = (await Promise.allSettled(closing)).find((outcome) => outcome.status === "rejected")
  if (failed !== undefined) throw failed.reason
  return { server, pooled: summarize(pooled), direct: summarize(direct) }
}

/** `BURST` calls started at once on one pool: how long they all take and how many fail. */
const burst = async (manager: MCPConnectionManagerPromise, server: ServerName) => {
  const tools = manager.tools(server)
  let failed = 0
  const duration = await timed(() =>
    Promise.all(
      Array.from({ length: BURST }, (_, i) =>
        tools.callTool(callFor[server](i)).catch((error: unknown) => {
          failed++
          console.error(`${server}: ${error instanceof Error ? error.message : String(error)}`)
        })
      )
    )
  )
  return { server, duration, failed }
}

const poolFigures = async (manager: MCPConnectionManagerPromise, server: ServerName) => {
  const pool = (await manager.pools()).pools.find((p) => p.server_name === server)
  if (pool === undefined) throw new Error(`no pool for ${server}`)
  return pool
}

const printLatency = (results: ReadonlyArray<Awaited<ReturnType<typeof compare>>>) => {
  console.log(
    [
      "\nOne call at a time, each timed alone:",
      `  pool                     a connection of the warm pool (after the burst and ${WARM_UP_CALLS} more calls)`,
      "  new connection per call  what an application without a pool does: a new SDK Client and transport for the call,",
      "                           timed from its start (server process or HTTP session, initialize) to the answer;",
      "                           closing it is not counted"
    ].join("\n")
  )
  const rows = results.flatMap(({ server, pooled, direct }) => [
    [server, "pool", pooled.calls, ms(pooled.p50), ms(pooled.p99), "1x"],
    [server, "new connection per call", direct.calls, ms(direct.p50), ms(direct.p99), times(direct.p50, pooled.p50)]
  ])
  console.log(table(["server", "calls made on", "calls", "p50 ms", "p99 ms", "p50 / pool p50"], rows))
  const ratios = results.map(({ server, pooled, direct }) => `${times(direct.p50, pooled.p50)} (${server})`)
  console.log(`A call through the warm pool is faster at p50 than one on a new connection: ${ratios.join(", ")}.`)
  const http = results.find((r) => r.server === "fixture-http")
  const stdio = results.find((r) => r.server === "fixture-stdio")
  if (http !== undefined && stdio !== undefined) {
    console.log(
      `fixture-http is a Streamable HTTP server in another process: each call is an HTTP POST answered as an event stream, JSON parsed on both sides (${ms(http.pooled.p50)} ms warm against ${ms(stdio.pooled.p50)} ms over stdio); a new connection adds a session handshake (the initialize and initialized POSTs, a GET for the server's event stream, a new server session).`
    )
  }
}

/** A burst on each pool in turn, so that each row shows that pool alone on this machine. */
const runBursts = async (manager: MCPConnectionManagerPromise) => {
  const bursts = []
  for (const server of serverNames) {
    const before = await poolFigures(manager, server)
    const result = await burst(manager, server)
    const after = await poolFigures(manager, server)
    const hits = after.pool_hits - before.pool_hits
    const misses = after.pool_misses - before.pool_misses
    bursts.push({ ...result, connections: after.total_connections, hits, misses })
  }
  return bursts
}

const printBursts = (bursts: Awaited<ReturnType<typeof runBursts>>) => {
  console.log(`${BURST} calls started at once per pool; the pool queues what its connections cannot take yet`)
  console.log(
    table(
      ["pool", "connections", "calls", "all done in ms", "calls/s", "hits", "misses", "hit rate", "errors"],
      bursts.map(({ server, duration, failed, connections, hits, misses }) => [
        server,
        connections,
        BURST,
        duration.toFixed(0),
        Math.round((BURST / duration) * 1000).toLocaleString("en-US"),
        hits,
        misses,
        `${((hits / Math.max(1, hits + misses)) * 100).toFixed(1)} %`,
        failed
      ])
    )
  )
  console.log(
    "fixture-http: the calls in flight are as many HTTP POSTs at once, each on a socket of its own, where stdio writes lines to a pipe."
  )
}

/** The manager's log lines, after the tables (alerts included). */
const printLog = (logged: ReadonlyArray<LogEntry>) => {
  console.log(`\nThe manager's log (${logged.length} lines)`)
  if (logged.some((entry) => entry.message.startsWith("Alert pool_exhaustion"))) {
    console.log(`  pool_exhaustion alerts are expected here: each burst asks one pool for ${BURST} calls at once.`)
  }
  for (const entry of logged) {
    console.log(`  ${entry.level.toUpperCase()} ${entry.message}${entry.cause === undefined ? "" : `\n${entry.cause}`}`)
  }
}

const main = async () => {
  // The remote server runs in its own process, as a remote server would.
  const http = await spawnHttpFixtureServer()
  process.env["FIXTURE_HTTP_URL"] = http.url
  const entries = readServers(configPath)
  // The manager's log lines are kept for their own section, after the tables.
  const logged: Array<LogEntry> = []
  let manager: MCPConnectionManagerPromise | undefined
  let calls = 0
  try {
    const warmStart = performance.now()
    manager = await createMcpConnectionManager({ configPath, logger: (entry) => logged.push(entry) })
    const ready = manager
    const warm = await Promise.all(serverNames.map((server) => poolFigures(ready, server)))
    const sizes = warm.map((pool) => `${pool.server_name} ${pool.total_connections}`).join(", ")
    console.log(
      `pools warm in ${(performance.now() - warmStart).toFixed(0)} ms (connections opened in parallel: ${sizes})\n`
    )

    const bursts = await runBursts(ready)
    printBursts(bursts)
    calls += bursts.length * BURST
    const failures = bursts.reduce((sum, b) => sum + b.failed, 0)
    if (failures > 0) throw new Error(`${failures} calls failed`)

    const latency = []
    for (const server of serverNames) {
      const entry = entries[server]
      if (entry === undefined) throw new Error(`${server} is not in ${configPath}`)
      latency.push(await compare(ready, server, entry))
    }
    printLatency(latency)
    calls += latency.reduce((sum, r) => sum + WARM_UP_CALLS + r.pooled.calls + r.direct.calls, 0)
    const notFaster = latency.filter((r) => r.pooled.p50 >= r.direct.p50).map((r) => r.server)
    if (notFaster.length > 0) {
      throw new Error(`the pool was not faster than a new connection for ${notFaster.join(", ")}`)
    }
  } finally {
    await manager?.close()
    await http.stop()
    printLog(logged)
  }
  const left = await descendantsOf(process.pid)
  if (left.length > 0) throw new Error(`processes left behind: ${left.map((p) => p.command).join(", ")}`)
  console.log(`\n${calls} calls done; every server process ended.`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
})
