import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { describe, expect, it } from "@effect/vitest"
import {
  descendantsOf,
  fixtureStdioConfig,
  serverEverythingStdioConfig,
  startHttpFixtureServer,
  wrapperPath
} from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Connection from "../src/Connection.js"
import * as Live from "../src/internal/connection.js"
import * as Manager from "../src/MCPConnectionManager.js"
import * as Pool from "../src/MCPConnectionPool.js"
import type { PoolConfigInput } from "../src/PoolConfig.js"
import { captureLogs, httpFixtureServer, realWait, startManager, text, unusedPort } from "./support.js"

/** The pool's own view of a connection it lent (the bookkeeping it writes). */
const isLive = (connection: Connection.Connection): connection is Live.LiveConnection =>
  "requestMapsRenewedAt" in connection

const fast: PoolConfigInput = {
  minConnections: 1,
  maxConnections: 4,
  connectionTimeout: 10,
  retryAttempts: 0,
  shutdownGracePeriod: 0.5
}

/** A line the pool logs when one of its connections dies. */
const died = (server: string) => (message: string) =>
  message.startsWith(`connection #`) && message.includes(`to "${server}" died: `)

const directClient = async (transport: StdioClientTransport | StreamableHTTPClientTransport) => {
  const client = new Client({ name: "direct", version: "1.0.0" })
  await client.connect(transport)
  return client
}

const fixture = fixtureStdioConfig()
const everything = serverEverythingStdioConfig()

