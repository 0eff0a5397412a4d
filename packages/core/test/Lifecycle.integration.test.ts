import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { descendantsOf, fixtureStdioConfig, processGroupAlive } from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import { MCPConnectionError, MCPManagerClosed } from "../src/Errors.js"
import {
  createMcpConnectionManager,
  createPooledMcpTools,
  getMcpConnectionManager,
  shutdownMcpConnectionManager
} from "../src/PromiseApi.js"
import type { Alert } from "../src/Alerts.js"
import {
  advanceUntil,
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

/** A file whose existence makes the fixture server refuse to start (exit 3 before any handshake). */
const refusal = () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-pool-refuse-"))
  const flag = join(dir, "refuse")
  return {
    server: fixtureStdioConfig(["--refuse-if-exists", flag]),
    refuse: () => writeFileSync(flag, ""),
    allow: () => rmSync(flag, { force: true }),
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true })
  }
}

describe("a pool never wedges", () => {
  it.effect(
    "a slot that keeps failing to reconnect never holds the live connection: calls use it; whole again on its own",
    () =>
      Effect.gen(function* () {
        using flag = refusal()
        const { manager, close } = yield* startManager(
          { fx: flag.server },
          { ...quick, minConnections: 2, maxConnections: 2, healthCheckInterval: 5, acquireTimeout: 5, retryDelay: 1 }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        const [lost] = pool.connections()
        if (lost?.pid === undefined) return yield* Effect.die("no stdio connection")

        // The server cannot start again; one of its two processes dies.
        flag.refuse()
        process.kill(lost.pid, "SIGKILL")
        yield* realWait(() => pool.snapshot().totalConnections === 1 && pool.counters.connectionErrors >= 1)
        // Health checks come and go while the slot keeps failing.
        for (let checks = 1; checks <= 4; checks++) {
          yield* TestClock.adjust("5 seconds")
          yield* realWait(() => pool.counters.healthChecks === checks)
        }
        // The live connection serves every call, one after another and three at once.
        const calls = Effect.forEach(
          Array.from({ length: 9 }, (_, i) => i),
          (i) => tools.callTool({ name: "echo", arguments: { text: `call-${i}` } }),
          { concurrency: 3 }
        )
        const results = yield* withinRealTime(10_000, "the calls", calls)
        expect(results.map(text)).toEqual(Array.from({ length: 9 }, (_, i) => `call-${i}`))
        expect(pool.snapshot()).toMatchObject({ inUseConnections: 0, pendingRequests: 0 })

        // Back up: the pool opens what it lacks by itself, with no borrower and no health check.
        flag.allow()
        const checksBefore = pool.counters.healthChecks
        yield* manager.stopMonitoring
        yield* advanceUntil(
          () => pool.snapshot().totalConnections === 2,
          "60 seconds",
          () => pool.counters.connectionErrors
        )
        // A check pings real processes: give one that had started the time to be counted.
        yield* realSleep(300)
        expect(pool.counters.healthChecks).toBe(checksBefore)
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )
})

describe("configureServerPool drains the old pool", () => {
  it.effect(
    "the call in flight finishes on the old pool, the calls in line go to the new one, then the old closes",
    () =>
      Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig() },
          { ...quick, minConnections: 1, maxConnections: 1 }
        )
        const tools = yield* manager.getMcpTools("fx")
        const before = yield* manager.pool("fx")
        const oldPid = Number(text(yield* tools.callTool({ name: "pid" })))

        const inFlight = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 800 } }))
        yield* realWait(() => before.snapshot().inUseConnections === 1)
        const queued = yield* Effect.forkChild(
          Effect.forEach(["a", "b", "c"], (t) => tools.callTool({ name: "echo", arguments: { text: t } }), {
            concurrency: "unbounded"
          })
        )
        yield* realWait(() => before.snapshot().pendingRequests === 3)

        yield* manager.configureServerPool("fx", { maxConnections: 3 })
        const after = yield* manager.pool("fx")
        expect(after.config.maxConnections).toBe(3)
        expect(text(yield* Fiber.join(inFlight))).toBe("slept 800 ms")
        expect((yield* Fiber.join(queued)).map(text)).toEqual(["a", "b", "c"])
        expect(before.counters.errors).toBe(0)

        // New calls run on the new pool's processes; the old process ends once its call is done.
        const newPid = Number(text(yield* tools.callTool({ name: "pid" })))
        expect(newPid).not.toBe(oldPid)
        yield* realWait(() => !processGroupAlive(oldPid))
        // Borrowers waited on a full pool (exhaustion, rightly); nothing failed.
        expect(manager.alerts.history().map((alert) => alert.type)).toEqual(["pool_exhaustion"])
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )
})

