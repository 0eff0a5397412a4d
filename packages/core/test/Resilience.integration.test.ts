import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig, processGroupAlive } from "@mcp-pool/test-servers"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import * as Connection from "../src/Connection.js"
import { MCPCircuitOpen, MCPConnectionError, MCPRequestError } from "../src/Errors.js"
import * as Metrics from "../src/Metrics.js"
import type { PoolConfigInput } from "../src/PoolConfig.js"
import {
  captureLogs,
  errorOf,
  httpFixtureServer,
  onPatientTestClock,
  processesLeft,
  quick,
  realSleep,
  realWait,
  startManager,
  unusedPort
} from "./support.js"

/** One pool, "fx", of one connection to `server`, shaped by `config`: its pool, tools and close. */
const onePool = (config: PoolConfigInput, server: object = fixtureStdioConfig()) =>
  Effect.gen(function* () {
    const { manager, close } = yield* startManager(
      { fx: server },
      { ...quick, minConnections: 1, maxConnections: 1, ...config }
    )
    return { pool: yield* manager.pool("fx"), tools: yield* manager.getMcpTools("fx"), close }
  })

describe("faults, with real processes, on the test clock", () => {
  it.effect(
    "a server frozen with SIGSTOP fails its health check within one interval plus the ping timeout and is replaced",
    () =>
      Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig() },
          { ...quick, minConnections: 3, maxConnections: 3, healthCheckInterval: 10 }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        const [frozen] = pool.connections()
        const pid = frozen?.pid
        if (frozen === undefined || pid === undefined) return yield* Effect.die("no stdio connection")
        process.kill(pid, "SIGSTOP")

        // One interval: the check pings the three idle connections; two answer, one hangs.
        yield* TestClock.adjust("10 seconds")
        yield* realWait(() => pool.snapshot().pingsInFlight === 1)
        expect(pool.counters.healthCheckFailures).toBe(0)
        // The ping timeout (connectionTimeout): the frozen connection fails and is invalidated.
        yield* TestClock.adjust("5 seconds")
        yield* realWait(() => pool.counters.healthCheckFailures === 1)
        expect(Connection.isAlive(frozen)).toBe(false)
        expect(frozen.deadReason).toContain("did not answer a health-check ping within 5000 ms")

        const [alert] = manager.alerts.history()
        expect(alert).toMatchObject({ type: "health_check_failure", severity: "warning", server_name: "fx" })
        expect((yield* manager.status).pools.fx).toBe("warning")

        // Calls keep succeeding, none of them on the frozen connection.
        const leasesBefore = frozen.leases
        const results = yield* Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => tools.callTool({ name: "echo", arguments: { text: `after-${i}` } }),
          { concurrency: 3 }
        )
        expect(results).toHaveLength(30)
        expect(frozen.leases).toBe(leasesBefore)

        // The frozen process was killed with its group (SIGKILL works on a stopped process).
        try {
          process.kill(pid, "SIGCONT")
        } catch {
          // Already gone.
        }
        yield* realWait(() => !processGroupAlive(pid))
        yield* realWait(() => pool.snapshot().totalConnections === 3)
        const after = pool.snapshot()
        expect([after.inUseConnections, after.pendingRequests, after.pingsInFlight]).toEqual([0, 0, 0])
        expect(after.connections.every((c) => c.alive && c.inFlight === 0)).toBe(true)

        // The next interval finds every connection healthy.
        yield* TestClock.adjust("10 seconds")
        yield* realWait(() => pool.counters.healthChecks === 2)
        expect(pool.counters.healthCheckFailures).toBe(1)
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )

  it.effect(
    "a server whose every call crashes it: the breaker opens at exactly the threshold, then fails fast, then admits one probe",
    () => {
      const logs = captureLogs()
      return Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig() },
          {
            ...quick,
            minConnections: 1,
            maxConnections: 2,
            circuitBreakerFailureThreshold: 3,
            circuitBreakerRecoveryTimeout: 30
          }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        const crash = Effect.exit(tools.callTool({ name: "crash" }))

        for (let i = 1; i <= 3; i++) {
          expect(pool.breaker.stateUnsafe(0)).toBe("closed")
          expect(errorOf(yield* crash)).toBeInstanceOf(MCPConnectionError)
        }
        expect(yield* pool.breaker.state).toBe("open")
        expect(manager.alerts.history()[0]).toMatchObject({ type: "circuit_breaker_open", severity: "critical" })
        expect((yield* manager.status).pools.fx).toBe("critical")

        // While open: MCPCircuitOpen at once, carrying when it half-opens, without touching a connection.
        const leases = pool.counters.hits + pool.counters.misses
        const durations: Array<number> = []
        for (let i = 0; i < 1_000; i++) {
          const started = performance.now()
          const error = errorOf(yield* Effect.exit(tools.callTool({ name: "echo", arguments: { text: "x" } })))
          durations.push(performance.now() - started)
          expect(error).toBeInstanceOf(MCPCircuitOpen)
          if (i === 0 && error instanceof MCPCircuitOpen) expect(error.retryAfter.getTime()).toBe(30_000)
        }
        durations.sort((a, b) => a - b)
        expect(durations[500]).toBeLessThan(1)
        expect(pool.counters.hits + pool.counters.misses).toBe(leases)
        expect(pool.counters.rejected).toBe(1_000)

        // After the recovery timeout, one probe goes through; a concurrent call is refused.
        yield* TestClock.adjust("30 seconds")
        expect(yield* pool.breaker.state).toBe("half_open")
        const [a, b] = yield* Effect.all([crash, crash], { concurrency: "unbounded" })
        const outcomes = [errorOf(a), errorOf(b)].map((e) => (e === undefined ? "success" : e._tag)).toSorted()
        expect(outcomes).toEqual(["MCPCircuitOpen", "MCPConnectionError"])
        // The probe crashed too: open again, with a fresh timeout.
        expect(yield* pool.breaker.state).toBe("open")
        expect(pool.breaker.retryAt()).toBe(60_000)

        // A probe that succeeds closes it.
        yield* TestClock.adjust("30 seconds")
        const echo = yield* tools.callTool({ name: "echo", arguments: { text: "back" } })
        expect(echo.content).toEqual([{ type: "text", text: "back" }])
        expect(yield* pool.breaker.state).toBe("closed")
        expect(pool.breaker.transitionCounts()).toEqual({ open: 2, half_open: 2, closed: 1 })
        expect(logs.messages.filter((line) => line.startsWith("Circuit breaker"))).toEqual([
          'Circuit breaker for "fx" opened: 3 consecutive failures',
          'Circuit breaker for "fx" half-open: recovery timeout of 30000 ms elapsed',
          'Circuit breaker for "fx" opened: the probe failed',
          'Circuit breaker for "fx" half-open: recovery timeout of 30000 ms elapsed',
          'Circuit breaker for "fx" closed: the probe succeeded'
        ])
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock, logs.capture)
    }
  )

  it.effect("a remote server stopped and restarted on the same port: the pool recovers without a restart", () =>
    Effect.gen(function* () {
      const first = yield* httpFixtureServer()
      const { manager, close } = yield* startManager(
        { remote: { type: "http", url: first.url } },
        {
          ...quick,
          minConnections: 1,
          maxConnections: 1,
          circuitBreakerFailureThreshold: 2,
          circuitBreakerRecoveryTimeout: 10
        }
      )
      const pool = yield* manager.pool("remote")
      const tools = yield* manager.getMcpTools("remote")
      const echo = (text: string) => Effect.exit(tools.callTool({ name: "echo", arguments: { text } }))
      expect(Exit.isSuccess(yield* echo("before"))).toBe(true)

      yield* Effect.promise(() => first.stop())
      expect(errorOf(yield* echo("down-1"))).toBeInstanceOf(MCPConnectionError)
      expect(errorOf(yield* echo("down-2"))).toBeInstanceOf(MCPConnectionError)
      expect(errorOf(yield* echo("down-3"))).toBeInstanceOf(MCPCircuitOpen)
      expect((yield* manager.status).pools.remote).toBe("critical")

      yield* httpFixtureServer({ port: first.port })
      yield* TestClock.adjust("10 seconds")
      const results = yield* Effect.forEach(["again-1", "again-2", "again-3"], echo)
      expect(results.every(Exit.isSuccess)).toBe(true)
      expect(yield* pool.breaker.state).toBe("closed")
      expect(pool.snapshot().connections.map((c) => c.alive)).toEqual([true])
      yield* close
    }).pipe(onPatientTestClock)
  )

  it.effect(
    "10,000 calls at once with 5 % injected failures on 4 connections: each ends with a result or a typed error",
    () =>
      Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig() },
          { ...quick, minConnections: 4, maxConnections: 4 }
        )
        const pool = yield* manager.pool("fx")
        const tools = yield* manager.getMcpTools("fx")
        const exits = yield* Effect.forEach(
          Array.from({ length: 10_000 }, (_, i) => i),
          (i) =>
            Effect.exit(
              i % 20 === 0
                ? tools.callTool({ name: "fail", arguments: { message: `injected ${i}` } })
                : tools.callTool({ name: "echo", arguments: { text: String(i) } })
            ),
          { concurrency: "unbounded" }
        )
        const tally = new Map<string, number>()
        for (const exit of exits) {
          const key = Exit.isSuccess(exit) ? "result" : (errorOf(exit)?._tag ?? Cause.pretty(exit.cause))
          tally.set(key, (tally.get(key) ?? 0) + 1)
        }
        expect(Object.fromEntries(tally)).toEqual({ result: 9_500, MCPRequestError: 500 })
        expect(exits.filter(Exit.isFailure).every((exit) => errorOf(exit) instanceof MCPRequestError)).toBe(true)

        const snapshot = pool.snapshot()
        expect(snapshot.totalConnections).toBe(4)
        expect([snapshot.inUseConnections, snapshot.pendingRequests]).toEqual([0, 0])
        expect(snapshot.connections.every((c) => c.inFlight === 0 && c.alive)).toBe(true)
        expect(snapshot.counters).toMatchObject({ requests: 10_000, errors: 500, connectionErrors: 0 })
        expect(snapshot.counters.hits + snapshot.counters.misses).toBe(10_000)
        expect(snapshot.circuitBreakerState).toBe("closed")
        // 5 % is below the 10 % threshold; the pool was fully used, though.
        const types = manager.alerts.history().map((a) => a.type)
        expect(types).not.toContain("high_error_rate")
        expect(types).toContain("pool_exhaustion")
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )

  it.effect("pool_exhaustion fires above 90 % utilization and high_error_rate above 10 % errors", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { busy: fixtureStdioConfig(), flaky: fixtureStdioConfig() },
        { ...quick, minConnections: 2, maxConnections: 2 }
      )
      const busy = yield* manager.getMcpTools("busy")
      const busyPool = yield* manager.pool("busy")
      // Two long calls hold both connections; a third waits: utilization 100 %.
      const exits = yield* Effect.forEach(
        [300, 300, 0],
        (ms) => Effect.exit(busy.callTool({ name: "sleep", arguments: { ms } })),
        { concurrency: "unbounded" }
      )
      expect(exits.every(Exit.isSuccess)).toBe(true)
      expect(busyPool.counters.requests).toBe(3)

      const flaky = yield* manager.getMcpTools("flaky")
      // 25 calls, 5 failing: 20 % over the 20-call minimum.
      yield* Effect.forEach(
        Array.from({ length: 25 }, (_, i) => i),
        (i) => Effect.exit(flaky.callTool({ name: i % 5 === 0 ? "fail" : "echo", arguments: { text: "x" } }))
      )

      const history = manager.alerts.history()
      expect(history.map((a) => [a.server_name, a.type, a.severity])).toEqual([
        ["flaky", "high_error_rate", "warning"],
        ["busy", "pool_exhaustion", "warning"]
      ])
      expect(history[0]?.message).toBe('20 % of the calls to "flaky" failed (4 of 20 in the last 60 s)')
      // The third call was about to wait when it found the pool full, and is counted.
      expect(history[1]?.message).toBe('pool of "busy" is 100 % utilized (2 of 2 connections in use, 1 waiting)')
      expect(manager.alerts.history({ severity: "warning", limit: 1 })).toHaveLength(1)
      expect(manager.alerts.history({ severity: "critical" })).toEqual([])
      const status = yield* manager.status
      expect(status.pools).toEqual({ busy: "healthy", flaky: "warning" })
      expect(status.status).toBe("warning")
      yield* close
    }).pipe(onPatientTestClock)
  )
})

