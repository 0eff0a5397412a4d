import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { TestClock } from "effect/testing"
import { onPatientTestClock, realSleep, realWait, startManager } from "./support.js"

describe("time-based pool behaviour, on the test clock", () => {
  it.effect("connections beyond minConnections are retired after maxIdleTime unused", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { fx: fixtureStdioConfig() },
        // One request per connection: three calls at once need three connections.
        {
          minConnections: 1,
          maxConnections: 3,
          maxIdleTime: 10,
          retryAttempts: 0,
          shutdownGracePeriod: 0.5,
          maxConcurrentRequestsPerConnection: 1
        }
      )
      const pool = yield* manager.pool("fx")
      const tools = yield* manager.getMcpTools("fx")
      yield* Effect.forEach([1, 2, 3], () => tools.callTool({ name: "sleep", arguments: { ms: 200 } }), {
        concurrency: "unbounded"
      })
      // Under load, a call may finish on the first connection before the other two are open:
      // they are opened anyway (the pool grew to serve three borrowers), so wait for them.
      yield* realWait(() => pool.snapshot().totalConnections === 3)
      yield* TestClock.adjust("5 seconds")
      expect(pool.snapshot().totalConnections).toBe(3)
      yield* TestClock.adjust("6 seconds")
      yield* TestClock.adjust("11 seconds")
      yield* realWait(() => pool.snapshot().totalConnections === 1)
      expect(pool.snapshot().totalConnections).toBe(1)
      yield* close
    }).pipe(onPatientTestClock)
  )

  it.effect("a failed connect is retried on the exponential schedule of retryDelay, retryAttempts times", () =>
    Effect.gen(function* () {
      const { manager, close } = yield* startManager(
        { missing: { command: "/nonexistent/mcp-server-binary" } },
        { minConnections: 0, retryAttempts: 2, retryDelay: 1 }
      )
      const pool = yield* manager.pool("missing")
      const tools = yield* manager.getMcpTools("missing")
      const call = yield* Effect.forkChild(tools.listTools())
      yield* realWait(() => pool.counters.connectionErrors === 1)
      // Nothing happens in 100 ms of real time until the clock moves: the retry waits for its delay.
      yield* realSleep(100)
      expect(pool.counters.connectionErrors).toBe(1)
      // First delay: 1 s with jitter (0.8-1.2 s).
      yield* TestClock.adjust("1200 millis")
      yield* realWait(() => pool.counters.connectionErrors === 2)
      // Second delay: 2 s with jitter.
      yield* TestClock.adjust("2400 millis")
      const exit = yield* Fiber.await(call)
      expect(pool.counters.connectionErrors).toBe(3)
      expect(exit._tag === "Failure" && String(exit.cause)).toContain("MCPConnectionError")
      yield* close
    }).pipe(onPatientTestClock)
  )

  it.effect(
    'no connection within acquireTimeout: MCPPoolExhausted; with fallback "direct" a one-off connection serves',
    () =>
      Effect.gen(function* () {
        const { manager, close } = yield* startManager(
          { fx: fixtureStdioConfig(), fallback: { ...fixtureStdioConfig(), pool: { fallback: "direct" } } },
          { minConnections: 1, maxConnections: 1, acquireTimeout: 5, retryAttempts: 0, shutdownGracePeriod: 0.5 }
        )
        for (const name of ["fx", "fallback"]) {
          const pool = yield* manager.pool(name)
          const tools = yield* manager.getMcpTools(name)
          const busy = yield* Effect.forkChild(tools.callTool({ name: "sleep", arguments: { ms: 1_500 } }))
          yield* realWait(() => pool.connections().some((c) => c.inFlight === 1))
          const waiting = yield* Effect.forkChild(tools.callTool({ name: "echo", arguments: { text: "late" } }))
          yield* realWait(() => pool.snapshot().pendingRequests === 1)
          yield* TestClock.adjust("5 seconds")
          const exit = yield* Fiber.await(waiting)
          if (name === "fx") {
            expect(exit._tag === "Failure" && String(exit.cause)).toContain("MCPPoolExhausted")
            expect(pool.counters.exhausted).toBe(1)
          } else {
            expect(exit._tag).toBe("Success")
            expect(pool.counters.fallbacks).toBe(1)
          }
          yield* Fiber.join(busy)
        }
        yield* close
      }).pipe(onPatientTestClock)
  )
})