describe("configureServerPool while a call waits to retry", () => {
  it.effect("the retry finds the old pool draining and runs on the new one", () =>
    Effect.gen(function* () {
      using flag = refusal()
      flag.refuse()
      const { manager, close } = yield* startManager(
        { fx: flag.server },
        { ...quick, minConnections: 0, maxConnections: 1, retryAttempts: 2, retryDelay: 1 }
      )
      const before = yield* manager.pool("fx")
      const tools = yield* manager.getMcpTools("fx")
      const call = yield* Effect.forkChild(tools.callTool({ name: "echo", arguments: { text: "retried" } }))
      // The first attempt fails to connect; the retry sleeps on the test clock.
      yield* realWait(() => before.counters.connectionErrors === 1)
      flag.allow()
      yield* manager.configureServerPool("fx", { maxConnections: 2 })
      yield* TestClock.adjust("3 seconds")
      expect(text(yield* Fiber.join(call))).toBe("retried")
      const after = yield* manager.pool("fx")
      expect(after.counters.requests).toBe(1)
      expect(after.counters.hits + after.counters.misses).toBe(1)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )
})

describe("close()", () => {
  it("with 500 calls in flight: each settles with a result or MCPManagerClosed, and no outage is reported", async () => {
    const manager = await createMcpConnectionManager({
      servers: { fx: fixtureStdioConfig() },
      defaults: { ...quick, minConnections: 2, maxConnections: 4 }
    })
    const alerts: Array<Alert> = []
    manager.onAlert((alert) => alerts.push(alert))
    const tools = manager.tools("fx")
    const calls = Array.from({ length: 500 }, (_, i) =>
      tools.callTool({ name: "sleep", arguments: { ms: 20 + (i % 7) } }).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error })
      )
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    await manager.close()
    const outcomes = await Promise.all(calls)
    const failures = outcomes.flatMap((outcome) => (outcome.ok ? [] : [outcome.error]))
    expect(failures.length).toBeGreaterThan(0)
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(MCPManagerClosed)
      expect(failure).toMatchObject({ _tag: "MCPManagerClosed", serverName: "fx" })
    }
    // Whether the pool was judged exhausted depends on how far it grew; an outage it was not.
    expect(alerts.filter((alert) => alert.type !== "pool_exhaustion")).toEqual([])
    expect(await descendantsOf(process.pid)).toEqual([])
  })

  it("after close every operation rejects with MCPManagerClosed and nothing starts again", async () => {
    const manager = await createMcpConnectionManager({
      servers: { fx: fixtureStdioConfig() },
      defaults: { ...quick, minConnections: 1, maxConnections: 2 },
      monitoring: false
    })
    const tools = manager.tools("fx")
    await manager.close()
    const refused = [
      tools.callTool({ name: "echo", arguments: { text: "late" } }),
      manager.withConnection("fx", (client) => client.ping()),
      manager.configureServerPool("fx", { maxConnections: 3 }),
      manager.startMonitoring(),
      manager.healthCheck("fx"),
      manager.status(),
      manager.pools(),
      manager.pool("fx"),
      manager.tools("fx").listTools()
    ]
    for (const promise of refused) await expect(promise).rejects.toBeInstanceOf(MCPManagerClosed)
    expect(manager.isMonitoring()).toBe(false)
    // Nothing was started by those calls: no server process below us.
    expect(await descendantsOf(process.pid)).toEqual([])
    await manager.close()
  })

  it("the process-wide manager's tools follow a manager created again after shutdown", async () => {
    await shutdownMcpConnectionManager()
    await getMcpConnectionManager({ servers: { fx: fixtureStdioConfig() }, defaults: quick, monitoring: false })
    const tools = createPooledMcpTools("fx")
    const first = text(await tools.callTool({ name: "pid" }))
    await shutdownMcpConnectionManager()
    await getMcpConnectionManager({ servers: { fx: fixtureStdioConfig() }, defaults: quick, monitoring: false })
    const second = text(await tools.callTool({ name: "pid" }))
    expect(second).not.toBe(first)
    await shutdownMcpConnectionManager()
    expect(await descendantsOf(process.pid)).toEqual([])
  })
})

describe("what our own close or a dead server is counted as", () => {
  it.effect("calls ended by close count as neither failures nor errors: no breaker step, no alert", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...quick, minConnections: 2, maxConnections: 2, circuitBreakerFailureThreshold: 1 },
        { alerts: { errorRateMinRequests: 1 } }
      )
      const pool = yield* manager.pool("fx")
      const tools = yield* manager.getMcpTools("fx")
      const calls = yield* Effect.forkChild(
        Effect.forEach(
          Array.from({ length: 20 }, () => 1),
          () => Effect.exit(tools.callTool({ name: "sleep", arguments: { ms: 5_000 } })),
          { concurrency: "unbounded" }
        )
      )
      yield* realWait(() => pool.snapshot().inUseConnections === 2)
      yield* close
      const exits = yield* Fiber.join(calls)
      expect(exits.map((exit) => errorOf(exit)?._tag)).toEqual(Array.from({ length: 20 }, () => "MCPManagerClosed"))
      expect(pool.breaker.stateUnsafe(0)).toBe("closed")
      expect(pool.counters).toMatchObject({ errors: 0, abandoned: 20 })
      // Each connection's close is counted once, also those closed under a call.
      expect(pool.counters.closed).toBe(pool.counters.opened)
      expect(pool.snapshot().window).toEqual({ requests: 0, errors: 0 })
      // Twenty borrowers on two connections: exhausted, rightly; no outage reported.
      expect(manager.alerts.history().map((alert) => alert.type)).toEqual(["pool_exhaustion"])
    }).pipe(onPatientTestClock)
  )

  it.effect("a server that cannot start: its callers get its reason at once, and no pool_exhaustion alert", () =>
    Effect.gen(function* () {
      using flag = refusal()
      flag.refuse()
      const { manager, close } = yield* startManager(
        { down: flag.server },
        { ...quick, minConnections: 2, maxConnections: 2, circuitBreakerFailureThreshold: 100 }
      )
      const tools = yield* manager.getMcpTools("down")
      const exits = yield* withinRealTime(
        10_000,
        "the calls",
        Effect.forEach(
          Array.from({ length: 4 }, () => 1),
          () => Effect.exit(tools.listTools()),
          { concurrency: "unbounded" }
        )
      )
      for (const exit of exits) expect(errorOf(exit)).toBeInstanceOf(MCPConnectionError)
      expect(manager.alerts.history().filter((alert) => alert.type === "pool_exhaustion")).toEqual([])
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )
})
