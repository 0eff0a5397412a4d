import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { PoolConfigInput } from "../src/PoolConfig.js"
import { captureLogs, httpFixtureServer, startManager, text } from "./support.js"

// One connection, one retry without delay; the connection is not pinged before it is lent
// (it was used a moment ago), so the call itself meets the lost session.
const defaults: PoolConfigInput = {
  minConnections: 1,
  maxConnections: 1,
  connectionTimeout: 10,
  retryAttempts: 1,
  retryDelay: 0,
  shutdownGracePeriod: 0.5
}

describe("a lost legacy SSE session", () => {
  it.live(
    "a server restarted on the same port: its broken stream ends the connection; the call succeeds on a fresh one",
    () => {
      // The server goes away on purpose: the pool's warnings about it are kept out of the output.
      const logs = captureLogs()
      return Effect.gen(function* () {
        const first = yield* httpFixtureServer()
        const { manager } = yield* startManager({ legacy: { type: "sse", url: first.sseUrl } }, defaults)
        const tools = yield* manager.getMcpTools("legacy")
        const pool = yield* manager.pool("legacy")
        expect(text(yield* tools.callTool({ name: "pid" }))).toBe(String(first.pid))
        const before = pool.snapshot().connections.map((connection) => connection.id)
        expect(before).toHaveLength(1)

        // The restarted server answers every POST of the old session 404 "Session not found".
        yield* Effect.promise(() => first.stop())
        const second = yield* httpFixtureServer({ port: first.port })
        expect(text(yield* tools.callTool({ name: "pid" }))).toBe(String(second.pid))

        const after = pool.snapshot()
        expect(after.connections.map((connection) => connection.id).filter((id) => before.includes(id))).toEqual([])
        expect(after.connections.every((connection) => connection.alive)).toBe(true)
        expect(pool.counters.connectionErrors).toBeGreaterThanOrEqual(1)
        expect(pool.counters.errors).toBe(0)
      }).pipe(logs.capture)
    }
  )

  it.live(
    "a server that forgot the session but keeps the stream: 404 on the next POST, retried on a fresh connection",
    () => {
      // The server forgets its sessions on purpose: the pool's warnings about it are kept out of the output.
      const logs = captureLogs()
      return Effect.gen(function* () {
        const server = yield* httpFixtureServer()
        const { manager } = yield* startManager({ legacy: { type: "sse", url: server.sseUrl } }, defaults)
        const tools = yield* manager.getMcpTools("legacy")
        const pool = yield* manager.pool("legacy")
        const [lost] = pool.snapshot().connections.map((connection) => connection.id)
        expect(text(yield* tools.callTool({ name: "forget_sessions" }))).toBe("forgot every session")

        expect(text(yield* tools.callTool({ name: "echo", arguments: { text: "again" } }))).toBe("again")
        expect(pool.snapshot().connections.map((connection) => connection.id)).not.toContain(lost)
        expect(pool.counters).toMatchObject({ retries: 1, errors: 0 })
      }).pipe(logs.capture)
    }
  )
})