describe("the pool_exhaustion condition", () => {
  it.effect("holds while borrowers wait, through every release, and ends when the load does", () =>
    Effect.gen(function* () {
      // No cooldown: every transition into the condition would be an alert of its own.
      const { manager, close } = yield* startManager(
        { busy: fixtureStdioConfig() },
        { ...quick, minConnections: 2, maxConnections: 2 },
        { alerts: { cooldown: 0 } }
      )
      const busy = yield* manager.getMcpTools("busy")
      const busyPool = yield* manager.pool("busy")
      // Four callers on two connections, each calling again as soon as its call ends: someone
      // waits at every release until the last calls. Each caller notes, after each of its first
      // four calls, whether the condition holds and the pool's status says so.
      const held: Array<boolean> = []
      const statuses: Array<Metrics.Status> = []
      const exits = yield* Effect.forEach(
        [1, 2, 3, 4],
        () =>
          Effect.forEach(
            Array.from({ length: 6 }, (_, i) => i),
            (i) =>
              Effect.exit(busy.callTool({ name: "sleep", arguments: { ms: 10 } })).pipe(
                Effect.tap(() =>
                  Effect.sync(() => {
                    if (i >= 4) return
                    held.push(manager.alerts.isActive("busy", "pool_exhaustion"))
                    statuses.push(Metrics.status(busyPool))
                  })
                )
              )
          ),
        { concurrency: "unbounded" }
      )
      expect(exits.flat().every(Exit.isSuccess)).toBe(true)
      expect(held).toEqual(Array.from({ length: 16 }, () => true))
      expect(statuses).toEqual(Array.from({ length: 16 }, () => "warning"))
      const raised = manager.alerts.history().filter((alert) => alert.type === "pool_exhaustion")
      expect(raised.map((alert) => alert.message)).toEqual([
        'pool of "busy" is 100 % utilized (2 of 2 connections in use, 1 waiting)'
      ])
      expect(manager.alerts.isActive("busy", "pool_exhaustion")).toBe(false)
      yield* close
    }).pipe(onPatientTestClock)
  )
})

