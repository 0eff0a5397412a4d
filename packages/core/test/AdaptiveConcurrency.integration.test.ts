/**
 * `maxConcurrentRequestsPerConnection: "auto"` against real servers: a server that answers
 * slow requests one at a time keeps one per connection and gets more connections; a server that
 * runs them concurrently (proven by a ping answered first) and a fast one are multiplexed. The
 * limit shows in `/pools/{name}` as `concurrency_limit`.
 */
import { availableParallelism } from "node:os"
import { afterEach, describe, expect, it } from "vitest"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { createMcpConnectionManager, type MCPConnectionManagerPromise } from "../src/index.js"
import { sampling } from "../src/pool/Load.js"

const open: Array<MCPConnectionManagerPromise> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((manager) => manager.close()))
})

const start = async (args: ReadonlyArray<string>, pool: Record<string, unknown>) => {
  const manager = await createMcpConnectionManager({
    servers: { fx: fixtureStdioConfig(args) },
    defaults: {
      retryAttempts: 0,
      shutdownGracePeriod: 0.5,
      maxConcurrentRequestsPerConnection: "auto",
      ...pool
    },
    logLevel: "none"
  })
  open.push(manager)
  return manager
}

/**
 * Runs `callers` loops of `call` until `done()` holds (checked after each call) or `calls`
 * calls were made; answers the highest limit of any connection seen after each call.
 */
const load = async (
  manager: MCPConnectionManagerPromise,
  callers: number,
  calls: number,
  call: () => Promise<unknown>,
  done: (highest: number) => boolean
): Promise<number> => {
  let highest = 0
  let left = calls
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (left-- > 0 && !done(highest)) {
        await call()
        const details = await manager.pool("fx")
        for (const connection of details.connections) highest = Math.max(highest, connection.concurrency_limit)
      }
    })
  )
  return highest
}

/**
 * Sends `calls` calls of the `sleep` tool (`ms` each) at once to a fresh pool of the fixture
 * (with `args`) of up to 4 connections; answers the most connections seen as they end.
 */
const burst = async (args: ReadonlyArray<string>, calls: number, ms: number): Promise<number> => {
  const manager = await start(args, { minConnections: 1, maxConnections: 4 })
  const tools = manager.tools("fx")
  let most = 0
  await Promise.all(
    Array.from({ length: calls }, async () => {
      await tools.callTool({ name: "sleep", arguments: { ms } })
      most = Math.max(most, (await manager.pool("fx")).connections.length)
    })
  )
  return most
}