describe("MCPConnectionPool over real servers", () => {
  it.live("listTools and callTool through the pool equal the SDK Client's answers (fixture over stdio and HTTP)", () =>
    Effect.gen(function* () {
      const http = yield* Effect.acquireRelease(
        Effect.promise(() => startHttpFixtureServer()),
        (server) => Effect.promise(() => server.close())
      )
      const { manager } = yield* startManager({ stdio: { ...fixture }, http: { type: "http", url: http.url } }, fast)
      for (const name of ["stdio", "http"] as const) {
        const tools = yield* manager.getMcpTools(name)
        const pooledList = yield* tools.listTools()
        const pooledEcho = yield* tools.callTool({ name: "echo", arguments: { text: "hi" } })
        const direct = yield* Effect.acquireRelease(
          Effect.promise(() =>
            directClient(
              name === "stdio"
                ? new StdioClientTransport({ command: fixture.command, args: fixture.args, stderr: "ignore" })
                : new StreamableHTTPClientTransport(new URL(http.url))
            )
          ),
          (client) => Effect.promise(() => client.close())
        )
        const directList = yield* Effect.promise(() => direct.listTools())
        const directEcho = yield* Effect.promise(() => direct.callTool({ name: "echo", arguments: { text: "hi" } }))
        expect(pooledList).toEqual(directList)
        expect(pooledEcho).toEqual(directEcho)
        expect(text(pooledEcho)).toBe("hi")
      }
    })
  )

  it.live("server-everything over stdio answers through the pool as it does directly", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager({ everything }, { ...fast, connectionTimeout: 30 })
      const tools = yield* manager.getMcpTools("everything")
      const pooledList = yield* tools.listTools()
      const pooledEcho = yield* tools.callTool({ name: "echo", arguments: { message: "pooled" } })
      const direct = yield* Effect.acquireRelease(
        Effect.promise(() =>
          directClient(
            new StdioClientTransport({ command: everything.command, args: everything.args, stderr: "ignore" })
          )
        ),
        (client) => Effect.promise(() => client.close())
      )
      const directList = yield* Effect.promise(() => direct.listTools())
      expect(pooledList.tools.map((t) => t.name).toSorted()).toEqual(directList.tools.map((t) => t.name).toSorted())
      expect(text(pooledEcho)).toContain("pooled")
      const version = yield* tools.getServerVersion()
      expect(version?.name).toBeTruthy()
    })
  )

  it.live(
    "500 concurrent calls on a pool with max 4: all succeed, at most 4 connections, hits + misses = acquisitions",
    () => {
      // The pool is exhausted on purpose: its alert is kept out of the output.
      const logs = captureLogs()
      return Effect.gen(function* () {
        const { manager } = yield* startManager({ fx: fixture }, { ...fast, minConnections: 1, maxConnections: 4 })
        const tools = yield* manager.getMcpTools("fx")
        const pool = yield* manager.pool("fx")
        let peak = 0
        const results = yield* Effect.forEach(
          Array.from({ length: 500 }, (_, i) => i),
          (i) =>
            tools.callTool({ name: "echo", arguments: { text: `n${i}` } }).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  peak = Math.max(peak, pool.snapshot().totalConnections)
                })
              )
            ),
          { concurrency: "unbounded" }
        )
        expect(results.map(text)).toEqual(Array.from({ length: 500 }, (_, i) => `n${i}`))
        const { counters } = pool.snapshot()
        expect(counters.opened).toBeLessThanOrEqual(4)
        expect(peak).toBeLessThanOrEqual(4)
        expect(counters.requests).toBe(500)
        expect(counters.errors).toBe(0)
        expect(counters.hits + counters.misses).toBe(500)
        const leases = pool.connections().reduce((sum, c) => sum + c.leases, 0)
        expect(leases).toBe(500)
      }).pipe(logs.capture)
    }
  )

  it.live(
    "a server killed while a call is in flight: that call fails with MCPConnectionError, the next succeed",
    () => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const { manager } = yield* startManager({ fx: fixture }, { ...fast, minConnections: 1, maxConnections: 1 })
        const tools = yield* manager.getMcpTools("fx")
        const pool = yield* manager.pool("fx")
        const [first] = pool.connections()
        const pid = first?.pid
        expect(pid).toBeTypeOf("number")
        const inFlight = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 5_000 } }))
        yield* realWait(() => (first?.inFlight ?? 0) > 0, 5_000)
        process.kill(pid ?? 0, "SIGKILL")
        const exit = yield* Fiber.await(inFlight)
        expect(Exit.isFailure(exit)).toBe(true)
        const error = Exit.findErrorOption(exit)
        expect(error._tag === "Some" && error.value._tag).toBe("MCPConnectionError")
        expect(error._tag === "Some" && error.value.serverName).toBe("fx")
        const after = yield* tools.callTool({ name: "pid" })
        expect(Number(text(after))).not.toBe(pid)
        expect(pool.snapshot().counters.connectionErrors).toBeGreaterThanOrEqual(1)
        // The pool says so, at Warn.
        yield* realWait(() => logs.messages.some(died("fx")), 5_000)
      }).pipe(logs.capture)
    }
  )

  it.live("a server that died while idle is never lent: the next call succeeds on a fresh connection", () => {
    const logs = captureLogs()
    return Effect.gen(function* () {
      const { manager } = yield* startManager({ fx: fixture }, { ...fast, minConnections: 1, maxConnections: 1 })
      const tools = yield* manager.getMcpTools("fx")
      const pool = yield* manager.pool("fx")
      const before = Number(text(yield* tools.callTool({ name: "pid" })))
      process.kill(before, "SIGKILL")
      yield* realWait(() => !pool.connections().some((c) => c.pid === before), 5_000)
      const after = Number(text(yield* tools.callTool({ name: "pid" })))
      expect(after).not.toBe(before)
      expect(pool.snapshot().counters.errors).toBe(0)
      yield* realWait(() => logs.messages.some(died("fx")), 5_000)
    }).pipe(logs.capture)
  })

  it.live("a request beyond requestTimeout fails with MCPTimeout and the pool keeps serving", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixture },
        { ...fast, minConnections: 2, maxConnections: 2, requestTimeout: 0.3 }
      )
      const tools = yield* manager.getMcpTools("fx")
      const [slow, quick] = yield* Effect.all(
        [
          Effect.flip(tools.callTool({ name: "sleep", arguments: { ms: 5_000 } })),
          tools.callTool({ name: "echo", arguments: { text: "still here" } })
        ],
        { concurrency: "unbounded" }
      )
      expect(slow._tag).toBe("MCPTimeout")
      expect(slow.message).toContain("fx")
      expect(text(quick)).toBe("still here")
      const again = yield* tools.callTool({ name: "echo", arguments: { text: "again" } })
      expect(text(again)).toBe("again")
    })
  )

  it.live("requestTimeout bounds the whole request; progress extends it only when the caller asks", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixture },
        { ...fast, minConnections: 4, maxConnections: 4, requestTimeout: 1 }
      )
      const tools = yield* manager.getMcpTools("fx")
      // As the Promise API runs its calls: uninterruptible, so without an abort signal.
      const promiseTools = Manager.promiseTools(manager, "fx", (effect) =>
        Effect.runFork(Effect.provideService(effect, Pool.Uninterruptible, true))
      )
      // A plain tool call asks for no progress, as the SDK's own client does not.
      const bare = yield* tools.callTool({ name: "echo_meta" })
      const meta: unknown = "structuredContent" in bare ? bare.structuredContent : undefined
      expect(meta).toEqual({ meta: {} })
      // A second of timeout against progress every 50 ms: a gap of half a second on a busy machine
      // once failed the call that progress keeps alive.
      const tick = { name: "sleep", arguments: { ms: 3_000, progressIntervalMs: 50 } }
      const heard = { effect: 0, promise: 0, reset: 0, capped: 0 }
      const [effect, promise, reset, capped] = yield* Effect.all(
        [
          // Both flavours: an Effect call hands the SDK an abort signal, a Promise call none.
          Effect.flip(tools.callTool(tick, undefined, { onprogress: () => heard.effect++ })),
          Effect.promise(() =>
            promiseTools.callTool(tick, undefined, { onprogress: () => heard.promise++ }).then(
              () => undefined,
              (error: unknown) => error
            )
          ),
          tools.callTool(tick, undefined, { onprogress: () => heard.reset++, resetTimeoutOnProgress: true }),
          Effect.flip(
            tools.callTool(tick, undefined, {
              onprogress: () => heard.capped++,
              resetTimeoutOnProgress: true,
              maxTotalTimeout: 1_800
            })
          )
        ],
        { concurrency: "unbounded" }
      )
      // Progress flowed on all of them; only the callers who asked had their timeout reset by it.
      expect(heard.effect).toBeGreaterThan(0)
      expect(effect._tag === "MCPTimeout" && effect.timeoutMs).toBe(1_000)
      expect(heard.promise).toBeGreaterThan(0)
      expect(promise).toMatchObject({ _tag: "MCPTimeout", timeoutMs: 1_000 })
      expect(heard.reset).toBeGreaterThan(heard.effect)
      expect(text(reset)).toBe("slept 3000 ms")
      // The SDK's maxTotalTimeout still caps a request whose timeout progress resets.
      expect(heard.capped).toBeGreaterThan(heard.effect)
      expect(capped._tag === "MCPTimeout" && capped.timeoutMs).toBe(1_800)
      expect((yield* manager.pool("fx")).snapshot().counters.timeouts).toBe(3)
    })
  )

  it.live("an interrupted call is cancelled at once; its connection is given back and keeps serving", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager({ fx: fixture }, { ...fast, maxConnections: 1 })
      const tools = yield* manager.getMcpTools("fx")
      const pool = yield* manager.pool("fx")
      const fiber = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 30_000 } }))
      yield* realWait(() => !pool.snapshot().connections.every((c) => c.inFlight === 0), 5_000)
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      expect(Date.now() - started).toBeLessThan(5_000)
      expect(pool.snapshot().connections.map((c) => c.inFlight)).toEqual([0])
      expect(pool.snapshot().inUseConnections).toBe(0)
      const after = yield* tools.callTool({ name: "echo", arguments: { text: "after" } })
      expect(text(after)).toBe("after")
      expect(pool.snapshot().counters.connectionErrors).toBe(0)
    })
  )

  it.live("a command that does not exist and a URL nothing listens on: MCPConnectionError naming the server", () => {
    // Each failed connect is logged at Warn, on purpose here.
    const logs = captureLogs()
    return Effect.gen(function* () {
      const { manager } = yield* startManager(
        {
          missing: { command: "/nonexistent/mcp-server-binary", args: [] },
          nowhere: { type: "http", url: `http://127.0.0.1:${yield* unusedPort}/mcp` }
        },
        { ...fast, minConnections: 0, connectionTimeout: 5 }
      )
      for (const name of ["missing", "nowhere"]) {
        const tools = yield* manager.getMcpTools(name)
        const started = Date.now()
        const error = yield* Effect.flip(tools.listTools())
        expect(Date.now() - started).toBeLessThan(5_000)
        expect(error._tag).toBe("MCPConnectionError")
        expect(error.message).toContain(`"${name}"`)
      }
    }).pipe(logs.capture)
  })

  it.live("1,000 calls at once on one connection: every one succeeds, no listener warning, in-flight capped", () => {
    // The pool is exhausted on purpose: its alert is kept out of the output.
    const logs = captureLogs()
    return Effect.gen(function* () {
      const { manager } = yield* startManager(
        { fx: fixture },
        { ...fast, minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 5_000 }
      )
      const warnings: Array<string> = []
      const onWarning = (warning: Error) => warnings.push(warning.name)
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on("warning", onWarning)),
        () => Effect.sync(() => process.off("warning", onWarning))
      )
      const tools = yield* manager.getMcpTools("fx")
      const pool = yield* manager.pool("fx")
      let peak = 0
      // Large payloads fill the pipe to the server, so writes queue under backpressure.
      const payload = "x".repeat(20_000)
      const results = yield* Effect.forEach(
        Array.from({ length: 1_000 }, (_, i) => i),
        () =>
          tools.callTool({ name: "echo", arguments: { text: payload } }).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                peak = Math.max(peak, ...pool.connections().map((c) => c.inFlight))
              })
            )
          ),
        { concurrency: "unbounded" }
      )
      expect(results.every((result) => text(result) === payload)).toBe(true)
      expect(warnings).toEqual([])
      expect(peak).toBeLessThanOrEqual(256)
      expect(peak).toBeGreaterThan(1)
    }).pipe(logs.capture)
  })

  it.live(
    "2,000 calls at once on 3 connections of one request each: they wait in line, a server killed meanwhile is replaced, all succeed",
    () => {
      // The pool is exhausted, and a server killed, on purpose: their lines are kept out of the output.
      const logs = captureLogs()
      return Effect.gen(function* () {
        const { manager } = yield* startManager(
          { fx: fixture },
          { ...fast, minConnections: 3, maxConnections: 3, maxConcurrentRequestsPerConnection: 1, retryAttempts: 2 }
        )
        const tools = yield* manager.getMcpTools("fx")
        const pool = yield* manager.pool("fx")
        let peak = 0
        let peakWaiting = 0
        let killed: number | undefined
        const results = yield* Effect.forEach(
          Array.from({ length: 2_000 }, (_, i) => i),
          (i) =>
            Effect.suspend(() => {
              if (i === 1_000) {
                // One server dies with borrowers in line: the line must not stall behind it.
                killed = pool.connections()[0]?.pid
                if (killed !== undefined) process.kill(killed, "SIGKILL")
              }
              return tools.callTool({ name: "echo", arguments: { text: String(i) } }, undefined, {
                idempotent: true
              })
            }).pipe(
              Effect.tap(() =>
                Effect.sync(() => {
                  const connections = pool.connections()
                  peak = Math.max(peak, ...connections.map((c) => c.inFlight))
                  peakWaiting = Math.max(peakWaiting, pool.snapshot().pendingRequests)
                })
              )
            ),
          { concurrency: "unbounded" }
        )
        expect(results.map(text)).toEqual(Array.from({ length: 2_000 }, (_, i) => String(i)))
        expect(peak).toBe(1)
        expect(peakWaiting).toBeGreaterThan(100)
        expect(killed).toBeTypeOf("number")
        expect(pool.connections().map((c) => c.pid)).not.toContain(killed)
        const snapshot = pool.snapshot()
        expect(snapshot.pendingRequests).toBe(0)
        expect(snapshot.counters.exhausted).toBe(0)
        expect(snapshot.totalConnections).toBeLessThanOrEqual(3)
      }).pipe(logs.capture)
    }
  )

  it.live("closing a pool with borrowers in line ends them, and no process is left", () => {
    // The pool is exhausted on purpose: its alert is kept out of the output.
    const logs = captureLogs()
    return Effect.gen(function* () {
      const { manager, close } = yield* startManager({ fx: fixture }, { ...fast, minConnections: 1, maxConnections: 1 })
      const tools = yield* manager.getMcpTools("fx")
      const pool = yield* manager.pool("fx")
      const pid = pool.connections()[0]?.pid
      const calls = yield* Effect.forEach(
        Array.from({ length: 20 }, () => tools.callTool({ name: "sleep", arguments: { ms: 200 } })),
        (call) => Effect.forkChild(call)
      )
      yield* realWait(() => pool.snapshot().pendingRequests === 19, 5_000)
      yield* close
      const exits = yield* Effect.forEach(calls, Fiber.await)
      // The call in flight may finish or fail as its server is stopped; those in line never run.
      expect(exits.slice(1).every((exit) => Exit.isFailure(exit))).toBe(true)
      expect(pool.snapshot().pendingRequests).toBe(0)
      expect(pid).toBeTypeOf("number")
      expect(() => process.kill(pid ?? 0, 0)).toThrow()
    }).pipe(logs.capture)
  })

  it.live("a remote server restarted on the same port: the forgotten session is replaced and the call retried", () => {
    // The server goes away on purpose: what the pool logs about it is kept out of the output.
    const logs = captureLogs()
    return Effect.gen(function* () {
      const first = yield* httpFixtureServer()
      const { manager } = yield* startManager(
        { remote: { type: "http", url: first.url } },
        { ...fast, minConnections: 1, maxConnections: 1, retryAttempts: 1, retryDelay: 0 }
      )
      const tools = yield* manager.getMcpTools("remote")
      const pool = yield* manager.pool("remote")
      const before = text(yield* tools.callTool({ name: "pid" }))
      yield* Effect.promise(() => first.stop())
      const second = yield* httpFixtureServer({ port: first.port })
      const after = text(yield* tools.callTool({ name: "pid" }))
      expect(after).not.toBe(before)
      expect(after).toBe(String(second.pid))
      const { counters } = pool.snapshot()
      expect(counters.connectionErrors).toBeGreaterThanOrEqual(1)
      expect(counters.retries).toBeGreaterThanOrEqual(1)
      expect(counters.errors).toBe(0)
    }).pipe(logs.capture)
  })

  it.live("after shutdown no child process remains, also for servers behind sh -c and an npx-style wrapper", () =>
    Effect.gen(function* () {
      const script = [fixture.command, ...fixture.args].map((part) => `'${part}'`).join(" ")
      const servers = {
        direct: fixture,
        shell: { command: "sh", args: ["-c", `${script}; true`] },
        wrapped: { command: process.execPath, args: [wrapperPath, fixture.command, ...fixture.args] }
      }
      const { manager, close } = yield* startManager(servers, { ...fast, minConnections: 2 })
      for (const name of Object.keys(servers)) {
        const tools = yield* manager.getMcpTools(name)
        expect(text(yield* tools.callTool({ name: "echo", arguments: { text: name } }))).toBe(name)
      }
      const seen = (yield* Effect.promise(() => descendantsOf(process.pid))).length
      yield* close
      // 2 connections each; the sh and wrapper servers are two processes deep.
      expect(seen).toBeGreaterThanOrEqual(10)
      const left = yield* Effect.promise(() => descendantsOf(process.pid))
      expect(left).toEqual([])
    })
  )

  it.live(
    "fresh request maps for a connection in use: requests in flight are answered, and the pool renews when due",
    () =>
      Effect.gen(function* () {
        const { manager } = yield* startManager(
          { fx: fixture },
          { ...fast, maxConnections: 1, maxConcurrentRequestsPerConnection: 64 }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        yield* tools.ping()
        const [connection] = pool.connections()
        if (connection === undefined || !isLive(connection)) return yield* Effect.die("no connection")
        const mapsOf = () =>
          ["_responseHandlers", "_progressHandlers", "_timeoutInfo"].map((key): unknown =>
            Reflect.get(connection.client, key)
          )

        // Renewed while 50 requests wait for their answers, each is answered.
        const waits = Array.from({ length: 50 }, (_, i) => 300 + i)
        const calls = yield* Effect.forkChild(
          Effect.forEach(waits, (ms) => tools.callTool({ name: "sleep", arguments: { ms } }), {
            concurrency: "unbounded"
          })
        )
        yield* realWait(() => connection.inFlight === 50, 5_000)
        const before = mapsOf()
        Live.renewRequestMaps(connection, performance.now())
        const after = mapsOf()
        for (const [i, map] of after.entries()) {
          expect(map).toBeInstanceOf(Map)
          expect(map).not.toBe(before[i])
          expect([...(map as Map<unknown, unknown>).keys()]).toEqual([...(before[i] as Map<unknown, unknown>).keys()])
        }
        expect((after[0] as Map<unknown, unknown>).size).toBe(50)
        expect((yield* Fiber.join(calls)).map(text)).toEqual(waits.map((ms) => `slept ${ms} ms`))

        // The pool renews a connection whose last renewal is older than REQUEST_MAPS_RENEWAL_MS.
        connection.requestMapsRenewedAt = performance.now() - Live.REQUEST_MAPS_RENEWAL_MS - 1
        const stale = mapsOf()
        yield* tools.callTool({ name: "echo", arguments: { text: "renewed" } })
        expect(mapsOf().every((map, i) => map !== stale[i])).toBe(true)
        // ... and leaves alone one whose renewal is not due.
        connection.requestMapsRenewedAt = performance.now()
        const fresh = mapsOf()
        yield* tools.callTool({ name: "echo", arguments: { text: "kept" } })
        expect(mapsOf().every((map, i) => map === fresh[i])).toBe(true)
      })
  )
})