describe("the health monitor and status", () => {
  it.effect("a manager starts with some servers down: their pools are critical, the others serve", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        {
          good: fixtureStdioConfig(),
          missing: { command: "/nonexistent/mcp-server-binary" },
          unreachable: { type: "http", url: `http://127.0.0.1:${yield* unusedPort}/mcp` }
        },
        { ...quick, minConnections: 2, maxConnections: 2 }
      )
      const status = yield* manager.status
      expect(status).toMatchObject({
        status: "critical",
        total_pools: 3,
        pools: { good: "healthy", missing: "critical", unreachable: "critical" }
      })
      const tools = yield* manager.getMcpTools("good")
      const result = yield* tools.callTool({ name: "echo", arguments: { text: "served" } })
      expect(result.content).toEqual([{ type: "text", text: "served" }])

      expect(yield* manager.healthCheck("good")).toMatchObject({
        server_name: "good",
        healthy: true,
        checked: 2,
        failed: 0
      })
      // With no connection to ping, a check asked for opens one, and says why it cannot.
      const missing = yield* manager.healthCheck("missing")
      expect(missing).toMatchObject({ server_name: "missing", healthy: false, checked: 1, failed: 1 })
      expect(missing.reason).toContain('could not start MCP server command "/nonexistent/mcp-server-binary"')
      const notFound = yield* Effect.exit(manager.healthCheck("nope"))
      expect(errorOf(notFound)?._tag).toBe("MCPServerNotFound")
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("a pool whose server is down re-opens on its own, ever more slowly, and serves once it is up", () =>
    Effect.gen(function* () {
      // A free port, left closed until the server "comes up".
      const port = yield* unusedPort
      const { manager, close } = yield* startManager(
        { late: { type: "http", url: `http://127.0.0.1:${port}/mcp` } },
        { ...quick, minConnections: 1, maxConnections: 1, retryDelay: 1, healthCheckInterval: 600 }
      )
      const pool = yield* manager.pool("late")
      expect((yield* manager.status).pools.late).toBe("critical")
      // The first re-open is at once; then it waits 1 s, 2 s, 4 s ... on the pool's clock.
      yield* realWait(() => pool.counters.connectionErrors === 2)
      // No third attempt in 200 ms of real time: it waits for the clock.
      yield* realSleep(200)
      expect(pool.counters.connectionErrors).toBe(2)
      yield* TestClock.adjust("1 second")
      yield* realWait(() => pool.counters.connectionErrors === 3)
      // One second of the clock is not the 2 s the next attempt waits for.
      yield* TestClock.adjust("1 second")
      yield* realSleep(200)
      expect(pool.counters.connectionErrors).toBe(3)

      // Up again: the next re-open finds it, with no health check needed.
      yield* httpFixtureServer({ port })
      yield* TestClock.adjust("1 second")
      yield* realWait(() => pool.snapshot().totalConnections === 1)
      expect(pool.counters.healthChecks).toBe(0)
      expect((yield* manager.status).pools.late).toBe("healthy")
      expect((yield* manager.getMcpTools("late")).serverName).toBe("late")
      yield* close
    }).pipe(onPatientTestClock)
  )

  it.effect("the monitor checks every healthCheckInterval; stopped, it checks nothing", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig() },
        { ...quick, minConnections: 1, maxConnections: 2, healthCheckInterval: 15 }
      )
      const pool = yield* manager.pool("fx")
      yield* TestClock.adjust("15 seconds")
      yield* realWait(() => pool.counters.healthChecks === 1)
      expect((yield* manager.status).pools.fx).toBe("healthy")
      yield* manager.stopMonitoring
      expect(manager.isMonitoring()).toBe(false)
      yield* TestClock.adjust("60 seconds")
      // A check pings real processes: give one that had started the time to be counted.
      yield* realSleep(300)
      expect(pool.counters.healthChecks).toBe(1)
      yield* manager.startMonitoring
      yield* TestClock.adjust("15 seconds")
      yield* realWait(() => pool.counters.healthChecks === 2)
      yield* close
    }).pipe(onPatientTestClock)
  )

  it.effect("logs never hold an env value, a header value or a credential of a server's URL", () => {
    const logs = captureLogs("Debug")
    return Effect.gen(function* () {
      const down = yield* unusedPort
      const live = yield* httpFixtureServer()
      const { manager, close } = yield* startManager(
        {
          remote: {
            type: "http",
            url: `http://user:pa55word@127.0.0.1:${down}/mcp?token=t0ken-value`,
            headers: { Authorization: "Bearer h3ader-value" }
          },
          local: { command: "/nonexistent/mcp-server-binary", env: { API_KEY: "s3cret-value" } },
          // URL credentials become a Basic Authorization header, which fetch accepts.
          live: { type: "http", url: `http://user:pa55word@127.0.0.1:${live.port}/mcp?token=t0ken-value` }
        },
        { ...quick, minConnections: 1, maxConnections: 1, circuitBreakerFailureThreshold: 1 }
      )
      for (const name of ["remote", "local"]) {
        const tools = yield* manager.getMcpTools(name)
        yield* Effect.exit(tools.listTools())
        yield* manager.healthCheck(name)
      }
      const echoed = yield* (yield* manager.getMcpTools("live")).callTool({ name: "echo", arguments: { text: "ok" } })
      expect(echoed.content).toEqual([{ type: "text", text: "ok" }])
      yield* close
      expect(logs.messages.some((line) => line.includes("Circuit breaker"))).toBe(true)
      for (const secret of ["pa55word", "t0ken-value", "h3ader-value", "s3cret-value"]) {
        // The messages, and the whole lines: annotations and causes too.
        expect(logs.messages.filter((line) => line.includes(secret))).toEqual([])
        expect(logs.lines.filter((line) => line.includes(secret))).toEqual([])
      }
    }).pipe(onPatientTestClock, logs.capture)
  })

  it.effect("each retried attempt tells the breaker its outcome: three crashes in one call open it at three", () =>
    Effect.gen(function* () {
      const { pool, tools, close } = yield* onePool({
        retryAttempts: 2,
        retryDelay: 1,
        circuitBreakerFailureThreshold: 3,
        circuitBreakerRecoveryTimeout: 30
      })
      // Idempotent, so a crash (the request was sent) is retried: three attempts, three crashes.
      const call = yield* Effect.forkChild(
        Effect.exit(tools.callTool({ name: "crash" }, undefined, { idempotent: true }))
      )
      // Each retry sleeps on the test clock: move it whenever the breaker has seen one more failure,
      // by more than the longest jittered delay (2.4 s) and less than the acquire and handshake
      // timeouts (5 s), which run on the same clock while a real connection opens.
      let failures = 0
      while (call.pollUnsafe() === undefined) {
        yield* realWait(() => call.pollUnsafe() !== undefined || pool.breaker.consecutiveFailures() > failures)
        failures = pool.breaker.consecutiveFailures()
        yield* TestClock.adjust("3 seconds")
      }
      expect(errorOf(yield* Fiber.join(call))).toBeInstanceOf(MCPConnectionError)
      expect(pool.breaker.stateUnsafe(0)).toBe("open")
      expect(pool.counters.retries).toBe(2)
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect("an interrupted probe frees its slot: the next call probes and closes the breaker", () =>
    Effect.gen(function* () {
      const { pool, tools, close } = yield* onePool({
        circuitBreakerFailureThreshold: 1,
        circuitBreakerRecoveryTimeout: 10
      })
      expect(errorOf(yield* Effect.exit(tools.callTool({ name: "crash" })))).toBeInstanceOf(MCPConnectionError)
      expect(pool.breaker.stateUnsafe(0)).toBe("open")
      // The crashed connection was replaced at once: let its handshake finish (in real time)
      // before the clock jumps past its timeout.
      yield* realWait(() => pool.snapshot().totalConnections === 1)
      yield* TestClock.adjust("10 seconds")

      const probe = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 60_000 } }))
      yield* realWait(() => pool.snapshot().connections.some((c) => c.inFlight === 1))
      // While the probe runs, nobody else is let through.
      expect(errorOf(yield* Effect.exit(tools.ping()))).toBeInstanceOf(MCPCircuitOpen)
      yield* Fiber.interrupt(probe)

      const echo = yield* tools.callTool({ name: "echo", arguments: { text: "after" } })
      expect(echo.content).toEqual([{ type: "text", text: "after" }])
      expect(pool.breaker.stateUnsafe(0)).toBe("closed")
      yield* close
      expect(yield* processesLeft).toEqual([])
    }).pipe(onPatientTestClock)
  )

  it.effect(
    "a probe that finds the pool exhausted frees its slot, and the fallback's direct call is not its outcome",
    () =>
      Effect.gen(function* () {
        const { pool, tools, close } = yield* onePool(
          { acquireTimeout: 5, circuitBreakerFailureThreshold: 1, circuitBreakerRecoveryTimeout: 10 },
          { ...fixtureStdioConfig(), pool: { fallback: "direct" } }
        )
        expect(errorOf(yield* Effect.exit(tools.callTool({ name: "crash" })))).toBeInstanceOf(MCPConnectionError)
        // The crashed connection was replaced at once: let its handshake finish (in real time)
        // before the clock jumps past its timeout.
        yield* realWait(() => pool.snapshot().totalConnections === 1)
        yield* TestClock.adjust("10 seconds")
        expect(yield* pool.breaker.state).toBe("half_open")

        // The only connection is held, so the probe finds none and falls back on a direct connection.
        const held = yield* Effect.forkChild(pool.withConnection(() => Effect.never))
        yield* realWait(() => pool.snapshot().inUseConnections === 1)
        const probe = yield* Effect.forkChild(tools.callTool({ name: "echo", arguments: { text: "direct" } }))
        yield* realWait(() => pool.snapshot().pendingRequests === 1)
        yield* TestClock.adjust("5 seconds")
        expect((yield* Fiber.join(probe)).content).toEqual([{ type: "text", text: "direct" }])
        expect(pool.counters.fallbacks).toBe(1)
        expect(yield* pool.breaker.state).toBe("half_open")

        // Its slot is free: the next pooled call probes, and its success closes the breaker.
        yield* Fiber.interrupt(held)
        expect((yield* tools.callTool({ name: "echo", arguments: { text: "pooled" } })).content).toEqual([
          { type: "text", text: "pooled" }
        ])
        expect(yield* pool.breaker.state).toBe("closed")
        yield* close
        expect(yield* processesLeft).toEqual([])
      }).pipe(onPatientTestClock)
  )
})
