import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { descendantsOf, fixtureStdioConfig, waitFor } from "@mcp-pool/test-servers"
import {
  createMcpConnectionManager,
  createPooledMcpTools,
  getMcpConnectionManager,
  MCPInvalidQuery,
  type MCPConnectionManagerPromise,
  MCPServerNotFound,
  shutdownMcpConnectionManager,
  startMcpMonitoring,
  stopMcpMonitoring
} from "../src/index.js"
import { text } from "./support.js"

const fixture = fixtureStdioConfig()
const defaults = { minConnections: 1, maxConnections: 2, retryAttempts: 0, shutdownGracePeriod: 0.5 }
const open: Array<MCPConnectionManagerPromise> = []

afterEach(async () => {
  await Promise.all(open.splice(0).map((manager) => manager.close()))
  await shutdownMcpConnectionManager()
})

describe("the Promise front door", () => {
  it("a caller's AbortSignal cancels a running call; the pool gives the connection back and keeps serving", async () => {
    const manager = await createMcpConnectionManager({
      servers: { fx: fixture },
      defaults: { ...defaults, maxConnections: 1 }
    })
    open.push(manager)
    const tools = manager.tools("fx")
    const controller = new AbortController()
    const started = Date.now()
    const cancelled = tools.callTool({ name: "sleep", arguments: { ms: 30_000 } }, undefined, {
      signal: controller.signal
    })
    setTimeout(() => controller.abort(new Error("the user gave up")), 100)
    const failure: unknown = await cancelled.then(
      () => undefined,
      (error: unknown) => error
    )
    expect(Date.now() - started).toBeLessThan(5_000)
    // The caller's own abort has its own tag: the server did not answer with an error.
    expect(failure).toMatchObject({ _tag: "MCPAborted", serverName: "fx", method: "tools/call" })
    expect(String((failure as Error).message)).toContain("the user gave up")
    const details = await manager.pool("fx")
    expect(details.connections.map((c) => c.in_flight)).toEqual([0])
    expect(text(await tools.callTool({ name: "echo", arguments: { text: "after" } }))).toBe("after")
  })

  it("calls tools, reports pools, redacts secrets, and leaves no process after close()", async () => {
    const manager = await createMcpConnectionManager({
      servers: { fx: { ...fixture, env: { API_KEY: "s3cret-value" } } },
      defaults
    })
    open.push(manager)
    const tools = manager.tools("fx")
    // Made once per server: asking for them on every call builds nothing.
    expect(manager.tools("fx")).toBe(tools)
    const echoed = await tools.callTool({ name: "echo", arguments: { text: "promise" } })
    expect(text(echoed)).toBe("promise")
    expect((await tools.listTools()).tools.map((tool) => tool.name)).toContain("echo")
    expect(tools.getServerVersion()?.name).toBeTruthy()

    const { servers } = await manager.servers()
    expect(servers).toEqual([{ name: "fx", transport: "stdio", pooled: true }])
    const { pools } = await manager.pools()
    expect(pools[0]).toMatchObject({
      server_name: "fx",
      total_requests: 2,
      total_errors: 0,
      circuit_breaker_state: "closed"
    })
    const details = await manager.pool("fx")
    expect(details.connections.length).toBeGreaterThanOrEqual(1)
    const summary = await manager.metricsSummary()
    expect(summary.global_metrics).toEqual({ total_pools: 1, total_requests: 2, total_errors: 0 })

    const everything = JSON.stringify([await manager.config(), details])
    expect(everything).toContain("API_KEY")
    expect(everything).not.toContain("s3cret-value")

    await manager.close()
    expect(await descendantsOf(process.pid)).toEqual([])
  })

  it("withConnection pins one connection for several calls", async () => {
    const manager = await createMcpConnectionManager({ servers: { fx: fixture }, defaults })
    open.push(manager)
    const pids = await manager.withConnection("fx", async (client) => {
      const a = await client.callTool({ name: "pid" })
      const b = await client.callTool({ name: "pid" })
      return [text(a), text(b)]
    })
    expect(pids[0]).toBe(pids[1])
    await expect(manager.withConnection("fx", () => Promise.reject(new Error("mine")))).rejects.toThrow("mine")
  })

  it("rejects with the library's tagged errors", async () => {
    const manager = await createMcpConnectionManager({ servers: { fx: fixture }, defaults })
    open.push(manager)
    expect(() => manager.tools("nope")).toThrow(expect.objectContaining({ _tag: "MCPServerNotFound" }))
    await expect(manager.pool("nope")).rejects.toMatchObject({ _tag: "MCPServerNotFound", serverName: "nope" })
    await expect(manager.tools("fx").callTool({ name: "fail", arguments: { message: "boom" } })).rejects.toMatchObject({
      _tag: "MCPRequestError",
      serverName: "fx"
    })
    const toolError = await manager.tools("fx").callTool({ name: "tool_error", arguments: { message: "bad input" } })
    expect(toolError.isError).toBe(true)
    await expect(manager.configureServerPool("fx", { maxConnections: 0 })).rejects.toMatchObject({
      _tag: "MCPConfigError"
    })
  })

  it("configureServerPool rebuilds the pool with the new settings", async () => {
    const manager = await createMcpConnectionManager({ servers: { fx: fixture }, defaults })
    open.push(manager)
    await manager.configureServerPool("fx", { maxConnections: 5, minConnections: 0 })
    const details = await manager.pool("fx")
    expect(details.config).toMatchObject({ pool_config: { max_connections: 5, min_connections: 0 } })
    expect(text(await manager.tools("fx").callTool({ name: "echo", arguments: { text: "x" } }))).toBe("x")
  })

  it("an invalid configuration rejects with MCPConfigError and starts nothing", async () => {
    await expect(
      createMcpConnectionManager({ servers: { fx: fixture }, defaults: { minConnections: 5, maxConnections: 2 } })
    ).rejects.toMatchObject({ _tag: "MCPConfigError" })
    expect(await descendantsOf(process.pid)).toEqual([])
  })

  it("the process-wide manager reads MCP_CONFIG_PATH and is created once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mcp-pool-"))
    const path = join(dir, "mcp.json")
    await writeFile(path, JSON.stringify({ mcpServers: { fx: { ...fixture, pool: defaults } } }))
    const previous = process.env["MCP_CONFIG_PATH"]
    process.env["MCP_CONFIG_PATH"] = path
    try {
      const tools = createPooledMcpTools("fx")
      expect(text(await tools.callTool({ name: "echo", arguments: { text: "global" } }))).toBe("global")
      expect(await getMcpConnectionManager()).toBe(await getMcpConnectionManager())
      await shutdownMcpConnectionManager()
      expect(await descendantsOf(process.pid)).toEqual([])
    } finally {
      if (previous === undefined) delete process.env["MCP_CONFIG_PATH"]
      else process.env["MCP_CONFIG_PATH"] = previous
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("status, alerts, onAlert and healthCheck answer with the monitoring routes' JSON bodies", async () => {
    // A server that cannot start, failed calls and alerts, on purpose: their log lines are kept here.
    const logged: Array<string> = []
    const manager = await createMcpConnectionManager({
      servers: { fx: fixture, missing: { command: "/nonexistent/mcp-server-binary" } },
      defaults: { ...defaults, minConnections: 2, maxConnections: 2 },
      alerts: { errorRateMinRequests: 4 },
      logger: (entry) => logged.push(entry.message)
    })
    open.push(manager)
    const status = await manager.status()
    expect(status).toMatchObject({ status: "critical", total_pools: 2, pools: { fx: "healthy", missing: "critical" } })
    expect(Number.isNaN(Date.parse(status.timestamp))).toBe(false)

    const live: Array<string> = []
    const stop = manager.onAlert((alert) => live.push(`${alert.server_name}:${alert.type}`))
    const tools = manager.tools("fx")
    for (const name of ["fail", "fail", "echo", "echo"]) {
      await tools.callTool({ name, arguments: { text: "x" } }).catch(() => undefined)
    }
    stop()
    expect(live).toEqual(["fx:high_error_rate"])
    await waitFor(
      () => logged.some((line) => line.startsWith('Alert high_error_rate: 50 % of the calls to "fx"')),
      5_000
    )
    const { alerts } = await manager.alerts({ severity: "warning", limit: 10 })
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toMatchObject({ type: "high_error_rate", severity: "warning", server_name: "fx" })
    expect(Object.keys(alerts[0] ?? {}).toSorted()).toEqual([
      "id",
      "message",
      "server_name",
      "severity",
      "timestamp",
      "type"
    ])
    await expect(manager.alerts({ limit: 0 })).rejects.toBeInstanceOf(MCPInvalidQuery)
    // @ts-expect-error: a caller without types may pass anything
    await expect(manager.alerts({ severity: "urgent" })).rejects.toThrow(/"severity".*info, warning, critical/)

    const check = await manager.healthCheck("fx")
    expect(check).toMatchObject({ server_name: "fx", healthy: true, checked: 2, failed: 0 })
    expect(Object.keys(check).toSorted()).toEqual(["checked", "duration_ms", "failed", "healthy", "server_name"])
    const missing = await manager.healthCheck("missing")
    expect(missing).toMatchObject({ healthy: false, checked: 1, failed: 1 })
    expect(missing.reason).toContain("could not start MCP server command")
    await expect(manager.healthCheck("nope")).rejects.toBeInstanceOf(MCPServerNotFound)
  })

  it("startMcpMonitoring and stopMcpMonitoring drive the process-wide manager's health monitors", async () => {
    await stopMcpMonitoring()
    const manager = await startMcpMonitoring({ servers: { fx: fixture }, defaults, monitoring: false })
    expect(manager).toBe(await getMcpConnectionManager())
    expect(manager.isMonitoring()).toBe(true)
    await stopMcpMonitoring()
    expect(manager.isMonitoring()).toBe(false)
    // The pools keep serving without their monitors.
    expect(text(await createPooledMcpTools("fx").callTool({ name: "echo", arguments: { text: "still" } }))).toBe(
      "still"
    )
    await startMcpMonitoring()
    expect(manager.isMonitoring()).toBe(true)
  })
})
