/**
 * What a server says unasked, through the pool: log messages at their levels (and the level set
 * on every connection, also later ones), resource updates to subscribers (held on a connection
 * the pool keeps, moved when it goes), list changes as a Stream; and what the pool tells the
 * server when a caller gives up (notifications/cancelled).
 */
import { describe, expect, it } from "vitest"
import { it as effectIt } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { createMcpConnectionManager, type Notifications, type PooledMCPTools } from "../src/index.js"
import { promiseSuite, quickDefaults, until } from "./promiseKit.js"
import { captureLogs, realWait, startManager, text } from "./support.js"

const suite = promiseSuite()
const defaults = quickDefaults
const transports = suite.transports

/**
 * Makes every connection's session go: over stdio each server process exits (one crash per
 * connection, all at once); over HTTP the server forgets every session, as after a restart.
 */
const loseEverySession = async (transport: string, tools: PooledMCPTools.PooledMCPToolsPromise, size: number) => {
  const tool = transport === "stdio" ? "crash" : "forget_sessions"
  await Promise.all(
    Array.from({ length: transport === "stdio" ? size : 1 }, () =>
      tools.callTool({ name: tool, arguments: {} }).catch(() => undefined)
    )
  )
}

const start = async (server: unknown, pool: Record<string, unknown>) => {
  const manager = await createMcpConnectionManager({
    servers: { fx: server },
    defaults: { ...defaults, ...pool }
  })
  return suite.keep(manager)
}

/** Calls `update_resource` once on each of the pool's `size` connections at once: one answer per connection. */
const updateEverywhere = async (tools: PooledMCPTools.PooledMCPToolsPromise, uri: string, size: number) =>
  (
    await Promise.all(
      Array.from({ length: size }, () => tools.callTool({ name: "update_resource", arguments: { uri } }))
    )
  ).map(text)

describe.each(Object.entries(transports))("resource subscriptions over %s", (transport, config) => {
  describe.each([1, 2])("through a pool of %i", (size) => {
    it("updates reach each subscriber until it unsubscribes; the server is subscribed once per resource", async () => {
      const manager = await start(config(), { minConnections: size, maxConnections: size })
      await until(async () => (await manager.pool("fx")).connections.length === size, "the pool is full")
      const tools = manager.tools("fx")
      const first: Array<Notifications.ResourceUpdated> = []
      const second: Array<Notifications.ResourceUpdated> = []
      const a = await tools.subscribeResource({ uri: "test://item/1" }, (update) => first.push(update))
      const b = await tools.subscribeResource({ uri: "test://item/1" }, (update) => second.push(update))
      // Exactly one connection (the pool's anchor) holds the subscription.
      const answers = await updateEverywhere(tools, "test://item/1", size)
      expect(answers.filter((answer) => answer === "sent")).toHaveLength(1)
      expect(answers.filter((answer) => answer === "not subscribed")).toHaveLength(size - 1)
      await until(() => first.length === 1 && second.length === 1, "both subscribers got the update")
      expect(first).toEqual([{ uri: "test://item/1" }])
      await a.unsubscribe()
      expect(await updateEverywhere(tools, "test://item/1", size)).toContain("sent")
      await until(() => second.length === 2, "the remaining subscriber got the second update")
      expect(first).toHaveLength(1)
      await b.unsubscribe()
      // The last subscriber left: the server was told.
      expect(await updateEverywhere(tools, "test://item/1", size)).toEqual(
        Array.from({ length: size }, () => "not subscribed")
      )
    })

    it("a subscription is made again on a new connection when the one holding it goes", async () => {
      const manager = await start(config(), { minConnections: size, maxConnections: size })
      await until(async () => (await manager.pool("fx")).connections.length === size, "the pool is full")
      const tools = manager.tools("fx")
      const updates: Array<Notifications.ResourceUpdated> = []
      await tools.subscribeResource({ uri: "test://item/2" }, (update) => updates.push(update))
      const before = (await manager.pool("fx")).connections.map((c) => c.id)
      await loseEverySession(transport, tools, size)
      // The subscription is moved as soon as a connection is there: an update reaches the subscriber.
      // (Over HTTP a connection learns that its session is gone when it next sends: these calls.)
      await until(
        async () =>
          (await updateEverywhere(tools, "test://item/2", size).catch((): Array<string> => [])).includes("sent"),
        "re-subscribed on a new connection"
      )
      const now = (await manager.pool("fx")).connections.map((c) => c.id)
      // The connection that holds it now is a new one.
      expect(now.some((id) => !before.includes(id))).toBe(true)
      await until(() => updates.length >= 1, "the update after the move arrived")
      expect(updates[0]).toEqual({ uri: "test://item/2" })
    })
  })
})

