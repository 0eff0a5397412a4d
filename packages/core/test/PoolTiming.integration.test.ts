import { describe, expect, it } from "@effect/vitest"
import { fixtureStdioConfig, waitFor } from "@mcp-pool/test-servers"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import { TestClock } from "effect/testing"
import * as Manager from "../src/MCPConnectionManager.js"

/** Waits in real time (the test clock does not move) for real processes to do their part. */
const realWait = (predicate: () => boolean) => Effect.promise(() => waitFor(predicate, 10_000))

describe("time-based pool behaviour, on the test clock", () => {
  it.effect("connections beyond minConnections are retired after maxIdleTime unused", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const manager = yield* Manager.make({
        servers: { fx: fixtureStdioConfig() },
        defaults: { minConnections: 1, maxConnections: 3, maxIdleTime: 10, retryAttempts: 0, shutdownGracePeriod: 0.5 }
      }).pipe(Scope.provide(scope))
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
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a failed connect is retried on the exponential schedule of retryDelay, retryAttempts times", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const manager = yield* Manager.make({
        servers: { missing: { command: "/nonexistent/mcp-server-binary" } },
        defaults: { minConnections: 0, retryAttempts: 2, retryDelay: 1 }
      }).pipe(Scope.provide(scope))
      const pool = yield* manager.pool("missing")
      const tools = yield* manager.getMcpTools("missing")
      const call = yield* Effect.forkChild(tools.listTools())
      yield* realWait(() => pool.counters.connectionErrors === 1)
      // Nothing happens until the clock moves: the retry waits for its delay.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
      expect(pool.counters.connectionErrors).toBe(1)
      // First delay: 1 s with jitter (0.8-1.2 s).
      yield* TestClock.adjust("1200 millis")
      yield* realWait(() => pool.counters.connectionErrors === 2)
      // Second delay: 2 s with jitter.
      yield* TestClock.adjust("2400 millis")
      const exit = yield* Fiber.await(call)
      expect(pool.counters.connectionErrors).toBe(3)
      expect(exit._tag === "Failure" && String(exit.cause)).toContain("MCPConnectionError")
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect(
    'no connection within acquireTimeout: MCPPoolExhausted; with fallback "direct" a one-off connection serves',
    () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const manager = yield* Manager.make({
          servers: { fx: fixtureStdioConfig(), fallback: { ...fixtureStdioConfig(), pool: { fallback: "direct" } } },
          defaults: {
            minConnections: 1,
            maxConnections: 1,
            acquireTimeout: 5,
            retryAttempts: 0,
            shutdownGracePeriod: 0.5
          }
        }).pipe(Scope.provide(scope))
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
        yield* Scope.close(scope, Exit.void)
      })
  )
})
