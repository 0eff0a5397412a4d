import type { AddressInfo } from "node:net"
import { createMcpConnectionManager } from "@mcp-pool/core"
import { descendantsOf, fixtureStdioConfig } from "@mcp-pool/test-servers"
import express from "express"
import { afterEach, describe, expect, it } from "vitest"
import { mcpPoolLifecycle } from "../src/index.js"

const servers = { fx: fixtureStdioConfig() }
const defaults = { minConnections: 1, maxConnections: 1, shutdownGracePeriod: 0.5 }

const listen = async (app: express.Express) => {
  const server = app.listen(0, "127.0.0.1")
  await new Promise<void>((resolve) => server.once("listening", resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

const closed = (server: import("node:http").Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeIdleConnections()
  })

/** Run after each test, so that a failed assertion leaves no server or manager open. */
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).toReversed()) await cleanup().catch(() => undefined)
})

describe("@mcp-pool/express lifecycle", () => {
  it("starts the manager it builds with monitoring, and closes it when the server closes", async () => {
    const pool = await mcpPoolLifecycle({ servers, defaults, monitoring: false })
    cleanups.push(pool.close)
    expect(pool.manager.isMonitoring()).toBe(true)
    const app = express()
    app.use(pool.router())
    const { server, url } = await listen(app)
    cleanups.push(() => closed(server))
    pool.attach(server, { signals: [] })
    const details: unknown = await (await fetch(`${url}/api/v1/mcp/pools/fx`)).json()
    expect(details).toMatchObject({ server_name: "fx" })
    const pids = (await descendantsOf(process.pid)).map((p) => p.pid)
    expect(pids.length).toBeGreaterThanOrEqual(1)
    await closed(server)
    await pool.close()
    expect((await descendantsOf(process.pid)).filter((p) => pids.includes(p.pid))).toEqual([])
  })

  it("with a manager it was given: stops monitoring on close, leaves the manager open", async () => {
    const manager = await createMcpConnectionManager({ servers, defaults })
    cleanups.push(() => manager.close())
    const pool = await mcpPoolLifecycle(manager)
    expect(pool.manager).toBe(manager)
    const { server } = await listen(express().use(pool.router()))
    cleanups.push(() => closed(server))
    pool.attach(server, { signals: [] })
    await closed(server)
    await pool.close()
    expect(manager.isMonitoring()).toBe(false)
    const echoed = await manager.tools("fx").callTool({ name: "echo", arguments: { text: "open" } })
    expect(echoed.content).toEqual([{ type: "text", text: "open" }])
  })
})
