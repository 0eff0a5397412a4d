import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig, processGroupAlive, spawnHttpFixtureServer } from "@mcp-pool/test-servers"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import { TestClock } from "effect/testing"
import * as Alerts from "../src/Alerts.js"
import {
  MCPConfigError,
  MCPConnectionError,
  MCPHealthCheckError,
  MCPInvalidQuery,
  MCPRequestError
} from "../src/Errors.js"
import * as MCPHealthMonitor from "../src/MCPHealthMonitor.js"
import { createMcpConnectionManager, type LogEntry } from "../src/PromiseApi.js"
import {
  captureLogs,
  errorOf,
  onPatientTestClock,
  processesLeft,
  quick,
  realSleep,
  realWait,
  startManager,
  text,
  withinRealTime
} from "./support.js"

describe("judging a pool", () => {
  it.effect(
    "one failed call in two is no high error rate: the status waits for errorRateMinRequests, as the alert does",
    () =>
      Effect.gen(function* () {
        const { manager } = yield* startManager(
          { fx: fixtureStdioConfig() },
          { ...quick, minConnections: 1, maxConnections: 2 },
          { alerts: { errorRateMinRequests: 10 } }
        )
        const tools = yield* manager.getMcpTools("fx")
        const call = (name: string) => Effect.exit(tools.callTool({ name, arguments: { text: "x" } }))
        yield* call("fail")
        yield* call("echo")
        expect((yield* manager.status).pools.fx).toBe("healthy")
        expect(manager.alerts.history()).toEqual([])
        // Ten calls, three failed: now it is judged, the same way by both.
        for (const name of ["fail", "fail", "echo", "echo", "echo", "echo", "echo", "echo"]) yield* call(name)
        expect((yield* manager.status).pools.fx).toBe("warning")
        expect(manager.alerts.history().map((alert) => alert.type)).toEqual(["high_error_rate"])
      }).pipe(onPatientTestClock)
  )
})

describe("servers that misbehave", () => {
  it.effect("a server that closes its stdout but stays alive: the call fails at once, not at requestTimeout", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...quick, minConnections: 1, maxConnections: 1, requestTimeout: 60 }
      )
      const pool = yield* manager.pool("fx")
      const tools = yield* manager.getMcpTools("fx")
      const pid = Number(text(yield* tools.callTool({ name: "pid" })))
      const exit = yield* withinRealTime(5_000, "the call", Effect.exit(tools.callTool({ name: "close_stdout" })))
      expect(errorOf(exit)).toBeInstanceOf(MCPConnectionError)
      // The process that lived on is ended with its group, and the pool serves on a new one.
      yield* realWait(() => !processGroupAlive(pid))
      expect(text(yield* tools.callTool({ name: "echo", arguments: { text: "next" } }))).toBe("next")
      expect(pool.counters.connectionErrors).toBe(1)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect(
    "a server that answers ping with -32601 is alive: lent after an idle spell, checked healthy, never replaced",
    () =>
      Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig(["--no-ping"]) },
          // Every connection idle for any time is pinged before it is lent.
          { ...quick, minConnections: 2, maxConnections: 2, aliveBypassWindow: 0 }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        const pids = new Set<string>()
        for (let i = 0; i < 4; i++) {
          yield* realSleep(5)
          pids.add(text(yield* tools.callTool({ name: "pid" })))
        }
        expect(yield* manager.healthCheck("fx")).toMatchObject({ healthy: true, checked: 2, failed: 0 })
        // Asked directly, ping is the server's own answer: a JSON-RPC error, not a dead connection.
        const ping = errorOf(yield* Effect.exit(tools.ping()))
        expect(ping).toBeInstanceOf(MCPRequestError)
        expect(ping).toMatchObject({ code: -32601 })
        expect(pool.counters).toMatchObject({ connectionErrors: 0, opened: 2 })
        expect(pids.size).toBeLessThanOrEqual(2)
        expect(manager.alerts.history()).toEqual([])
        yield* close
      }).pipe(onPatientTestClock)
  )

  it.effect("a crash-looping server is not respawned while idle more often than its back-off allows", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig(["--exit-after-handshake", "50"]) },
        { ...quick, minConnections: 1, maxConnections: 2, retryDelay: 1 },
        { monitoring: false }
      )
      const pool = yield* manager.pool("fx")
      // Two deaths in a row: the first is re-opened at once, the next one waits 1 s.
      yield* realWait(() => pool.counters.opened === 2 && pool.snapshot().totalConnections === 0)
      yield* realSleep(1_000)
      expect(pool.counters.opened).toBe(2)
      yield* TestClock.adjust("1 second")
      yield* realWait(() => pool.counters.opened === 3 && pool.snapshot().totalConnections === 0)
      // Then 2 s: one more second of the clock is not enough.
      yield* TestClock.adjust("1 second")
      yield* realSleep(500)
      expect(pool.counters.opened).toBe(3)
      yield* TestClock.adjust("1 second")
      yield* realWait(() => pool.counters.opened === 4)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )
})