describe('adaptive concurrency ("auto")', () => {
  it("a server that answers slow requests one at a time keeps one per connection and gets more connections", async () => {
    const manager = await start(["--serial"], { minConnections: 1, maxConnections: 4 })
    const tools = manager.tools("fx")
    const highest = await load(
      manager,
      4,
      400,
      () => tools.callTool({ name: "sleep", arguments: { ms: 20 } }),
      () => false
    )
    expect(highest).toBe(1)
    const details = await manager.pool("fx")
    expect(details.connections.length).toBeGreaterThan(1)
    expect(details.connections.every((c) => c.concurrency_limit === 1)).toBe(true)
  })

  it("a burst whose borrowers all joined at once still grows the pool once the limits are known", async () => {
    // A fresh pool: when the 96 borrowers join, nothing says yet that the server answers one at a
    // time; it is known once 32 calls were served, and the pool grows while the rest still wait.
    expect(await burst(["--serial"], 96, 20)).toBeGreaterThan(1)
  })

  it("a burst of slow calls to a fresh pool grows it before their speed is known", async () => {
    // 12 calls of 300 ms on one connection: 32 calls sent alone would make their speed known,
    // and only these 12 come. Borrowers that waited 250 ms count them as slow.
    expect(await burst([], 12, 300)).toBeGreaterThan(1)
  })

  it("a CPU-bound stdio server gets no more processes than this machine has cores to run them", async () => {
    // More callers and connections allowed than cores: past them, another process only shares busy cores.
    const cores = availableParallelism()
    const manager = await start([], { minConnections: 1, maxConnections: cores + 3 })
    const tools = manager.tools("fx")
    let most = 0
    let failed = 0
    await load(
      manager,
      cores + 3,
      400,
      async () => {
        await tools.callTool({ name: "cpu", arguments: { ms: 10 } }).catch(() => failed++)
        most = Math.max(most, (await manager.pool("fx")).connections.length)
      },
      () => false
    )
    expect(failed).toBe(0)
    expect(most).toBeGreaterThanOrEqual(1)
    expect(most).toBeLessThanOrEqual(cores + 1)
    // The machine's load was read for it; the reading stops with the last pool.
    await Promise.all(open.splice(0).map((m) => m.close()))
    expect(sampling()).toBe(false)
  })

  it("a CPU-bound stdio server whose calls are unlike gets more processes than cores: a short call need not wait for a long one", async () => {
    // Every 10th call computes 60 ms, the others 1 ms. The cores are busy all the same, but
    // processes that share them let a short call through while a long one runs.
    const cores = availableParallelism()
    const callers = cores + 4
    const manager = await start([], { minConnections: 1, maxConnections: callers })
    const tools = manager.tools("fx")
    let sent = 0
    let most = 0
    let failed = 0
    await load(
      manager,
      callers,
      4_000,
      async () => {
        const ms = sent++ % 10 === 9 ? 60 : 1
        await tools.callTool({ name: "cpu", arguments: { ms } }).catch(() => failed++)
        most = Math.max(most, (await manager.pool("fx")).connections.length)
      },
      () => most > cores + 1
    )
    expect(failed).toBe(0)
    expect(most).toBeGreaterThan(cores + 1)
  })

  it("a server that runs slow requests concurrently is multiplexed once a ping overtakes a request", async () => {
    const manager = await start([], { minConnections: 1, maxConnections: 1 })
    const tools = manager.tools("fx")
    const highest = await load(
      manager,
      8,
      2_000,
      () => tools.callTool({ name: "sleep", arguments: { ms: 20 } }),
      (limit) => limit > 1
    )
    expect(highest).toBeGreaterThan(1)
  })

  it("fast requests are multiplexed while that raises the connection's throughput", async () => {
    const manager = await start([], { minConnections: 1, maxConnections: 1 })
    const tools = manager.tools("fx")
    const highest = await load(
      manager,
      32,
      20_000,
      () => tools.callTool({ name: "echo", arguments: { text: "x" } }),
      (limit) => limit > 1
    )
    expect(highest).toBeGreaterThan(1)
  })

  it("a connection passed over because it is full raises its limit, even with no borrower in line", async () => {
    // Two connections and 8 callers of a concurrent server (50 ms calls: long beside the delays
    // of busy cores, which judge a raise): the line ends once their limits add
    // up to 8, but the connection filled first, passed over for the other while it is full,
    // goes on rising until it carries all 8. On busy cores a raise may be judged to not pay and
    // be tried again after a pause: the calls allowed leave room for that (it stops at 8).
    const manager = await start([], { minConnections: 2, maxConnections: 2, autoConcurrencyMax: 8 })
    const tools = manager.tools("fx")
    const highest = await load(
      manager,
      8,
      8_000,
      () => tools.callTool({ name: "sleep", arguments: { ms: 50 } }),
      (limit) => limit >= 8
    )
    expect(highest).toBe(8)
  })

  it('a number fixes the limit; "auto" bounds are kept', async () => {
    const fixed = await start([], { minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 3 })
    expect((await fixed.pool("fx")).connections.map((c) => c.concurrency_limit)).toEqual([3])
    const bounded = await start([], {
      minConnections: 1,
      maxConnections: 1,
      autoConcurrencyMin: 2,
      autoConcurrencyMax: 4
    })
    const tools = bounded.tools("fx")
    const highest = await load(
      bounded,
      16,
      5_000,
      () => tools.callTool({ name: "echo", arguments: { text: "x" } }),
      () => false
    )
    expect(highest).toBeLessThanOrEqual(4)
    expect((await bounded.pool("fx")).connections.every((c) => c.concurrency_limit >= 2)).toBe(true)
  })
})
