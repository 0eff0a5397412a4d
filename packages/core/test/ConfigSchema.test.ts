import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import type { MCPConfigError } from "../src/Errors.js"
import * as PoolConfig from "../src/PoolConfig.js"
import * as ServerConfig from "../src/ServerConfig.js"

let dir = ""
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mcp-pool-config-schema-"))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const file = async (name: string, text: string) => {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

/** Runs an effect with only these environment variables, supplied by a `ConfigProvider`. */
const withEnv =
  (env: Record<string, string>) =>
  <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.provide(effect, ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

const failure = <A>(result: Result.Result<A, MCPConfigError>): MCPConfigError => {
  if (Result.isSuccess(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.success)}`)
  return result.failure
}

describe("names that are also Object.prototype's", () => {
  const names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]

  it.effect("every one is a server of that name, in order, with its own settings; env and header keys too", () =>
    Effect.gen(function* () {
      const text = [
        "{",
        "  // comments and trailing commas, as VS Code writes them",
        '  "mcpServers": {',
        ...names.map(
          (name, i) => `    "${name}": { "command": "server-${i}", "pool": { "maxConnections": ${i + 1} } },`
        ),
        '    "local": { "command": "node", "env": { "__proto__": "a", "toString": "b" } },',
        '    "remote": { "type": "sse", "url": "http://127.0.0.1:1/sse", "headers": { "__proto__": "h", "constructor": "c" } },',
        "  },",
        "}"
      ].join("\n")
      const path = yield* Effect.promise(() => file("proto.mcp.json", text))
      const servers = yield* ServerConfig.loadFile(path, {})
      expect(servers.map((server) => server.name)).toEqual([...names, "local", "remote"])
      servers.slice(0, names.length).forEach((server, i) => {
        expect(server).toMatchObject({ transport: "stdio", command: `server-${i}`, pool: { maxConnections: i + 1 } })
      })
      const [local, remote] = servers.slice(-2)
      expect(local?.transport === "stdio" && Object.entries(local.env)).toEqual([
        ["__proto__", "a"],
        ["toString", "b"]
      ])
      expect(remote?.transport === "sse" && Object.entries(remote.headers)).toEqual([
        ["__proto__", "h"],
        ["constructor", "c"]
      ])
      // In code, a computed key is a name like any other too.
      const inCode = ServerConfig.fromEntries(
        { ["__proto__"]: { command: "node" } },
        { source: "options.servers", env: {} }
      )
      expect(Result.isSuccess(inCode) && inCode.success.map((server) => server.name)).toEqual(["__proto__"])
    })
  )

  it("as pool-setting keys they are clear errors naming the key, never settings", () => {
    for (const key of names) {
      const pool = JSON.parse(`{"${key}": 3}`)
      const inFile = failure(
        ServerConfig.parse({ mcpServers: { gh: { command: "x", pool } } }, { source: "f", env: {} })
      )
      expect(inFile.message).toContain(`f at mcpServers.gh.pool.${key} (server "gh"): got 3: is not a pool setting`)
      const inCode = failure(PoolConfig.validateInput(pool, { source: "configureServerPool", path: "gh" }))
      expect(inCode.path).toBe(`gh.${key}`)
      expect(inCode.rule).toContain("is not a pool setting")
    }
  })

  it("as ${VAR} they are variables like any other: unset unless the environment has them", () => {
    for (const name of ["toString", "constructor", "__proto__"]) {
      const entry = { command: "x", args: [`\${${name}}`] }
      const unset = failure(ServerConfig.fromEntries({ gh: entry }, { source: "options.servers", env: {} }))
      expect(unset.message).toContain(`servers.gh.args[0]`)
      expect(unset.rule).toBe(`environment variable ${name} is not set`)
      const set = ServerConfig.fromEntries(
        { gh: entry },
        { source: "options.servers", env: JSON.parse(`{"${name}": "v"}`) }
      )
      expect(Result.isSuccess(set) && set.success[0]).toMatchObject({ args: ["v"] })
    }
  })
})

describe("durations past what a timer can hold", () => {
  const thirtyDays = 30 * 24 * 3600
  const limit = `must be at most ${PoolConfig.maxDurationSeconds} seconds`

  it("the limit is Node's longest timer, 2^31 - 1 ms, in whole seconds; the limit itself is accepted", () => {
    expect(PoolConfig.maxDurationSeconds).toBe(2_147_483)
    const atLimit = PoolConfig.validateInput(
      { requestTimeout: PoolConfig.maxDurationSeconds, connectionTimeout: PoolConfig.maxDurationSeconds },
      { source: "code", path: "" }
    )
    expect(Result.isSuccess(atLimit)).toBe(true)
  })

  it("every duration field is refused above it, in code, naming the field, the value and the limit", () => {
    const durations = [
      "maxIdleTime",
      "connectionTimeout",
      "healthCheckInterval",
      "retryDelay",
      "circuitBreakerRecoveryTimeout",
      "acquireTimeout",
      "requestTimeout",
      "aliveBypassWindow",
      "shutdownGracePeriod"
    ] as const
    for (const field of durations) {
      const error = failure(
        PoolConfig.validateInput(
          { [field]: thirtyDays },
          { source: "configureServerPool", path: "gh", serverName: "gh" }
        )
      )
      expect(error.message).toBe(
        `Invalid MCP pool configuration in configureServerPool at gh.${field} (server "gh"): got ${thirtyDays}: ${limit} (about 24.8 days, the longest a timer can wait)`
      )
    }
  })

  it("in a file's pool block and in the defaults", () => {
    const error = failure(
      ServerConfig.parse(
        { mcpServers: { gh: { command: "x", pool: { requestTimeout: thirtyDays } } } },
        { source: "/etc/mcp.json", env: {} }
      )
    )
    expect(error.message).toContain(
      `/etc/mcp.json at mcpServers.gh.pool.requestTimeout (server "gh"): got ${thirtyDays}`
    )
    expect(error.rule).toContain(limit)
    const merged = failure(
      PoolConfig.resolve([{ connectionTimeout: thirtyDays }], { source: "options.defaults", path: "defaults" })
    )
    expect(merged.path).toBe("defaults.connectionTimeout")
    expect(merged.rule).toContain(limit)
  })

  it.effect("in the environment, naming the variable and its text", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(withEnv({ MCP_POOL_CONNECTION_TIMEOUT: String(thirtyDays) })(PoolConfig.fromEnv))
      expect(error.message).toBe(
        `Invalid MCP pool configuration in environment variable MCP_POOL_CONNECTION_TIMEOUT: got "${thirtyDays}": ${limit} (about 24.8 days, the longest a timer can wait)`
      )
    })
  )
})

describe("one decoding for code, files and the environment", () => {
  it.effect("one schema checks the settings, so the same bad value breaks the same rule wherever it is written", () =>
    Effect.gen(function* () {
      const config = { ...PoolConfig.defaults, acquireTimeout: 30 }
      expect(PoolConfig.PoolConfigSchema.makeOption(config)._tag).toBe("Some")
      expect(PoolConfig.PoolConfigSchema.makeOption({ ...config, minConnections: 11 })._tag).toBe("None")
      expect(PoolConfig.PoolConfigSchema.makeOption({ ...config, requestTimeout: 1e9 })._tag).toBe("None")
      const fromEnv = yield* Effect.flip(withEnv({ MCP_POOL_MAX_CONNECTIONS: "0" })(PoolConfig.fromEnv))
      const fromCode = failure(
        PoolConfig.validateInput({ maxConnections: 0 }, { source: "options.defaults", path: "defaults" })
      )
      const fromFile = failure(
        ServerConfig.parse(
          { mcpServers: { gh: { command: "x", pool: { maxConnections: 0 } } } },
          { source: "f", env: {} }
        )
      )
      expect(new Set([fromEnv.rule, fromCode.rule, fromFile.rule])).toEqual(new Set(["must be a whole number >= 1"]))
      expect([fromEnv.source, fromCode.path, fromFile.path]).toEqual([
        "environment variable MCP_POOL_MAX_CONNECTIONS",
        "defaults.maxConnections",
        "mcpServers.gh.pool.maxConnections"
      ])
    })
  )
})

describe("ServerConfig.load reads the environment only through the ConfigProvider", () => {
  // Names no real environment has, so that only the provider can answer.
  const token = "MCP_POOL_TEST_TOKEN_7F3A"

  it.effect("${VAR} in code entries comes from the provider", () =>
    Effect.gen(function* () {
      const servers = yield* withEnv({ [token]: "from-provider" })(
        ServerConfig.load({
          servers: { gh: { type: "http", url: "http://127.0.0.1:1/mcp", headers: { A: `\${env:${token}}` } } }
        })
      )
      expect(servers[0]).toMatchObject({ headers: { A: "from-provider" } })
      const unset = yield* Effect.flip(
        withEnv({})(ServerConfig.load({ servers: { gh: { command: "x", env: { K: `\${${token}}` } } } }))
      )
      expect(unset.message).toBe(
        `Invalid MCP pool configuration in options.servers at servers.gh.env.K (server "gh"): got "[REDACTED]": environment variable ${token} is not set`
      )
    })
  )

  it.effect("MCP_CONFIG_PATH and ${VAR} in the file come from the provider; configPath wins over it", () =>
    Effect.gen(function* () {
      const named = yield* Effect.promise(() =>
        file("named.json", JSON.stringify({ mcpServers: { a: { command: `\${${token}}` } } }))
      )
      const other = yield* Effect.promise(() =>
        file("other.json", JSON.stringify({ servers: { b: { command: "b" } } }))
      )
      const env = { MCP_CONFIG_PATH: named, [token]: "cmd-from-provider" }
      const fromVariable = yield* withEnv(env)(ServerConfig.load())
      expect(fromVariable).toMatchObject([{ name: "a", command: "cmd-from-provider" }])
      const explicit = yield* withEnv(env)(ServerConfig.load({ configPath: other }))
      expect(explicit.map((server) => server.name)).toEqual(["b"])
      const loaded = yield* withEnv(env)(ServerConfig.loadFile(named))
      expect(loaded).toMatchObject([{ command: "cmd-from-provider" }])
    })
  )

  it.effect("a file named by MCP_CONFIG_PATH that is missing is an error naming it", () =>
    Effect.gen(function* () {
      const missing = join(dir, "missing.json")
      const error = yield* Effect.flip(withEnv({ MCP_CONFIG_PATH: missing })(ServerConfig.load()))
      expect(error.source).toBe(missing)
      expect(error.message).toContain("ENOENT")
    })
  )
})
