/**
 * The shared catalog: one list request at a time fills it for every caller and connection; a
 * `list_changed`, a replaced connection or its time-to-live makes it stale; paginated servers
 * are read whole; cached tool definitions still validate tool results.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { it as effectIt } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { fixtureStdioConfig, type StdioLaunchConfig } from "@mcp-pool/test-servers"
import {
  createMcpConnectionManager,
  MCPConnectionManager,
  type MCPConnectionManagerPromise,
  type PooledMCPTools
} from "../src/index.js"
import { until } from "./promiseKit.js"
import { onPatientTestClock, startManager, text } from "./support.js"

const defaults = { retryAttempts: 0, shutdownGracePeriod: 0.5, connectionTimeout: 10 }
const open: Array<MCPConnectionManagerPromise> = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((manager) => manager.close()))
})

const start = async (server: unknown, pool: Record<string, unknown> = {}) => {
  const manager = await createMcpConnectionManager({
    servers: { fx: server },
    defaults: { ...defaults, minConnections: 1, maxConnections: 1, ...pool }
  })
  open.push(manager)
  return manager
}

/** How many requests of `method` the server behind the tools' (only) connection received. */
const seen = async (tools: PooledMCPTools.PooledMCPToolsPromise, method: string): Promise<number> => {
  const result = await tools.callTool({ name: "requests_seen", arguments: {} })
  const methods = (result.structuredContent as { readonly methods: Record<string, number> }).methods
  return methods[method] ?? 0
}

/** The snapshot of the manager's pool of "fx". */
const snapshotOf = (manager: MCPConnectionManagerPromise) =>
  manager.runtime.runPromise(
    Effect.gen(function* () {
      const service = yield* MCPConnectionManager.MCPConnectionManager
      return (yield* service.pool("fx")).snapshot()
    })
  )

const rawClient = async (config: StdioLaunchConfig) => {
  const client = new Client({ name: "reference", version: "1.0.0" })
  await client.connect(new StdioClientTransport({ command: config.command, args: [...(config.args ?? [])] }))
  return client
}