describe("failures that say why", () => {
  it.effect("a server that exits at once: the connect error carries its exit code and its last stderr lines", () =>
    Effect.gen(function* () {
      const script = `console.error("starting"); console.error("Error: Cannot find module './does-not-exist.js'"); process.exit(7)`
      const { manager } = yield* startManager(
        { broken: { command: process.execPath, args: ["-e", script] } },
        { ...quick, minConnections: 0, maxConnections: 1 }
      )
      const tools = yield* manager.getMcpTools("broken")
      const error = errorOf(yield* Effect.exit(tools.listTools()))
      expect(error).toBeInstanceOf(MCPConnectionError)
      expect(error).toMatchObject({
        exitCode: 7,
        stderr: ["starting", "Error: Cannot find module './does-not-exist.js'"]
      })
      expect(error?.message).toContain(
        "the server process ended before it answered the MCP handshake (exited with code 7"
      )
      expect(error?.message).toContain("Error: Cannot find module './does-not-exist.js'")
    }).pipe(onPatientTestClock)
  )
})

describe("bad input names what is wrong, all of it, where it is", () => {
  it("a query with two bad parameters names both", () => {
    const query = Alerts.validateQuery({ severity: "urgent", limit: "0" })
    const error = Result.isFailure(query) ? query.failure : undefined
    expect(error).toBeInstanceOf(MCPInvalidQuery)
    expect(error?.message).toBe(
      'Invalid query parameters "severity" (got "urgent"): must be one of info, warning, critical; "limit" (got "0"): must be an integer from 1 to 1000'
    )
  })

  it.effect("a misspelt MCP_POOL_ variable is a warning naming the closest setting", () => {
    const logs = captureLogs()
    const env = {
      MCP_POOL_MAX_CONNECTION: "5",
      MCP_POOL_MIN_CONNECTIONS: "0",
      MCP_CIRCUIT_BREAKER_RECOVERY_TIMOUT: "3",
      MCP_POOL_SOMETHING_ELSE: "x"
    }
    return Effect.gen(function* () {
      yield* startManager({}, {})
      const warnings = logs.messages.filter((line) => line.includes("is not a setting"))
      expect(warnings).toEqual([
        "environment variable MCP_POOL_MAX_CONNECTION is not a setting of mcp-pool and is ignored (did you mean MCP_POOL_MAX_CONNECTIONS?)",
        "environment variable MCP_POOL_SOMETHING_ELSE is not a setting of mcp-pool and is ignored",
        "environment variable MCP_CIRCUIT_BREAKER_RECOVERY_TIMOUT is not a setting of mcp-pool and is ignored (did you mean MCP_CIRCUIT_BREAKER_RECOVERY_TIMEOUT?)"
      ])
    }).pipe(logs.capture, Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))
  })

  it("minConnections above maxConnections in a file names the file and the entry's pool block", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mcp-pool-config-"))
    const file = join(dir, "mcp.json")
    writeFileSync(
      file,
      JSON.stringify({ mcpServers: { fx: { command: "node", pool: { minConnections: 5, maxConnections: 2 } } } })
    )
    try {
      const failure = await createMcpConnectionManager({ configPath: file }).then(
        () => undefined,
        (error: unknown) => error
      )
      expect(failure).toBeInstanceOf(MCPConfigError)
      expect((failure as Error).message).toBe(
        `Invalid MCP pool configuration in ${file} at mcpServers.fx.pool.minConnections (server "fx"): got 5: minConnections must not exceed maxConnections (2)`
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("the environment of a stdio server", () => {
  it.effect("by default the safe variables and the network ones; inheritEnv: true all; a list those too", () =>
    Effect.gen(function* () {
      const set = {
        MCP_POOL_TEST_SECRET: "s3cret-of-the-host",
        MCP_POOL_TEST_OTHER: "other",
        NO_PROXY: "example.invalid"
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const before = Object.fromEntries(Object.keys(set).map((key) => [key, process.env[key]]))
          Object.assign(process.env, set)
          return before
        }),
        (before) =>
          Effect.sync(() => {
            for (const [key, value] of Object.entries(before)) {
              if (value === undefined) delete process.env[key]
              else process.env[key] = value
            }
          })
      )
      const fixture = fixtureStdioConfig()
      const { manager } = yield* startManager(
        {
          plain: fixture,
          all: { ...fixture, inheritEnv: true },
          some: { ...fixture, inheritEnv: ["MCP_POOL_TEST_OTHER"], env: { OWN: "own" } }
        },
        { ...quick, minConnections: 0, maxConnections: 1 },
        { monitoring: false }
      )
      const env = (server: string, name: string) =>
        Effect.flatMap(manager.getMcpTools(server), (tools) =>
          Effect.map(tools.callTool({ name: "env", arguments: { name } }), text)
        )
      expect(yield* env("plain", "MCP_POOL_TEST_SECRET")).toBe("(unset)")
      expect(yield* env("plain", "NO_PROXY")).toBe("example.invalid")
      expect(yield* env("plain", "PATH")).toBe(process.env["PATH"])
      expect(yield* env("all", "MCP_POOL_TEST_SECRET")).toBe("s3cret-of-the-host")
      expect(yield* env("some", "MCP_POOL_TEST_OTHER")).toBe("other")
      expect(yield* env("some", "MCP_POOL_TEST_SECRET")).toBe("(unset)")
      expect(yield* env("some", "OWN")).toBe("own")
      expect(manager.config().servers["some"]).toMatchObject({ inherit_env: ["MCP_POOL_TEST_OTHER"] })
    }).pipe(onPatientTestClock)
  )

  it.live("a stdio server that does not answer the handshake: the message says where to look", () =>
    Effect.gen(function* () {
      const { manager } = yield* startManager(
        { silent: { command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)"] } },
        { ...quick, minConnections: 0, maxConnections: 1, connectionTimeout: 0.5 }
      )
      const error = errorOf(yield* Effect.exit(Effect.flatMap(manager.getMcpTools("silent"), (t) => t.listTools())))
      expect(error?.message).toContain("no answer to the MCP handshake within 500 ms")
      expect(error?.message).toContain('"inheritEnv"')
    }).pipe(captureLogs().capture)
  )
})

describe("a health check asked for always finds out", () => {
  it.effect("with no connection open and the server unreachable: healthy false, with the reason", () =>
    Effect.gen(function* () {
      const gone = yield* Effect.promise(() => spawnHttpFixtureServer())
      yield* Effect.promise(() => gone.stop())
      const { manager } = yield* startManager(
        { remote: { type: "http", url: gone.url } },
        { ...quick, minConnections: 0, maxConnections: 2 }
      )
      const check = yield* manager.healthCheck("remote")
      expect(check).toMatchObject({ server_name: "remote", healthy: false, checked: 1, failed: 1 })
      expect(check.reason).toMatch(/MCP server "remote": connection failed: could not connect/)
      expect((yield* manager.status).pools.remote).toBe("critical")
      // As a readiness gate, the same finding is a typed failure naming the reason.
      const gate = errorOf(yield* Effect.exit(MCPHealthMonitor.ensureHealthy(yield* manager.pool("remote"))))
      expect(gate).toBeInstanceOf(MCPHealthCheckError)
      expect(gate).toMatchObject({ serverName: "remote", checked: 1, failed: 1 })
      expect(gate?.message).toMatch(/MCP server "remote": health check failed: .*could not connect/)
    }).pipe(onPatientTestClock)
  )

  it.effect("with every connection busy: a busy one is pinged", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...quick, minConnections: 1, maxConnections: 1 }
      )
      const pool = yield* manager.pool("fx")
      const tools = yield* manager.getMcpTools("fx")
      const busy = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 1_000 } }))
      yield* realWait(() => pool.snapshot().inUseConnections === 1)
      expect(yield* manager.healthCheck("fx")).toMatchObject({ healthy: true, checked: 1, failed: 0 })
      expect(yield* MCPHealthMonitor.ensureHealthy(pool)).toMatchObject({ healthy: true })
      yield* Fiber.join(busy)
      yield* close
    }).pipe(onPatientTestClock)
  )
})

