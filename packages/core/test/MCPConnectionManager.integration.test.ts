import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { descendantsOf, fixtureStdioConfig } from "@mcp-pool/test-servers"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { MCPConnectionManager } from "../src/MCPConnectionManager.js"
import { captureLogs, realWait } from "./support.js"

describe("MCPConnectionManager", () => {
  it.live(
    "layerConfig reads MCP_CONFIG_PATH and MCP_POOL_* through effect Config; closing the layer ends every process",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.promise(() => mkdtemp(join(tmpdir(), "mcp-pool-layer-"))),
          (path) => Effect.promise(() => rm(path, { recursive: true, force: true }))
        )
        const path = join(dir, "servers.json")
        yield* Effect.promise(() => writeFile(path, JSON.stringify({ mcpServers: { fx: fixtureStdioConfig() } })))
        const env = { MCP_CONFIG_PATH: path, MCP_POOL_MIN_CONNECTIONS: "3", MCP_POOL_SHUTDOWN_GRACE_PERIOD: "0.5" }
        const layer = MCPConnectionManager.layerConfig().pipe(
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))
        )
        yield* Effect.gen(function* () {
          const manager = yield* MCPConnectionManager
          expect(manager.defaults.minConnections).toBe(3)
          const pool = yield* manager.pool("fx")
          expect(pool.snapshot().totalConnections).toBe(3)
          expect(manager.servers()).toEqual([{ name: "fx", transport: "stdio", pooled: true }])
        }).pipe(Effect.provide(layer))
        expect(yield* Effect.promise(() => descendantsOf(process.pid))).toEqual([])
      }).pipe(Effect.scoped)
  )

  it.live("server stderr goes to the effect logger (at Debug), not to the console", () => {
    const logs = captureLogs("Debug")
    const printed: Array<string> = []
    const write = process.stderr.write.bind(process.stderr)
    const spy = (chunk: string | Uint8Array): boolean => {
      printed.push(String(chunk))
      return true
    }
    return Effect.gen(function* () {
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.stderr.write = spy
        }),
        () =>
          Effect.sync(() => {
            process.stderr.write = write
          })
      )
      yield* Effect.gen(function* () {
        const manager = yield* MCPConnectionManager
        yield* manager.pool("fx")
        yield* realWait(() => logs.messages.some((line) => line.includes("fixture server ready")), 5_000)
      }).pipe(
        Effect.provide(
          MCPConnectionManager.layer({ servers: { fx: fixtureStdioConfig() }, defaults: { minConnections: 1 } })
        )
      )
      const line = logs.lines.find((entry) => entry.includes("fixture server ready (stdio)"))
      expect(line).toMatch(/level=DEBUG/)
      expect(line).toMatch(/stream=stderr/)
      expect(printed.filter((chunk) => chunk.includes("fixture server ready"))).toEqual([])
    }).pipe(logs.capture)
  })

  it.live("an unknown server name fails with MCPServerNotFound listing the configured ones", () =>
    Effect.gen(function* () {
      const manager = yield* MCPConnectionManager
      const error = yield* Effect.flip(manager.getMcpTools("nope"))
      expect(error._tag).toBe("MCPServerNotFound")
      expect(error.message).toContain(`"fx"`)
    }).pipe(
      Effect.provide(
        MCPConnectionManager.layer({ servers: { fx: fixtureStdioConfig() }, defaults: { minConnections: 0 } })
      )
    )
  )
})