describe("the shared catalog", () => {
  it("concurrent listTools callers share one request; each gets its own copy", async () => {
    const manager = await start(fixtureStdioConfig())
    const tools = manager.tools("fx")
    const lists = await Promise.all(Array.from({ length: 10 }, () => tools.listTools()))
    expect(await seen(tools, "tools/list")).toBe(1)
    for (const list of lists) expect(list).toEqual(lists[0])
    // One read of the server, nine callers that waited for it.
    expect((await snapshotOf(manager)).catalogLookups).toEqual({ hit: 0, fill: 1, shared: 9 })
    // A caller that changes its answer changes nobody else's.
    const [first] = lists
    first?.tools.splice(0)
    expect((await tools.listTools()).tools.length).toBeGreaterThan(5)
    expect(lists[1]?.tools.length).toBeGreaterThan(5)
    expect(await seen(tools, "tools/list")).toBe(1)
    expect((await snapshotOf(manager)).catalogLookups).toEqual({ hit: 1, fill: 1, shared: 9 })
  })

  it('with catalog "off", every call is sent', async () => {
    const manager = await start(fixtureStdioConfig(), { catalog: "off" })
    const tools = manager.tools("fx")
    await Promise.all(Array.from({ length: 5 }, () => tools.listTools()))
    await tools.listPrompts()
    await tools.listPrompts()
    expect(await seen(tools, "tools/list")).toBe(5)
    expect(await seen(tools, "prompts/list")).toBe(2)
    expect((await snapshotOf(manager)).catalogLookups).toEqual({ hit: 0, fill: 0, shared: 0 })
  })

  it("each list is kept apart; a list_changed forgets only its own lists, and listeners hear of it", async () => {
    const manager = await start(fixtureStdioConfig())
    const tools = manager.tools("fx")
    const heard: Array<string> = []
    const stop = tools.onListChanged((event) => heard.push(`${event.serverName}:${event.list}`))
    const all = () =>
      Promise.all([tools.listTools(), tools.listPrompts(), tools.listResources(), tools.listResourceTemplates()])
    await all()
    await all()
    const counts = () =>
      Promise.all(
        ["tools/list", "prompts/list", "resources/list", "resources/templates/list"].map((m) => seen(tools, m))
      )
    expect(await counts()).toEqual([1, 1, 1, 1])
    await tools.callTool({ name: "notify", arguments: { kind: "prompts" } })
    await all()
    expect(await counts()).toEqual([1, 2, 1, 1])
    await tools.callTool({ name: "notify", arguments: { kind: "resources" } })
    await all()
    expect(await counts()).toEqual([1, 2, 2, 2])
    expect(heard).toEqual(["fx:prompts", "fx:resources"])
    stop()
    await tools.callTool({ name: "notify", arguments: { kind: "tools" } })
    await all()
    expect(await counts()).toEqual([2, 2, 2, 2])
    expect(heard).toEqual(["fx:prompts", "fx:resources"])
  })

  it("a tool added at run time is listed at once: the server's list_changed made the catalog forget", async () => {
    const manager = await start(fixtureStdioConfig())
    const tools = manager.tools("fx")
    expect((await tools.listTools()).tools.map((t) => t.name)).not.toContain("extra")
    await tools.callTool({ name: "add_tool", arguments: { name: "extra" } })
    expect((await tools.listTools()).tools.map((t) => t.name)).toContain("extra")
    await tools.callTool({ name: "remove_tool", arguments: { name: "extra" } })
    expect((await tools.listTools()).tools.map((t) => t.name)).not.toContain("extra")
  })

  it("a replaced connection makes the catalog stale: the new one lists again", async () => {
    const manager = await start(fixtureStdioConfig())
    const tools = manager.tools("fx")
    await tools.listTools()
    const before = text(await tools.callTool({ name: "pid", arguments: {} }))
    await tools.callTool({ name: "crash", arguments: {} }).catch(() => undefined)
    await until(async () => (await manager.pool("fx")).connections.length === 1, "the crashed connection was replaced")
    await tools.listTools()
    expect(text(await tools.callTool({ name: "pid", arguments: {} }))).not.toBe(before)
    // The new process got its own tools/list: the list was not answered from before the crash.
    expect(await seen(tools, "tools/list")).toBe(1)
  })

  it("a caller that gives up waiting does not stop the fill for the others", async () => {
    const manager = await start(fixtureStdioConfig())
    const tools = manager.tools("fx")
    const controller = new AbortController()
    const leaving = tools.listTools(undefined, { signal: controller.signal })
    const staying = tools.listTools()
    // The list request is on its way (its answer cannot come before the next turn of the loop).
    await new Promise((resolve) => setImmediate(resolve))
    controller.abort(new Error("not interested"))
    await expect(leaving).rejects.toMatchObject({
      _tag: "MCPAborted",
      message: expect.stringContaining("not interested")
    })
    expect((await staying).tools.length).toBeGreaterThan(5)
    expect(await seen(tools, "tools/list")).toBe(1)
  })
})

describe("a paginated server", () => {
  const paged = fixtureStdioConfig(["--page-size", "2"])

  it("the catalog reads every page: one answer, no nextCursor, the pages of a Client joined", async () => {
    const raw = await rawClient(paged)
    try {
      const pages: Array<unknown> = []
      let cursor: string | undefined = undefined
      do {
        const page: Awaited<ReturnType<Client["listTools"]>> = await raw.listTools(
          cursor === undefined ? {} : { cursor }
        )
        pages.push(...page.tools)
        cursor = page.nextCursor
      } while (cursor !== undefined)
      const manager = await start(paged)
      const tools = manager.tools("fx")
      const listed = await tools.listTools()
      expect(listed.nextCursor).toBeUndefined()
      expect(listed.tools).toEqual(pages)
      expect(await seen(tools, "tools/list")).toBe(Math.ceil(pages.length / 2))
      // A caller that asks for a page by its cursor gets that page from the server.
      const first = await raw.listTools()
      const second = await tools.listTools({ cursor: first.nextCursor ?? "" })
      expect(second).toEqual(await raw.listTools({ cursor: first.nextCursor ?? "" }))
    } finally {
      await raw.close()
    }
  })

  it('with catalog "off", listTools answers one page, as a Client does', async () => {
    const raw = await rawClient(paged)
    try {
      const manager = await start(paged, { catalog: "off" })
      const page = await manager.tools("fx").listTools()
      expect(page).toEqual(await raw.listTools())
      expect(page.nextCursor).toBeDefined()
    } finally {
      await raw.close()
    }
  })
})