describe("the Promise API's logging", () => {
  it("a logger callback gets every line at the level asked for, the servers' stderr included", async () => {
    const entries: Array<LogEntry> = []
    const manager = await createMcpConnectionManager({
      servers: { fx: fixtureStdioConfig() },
      defaults: { ...quick, minConnections: 1, maxConnections: 1 },
      monitoring: false,
      logLevel: "debug",
      logger: (entry) => entries.push(entry)
    })
    try {
      await manager
        .tools("fx")
        .callTool({ name: "crash" })
        .catch(() => undefined)
      const stderr = entries.find((entry) => entry.message === "fixture server ready (stdio)")
      expect(stderr).toMatchObject({ level: "debug", annotations: { server: "fx", stream: "stderr" } })
      expect(entries.some((entry) => entry.level === "warning" && /died/.test(entry.message))).toBe(true)
      // One crash is one connection error (the death, not again the call it ended).
      expect((await manager.pools()).pools[0]).toMatchObject({ connection_errors: 1, total_errors: 1 })
    } finally {
      await manager.close()
    }
  })

  it('logLevel "none" logs nothing; serverStderr "inherit" writes the lines to our stderr with the server\'s name', async () => {
    const entries: Array<LogEntry> = []
    const written: Array<string> = []
    const write = process.stderr.write.bind(process.stderr)
    process.stderr.write = (chunk: string | Uint8Array) => {
      written.push(String(chunk))
      return true
    }
    try {
      const manager = await createMcpConnectionManager({
        servers: { fx: fixtureStdioConfig() },
        defaults: { ...quick, minConnections: 1, maxConnections: 1 },
        monitoring: false,
        logLevel: "none",
        logger: (entry) => entries.push(entry),
        serverStderr: "inherit"
      })
      await manager
        .tools("fx")
        .callTool({ name: "crash" })
        .catch(() => undefined)
      await manager.close()
    } finally {
      process.stderr.write = write
    }
    expect(entries).toEqual([])
    expect(written).toContain("[fx] fixture server ready (stdio)\n")
  })
})

describe("calls a caller gets wrong", () => {
  it("callTool without a tool name rejects with a typed error naming what is missing; nothing throws", async () => {
    const manager = await createMcpConnectionManager({
      servers: { fx: fixtureStdioConfig() },
      defaults: { ...quick, minConnections: 0 },
      monitoring: false
    })
    try {
      const tools = manager.tools("fx")
      // @ts-expect-error: an untyped caller may pass anything
      const missing = tools.callTool(undefined)
      await expect(missing).rejects.toBeInstanceOf(MCPRequestError)
      await expect(missing).rejects.toThrow(/callTool needs params with a tool name/)
      // @ts-expect-error: an untyped caller may pass anything
      await expect(tools.callTool({ arguments: {} })).rejects.toMatchObject({ code: -32602 })
      expect((await manager.pools()).pools[0]).toMatchObject({ total_requests: 0, total_errors: 0 })
    } finally {
      await manager.close()
    }
  })
})
