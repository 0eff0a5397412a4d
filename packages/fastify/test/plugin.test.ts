import { createMcpConnectionManager } from "@mcp-pool/core"
import { descendantsOf, fixtureStdioConfig } from "@mcp-pool/test-servers"
import Fastify from "fastify"
import { afterEach, describe, expect, it } from "vitest"
import { mcpPool } from "../src/index.js"

const servers = { fx: fixtureStdioConfig() }
const defaults = { minConnections: 1, maxConnections: 1, shutdownGracePeriod: 0.5 }

/** Run after each test, so that a failed assertion leaves no app or manager open. */
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).toReversed()) await cleanup().catch(() => undefined)
})

describe("@mcp-pool/fastify", () => {
  it("decorates the instance, answers through inject, and closes what it built", async () => {
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(mcpPool, { servers, defaults })
    const status = await app.inject({ method: "GET", url: "/api/v1/mcp/status" })
    expect(status.statusCode).toBe(200)
    expect(status.json()).toMatchObject({ status: "healthy", pools: { fx: "healthy" } })
    const echoed = await app.mcpPool.tools("fx").callTool({ name: "echo", arguments: { text: "decorated" } })
    expect(echoed.content).toEqual([{ type: "text", text: "decorated" }])

    const pids = (await descendantsOf(process.pid)).map((p) => p.pid)
    expect(pids.length).toBeGreaterThanOrEqual(1)
    await app.close()
    expect((await descendantsOf(process.pid)).filter((p) => pids.includes(p.pid))).toEqual([])
  })

  it("refuses a second registration on the same instance", async () => {
    const manager = await createMcpConnectionManager({ servers, defaults: { ...defaults, minConnections: 0 } })
    cleanups.push(() => manager.close())
    const app = Fastify()
    cleanups.push(() => app.close())
    void app.register(mcpPool, { manager })
    void app.register(mcpPool, { manager })
    await expect(app.ready()).rejects.toThrow(/already registered/)
    await app.close()
  })

  it("leaves a manager it was given open when the app closes", async () => {
    const manager = await createMcpConnectionManager({ servers, defaults })
    cleanups.push(() => manager.close())
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(mcpPool, { manager })
    expect(app.mcpPool).toBe(manager)
    await app.close()
    const echoed = await manager.tools("fx").callTool({ name: "echo", arguments: { text: "still open" } })
    expect(echoed.content).toEqual([{ type: "text", text: "still open" }])
  })

  it("a rejecting auth hook denies with 401", async () => {
    const app = Fastify()
    cleanups.push(() => app.close())
    await app.register(mcpPool, {
      servers,
      defaults: { ...defaults, minConnections: 0 },
      auth: () => Promise.reject(new Error("auth backend down"))
    })
    const denied = await app.inject({ method: "GET", url: "/api/v1/mcp/config" })
    expect(denied.statusCode).toBe(401)
    expect(denied.json()).toEqual({ error: "unauthorized" })
  })
})