describe("output schemas with a cached list", () => {
  it("a tool's result is checked against its output schema on a connection that never listed", async () => {
    const raw = await rawClient(fixtureStdioConfig())
    try {
      await raw.listTools()
      const reference = await raw.callTool({ name: "bad_output", arguments: {} }).then(
        () => "accepted",
        (error: unknown) => String(error)
      )
      expect(reference).toContain("output schema")
      const manager = await start(fixtureStdioConfig(), { minConnections: 3, maxConnections: 3 })
      const tools = manager.tools("fx")
      await until(async () => (await manager.pool("fx")).connections.length === 3, "all three connections are open")
      await tools.listTools()
      const failures = await Promise.all(
        Array.from({ length: 6 }, () =>
          tools.callTool({ name: "bad_output", arguments: {} }).then(
            () => undefined,
            (error: unknown) => error
          )
        )
      )
      const details = await manager.pool("fx")
      expect(details.connections).toHaveLength(3)
      // Every connection was used (six calls, three connections of one request each), and each refused.
      expect(details.connections.every((c) => c.leases > 0)).toBe(true)
      for (const failure of failures) {
        expect(failure).toMatchObject({ _tag: "MCPRequestError" })
        expect(String((failure as Error).message)).toContain("output schema")
      }
    } finally {
      await raw.close()
    }
  })
})

/** {@link seen} in the Effect flavour. */
const seenEffect = (tools: PooledMCPTools.PooledMCPTools, method: string) =>
  Effect.map(tools.callTool({ name: "requests_seen", arguments: {} }), (result) => {
    const methods = (result.structuredContent as { readonly methods: Record<string, number> }).methods
    return methods[method] ?? 0
  })

describe("the catalog's time-to-live, on the test clock", () => {
  effectIt.effect("a list older than catalogTtl is read again; a younger one is not", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...defaults, minConnections: 1, maxConnections: 1, catalogTtl: 60 }
      )
      const tools = yield* manager.getMcpTools("fx")
      yield* tools.listTools()
      yield* TestClock.adjust("59 seconds")
      yield* tools.listTools()
      expect(yield* seenEffect(tools, "tools/list")).toBe(1)
      yield* TestClock.adjust("2 seconds")
      yield* tools.listTools()
      yield* tools.listTools()
      expect(yield* seenEffect(tools, "tools/list")).toBe(2)
    }).pipe(onPatientTestClock)
  )

  effectIt.effect("without catalogTtl, a list is kept however long it is not changed", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixtureStdioConfig() },
        // No health check within the half hour: one jump of the test clock would time its ping out.
        { ...defaults, minConnections: 1, maxConnections: 1, healthCheckInterval: 7200 }
      )
      const tools = yield* manager.getMcpTools("fx")
      const pid = () => Effect.map(tools.callTool({ name: "pid", arguments: {} }), text)
      const before = yield* pid()
      yield* tools.listTools()
      yield* TestClock.adjust("30 minutes")
      yield* tools.listTools()
      // The same process (so the same request log) answered: it was asked once.
      expect(yield* pid()).toBe(before)
      expect(yield* seenEffect(tools, "tools/list")).toBe(1)
    }).pipe(onPatientTestClock)
  )
})