describe.each(Object.entries(transports))("cancellation over %s", (_name, config) => {
  it("an aborted call sends notifications/cancelled for its request, which the server sees", async () => {
    const manager = await start(config(), {
      minConnections: 1,
      maxConnections: 1,
      maxConcurrentRequestsPerConnection: 2
    })
    const tools = manager.tools("fx")
    const controller = new AbortController()
    const call = tools.callTool({ name: "sleep", arguments: { ms: 30_000 } }, undefined, { signal: controller.signal })
    // Asserted below; a failure before that must not leave its rejection unhandled.
    call.catch(() => undefined)
    const seen = async () => {
      const result = await tools.callTool({ name: "requests_seen", arguments: {} })
      return result.structuredContent as {
        readonly inFlight: ReadonlyArray<unknown>
        readonly cancelled: ReadonlyArray<{ readonly requestId: unknown; readonly reason?: string }>
      }
    }
    await until(async () => (await seen()).inFlight.length === 1, "the sleep is in flight on the server")
    const [sleeping] = (await seen()).inFlight
    controller.abort(new Error("the user went away"))
    await expect(call).rejects.toMatchObject({ _tag: "MCPAborted" })
    await until(async () => (await seen()).cancelled.length === 1, "the server saw the cancellation")
    const after = await seen()
    expect(after.cancelled[0]?.requestId).toBe(sleeping)
    expect(after.inFlight).toEqual([])
  })
})

describe("logging through the pool", () => {
  effectIt.live("each message reaches the logger at its mapped level, tagged with the server", () => {
    const logs = captureLogs("Debug")
    return Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...defaults, minConnections: 1, maxConnections: 1 }
      )
      const tools = yield* manager.getMcpTools("fx")
      yield* tools.setLoggingLevel("debug")
      yield* tools.callTool({ name: "log", arguments: { message: "hello from the server" } })
      yield* realWait(() => logs.messages.filter((m) => m === "hello from the server").length === 8)
      const expected: Record<string, string> = {
        debug: "DEBUG",
        info: "INFO",
        notice: "INFO",
        warning: "WARN",
        error: "ERROR",
        critical: "FATAL",
        alert: "FATAL",
        emergency: "FATAL"
      }
      for (const [mcpLevel, level] of Object.entries(expected)) {
        const line = logs.lines.find((l) => l.includes(`mcpLevel=${mcpLevel}`) && l.includes("hello from the server"))
        expect(line, mcpLevel).toContain(`level=${level}`)
        expect(line).toContain("server=fx")
        expect(line).toContain("logger=fixture")
      }
    }).pipe(Effect.scoped, logs.capture)
  })

  effectIt.live("setLoggingLevel applies to every connection, also one opened later", () => {
    const logs = captureLogs("Debug")
    return Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...defaults, minConnections: 1, maxConnections: 1 }
      )
      const tools = yield* manager.getMcpTools("fx")
      const pool = yield* manager.pool("fx")
      const logAll = Effect.map(tools.callTool({ name: "log", arguments: {} }), (result) => {
        const answer = JSON.parse(text(result)) as { readonly sent: ReadonlyArray<string>; readonly level: unknown }
        return answer
      })
      yield* tools.setLoggingLevel("error")
      expect((yield* logAll).sent).toEqual(["error", "critical", "alert", "emergency"])
      // The connection's server goes; the one that replaces it gets the level before any call.
      const pid = text(yield* tools.callTool({ name: "pid", arguments: {} }))
      yield* Effect.ignore(tools.callTool({ name: "crash", arguments: {} }))
      yield* realWait(() => pool.snapshot().totalConnections === 1 && pool.connections()[0]?.pid !== Number(pid))
      const later = yield* logAll
      expect(later.level).toBe("error")
      expect(later.sent).toEqual(["error", "critical", "alert", "emergency"])
      expect(text(yield* tools.callTool({ name: "pid", arguments: {} }))).not.toBe(pid)
    }).pipe(Effect.scoped, logs.capture)
  })
})

describe("list changes as a Stream", () => {
  effectIt.live("listChanged carries every list_changed, from any connection, after the catalog forgot", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...defaults, minConnections: 2, maxConnections: 2 }
      )
      const tools = yield* manager.getMcpTools("fx")
      const received = yield* Effect.forkChild(Stream.runCollect(Stream.take(tools.listChanged, 3)))
      // Let the subscriber start before anything is sent.
      yield* Effect.sleep("50 millis")
      yield* Effect.forEach(
        ["tools", "prompts", "resources"] as const,
        (kind) => tools.callTool({ name: "notify", arguments: { kind } }),
        { concurrency: "unbounded" }
      )
      const events = yield* Fiber.join(received)
      expect(
        Array.from(events)
          .map((e) => e.list)
          .toSorted()
      ).toEqual(["prompts", "resources", "tools"])
      expect(Array.from(events).every((e) => e.serverName === "fx")).toBe(true)
    }).pipe(Effect.scoped)
  )
})
