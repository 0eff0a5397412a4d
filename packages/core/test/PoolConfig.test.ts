import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import * as PoolConfig from "../src/PoolConfig.js"

const fromEnv = (env: Record<string, string>) =>
  PoolConfig.fromEnv.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

const context = { source: "test", path: "pool" }

describe("PoolConfig", () => {
  it("resolves the built-in defaults, acquireTimeout following connectionTimeout", () => {
    const resolved = PoolConfig.resolve([], context)
    expect(Result.isSuccess(resolved) && resolved.success).toEqual({
      ...PoolConfig.defaults,
      acquireTimeout: 30
    })
    const custom = PoolConfig.resolve([{ connectionTimeout: 5 }], context)
    expect(Result.isSuccess(custom) && custom.success.acquireTimeout).toBe(5)
  })

  it.effect("reads every MCP_POOL_* / MCP_CIRCUIT_BREAKER_* variable through effect Config", () =>
    Effect.gen(function* () {
      const values: Record<keyof PoolConfig.PoolConfig, string> = {
        minConnections: "1",
        maxConnections: "7",
        maxIdleTime: "12",
        connectionTimeout: "3",
        healthCheckInterval: "9",
        retryAttempts: "0",
        retryDelay: "0.5",
        circuitBreakerFailureThreshold: "2",
        circuitBreakerRecoveryTimeout: "15",
        acquireTimeout: "4",
        requestTimeout: "8",
        maxConcurrentRequestsPerConnection: "3",
        autoConcurrencyMin: "2",
        autoConcurrencyMax: "16",
        fallback: "direct",
        aliveBypassWindow: "0",
        shutdownGracePeriod: "1",
        catalog: "off",
        catalogTtl: "30"
      }
      const env = Object.fromEntries(
        Object.entries(values).map(([field, value]) => [
          PoolConfig.envVariables[field as keyof PoolConfig.PoolConfig],
          value
        ])
      )
      const input = yield* fromEnv(env)
      const expected = Object.fromEntries(
        Object.entries(values).map(([field, value]) => [
          field,
          field === "fallback" || field === "catalog" ? value : Number(value)
        ])
      )
      expect(input).toEqual(expected)
      expect(yield* fromEnv({})).toEqual({})
      expect(yield* fromEnv({ MCP_POOL_MAX_CONCURRENT_REQUESTS: " auto " })).toEqual({
        maxConcurrentRequestsPerConnection: "auto"
      })
    })
  )

  it.effect("bad environment values fail naming the variable, the value and the rule", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<[Record<string, string>, string, string]> = [
        [{ MCP_POOL_MAX_CONNECTIONS: "abc" }, "MCP_POOL_MAX_CONNECTIONS", "whole number >= 1"],
        [{ MCP_POOL_MAX_CONNECTIONS: "0" }, "MCP_POOL_MAX_CONNECTIONS", "whole number >= 1"],
        [{ MCP_POOL_MIN_CONNECTIONS: "-1" }, "MCP_POOL_MIN_CONNECTIONS", "whole number >= 0"],
        [{ MCP_POOL_CONNECTION_TIMEOUT: "0" }, "MCP_POOL_CONNECTION_TIMEOUT", "seconds > 0"],
        [{ MCP_CIRCUIT_BREAKER_FAILURE_THRESHOLD: "1.5" }, "MCP_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "whole number"],
        [{ MCP_POOL_FALLBACK: "maybe" }, "MCP_POOL_FALLBACK", `"fail" or "direct"`],
        [{ MCP_POOL_CATALOG: "cached" }, "MCP_POOL_CATALOG", `"shared" or "off"`],
        [{ MCP_POOL_CATALOG_TTL: "-1" }, "MCP_POOL_CATALOG_TTL", "seconds >= 0"],
        [
          { MCP_POOL_MAX_CONCURRENT_REQUESTS: "0" },
          "MCP_POOL_MAX_CONCURRENT_REQUESTS",
          `"auto" or a whole number >= 1`
        ],
        [
          { MCP_POOL_MAX_CONCURRENT_REQUESTS: "lots" },
          "MCP_POOL_MAX_CONCURRENT_REQUESTS",
          `"auto" or a whole number >= 1`
        ],
        [{ MCP_POOL_AUTO_CONCURRENCY_MAX: "0" }, "MCP_POOL_AUTO_CONCURRENCY_MAX", "whole number >= 1"]
      ]
      for (const [env, variable, rule] of cases) {
        const error = yield* Effect.flip(fromEnv(env))
        expect(error._tag).toBe("MCPConfigError")
        expect(error.message).toContain(variable)
        expect(error.message).toContain(JSON.stringify(Object.values(env)[0]))
        expect(error.message).toContain(rule)
      }
    })
  )

  it("validates objects: unknown fields, types and rules, naming the path", () => {
    const typo = PoolConfig.validateInput({ maxConection: 3 }, { source: "a.json", path: "mcpServers.gh.pool" })
    expect(Result.isFailure(typo) && typo.failure.message).toContain("mcpServers.gh.pool.maxConection")
    expect(Result.isFailure(typo) && typo.failure.rule).toContain("maxConnections")
    const wrongType = PoolConfig.validateInput({ maxConnections: "10" }, context)
    expect(Result.isFailure(wrongType) && wrongType.failure.message).toContain(`pool.maxConnections: got "10"`)
    const negative = PoolConfig.validateInput({ requestTimeout: -1 }, context)
    expect(Result.isFailure(negative) && negative.failure.rule).toBe("must be a number of seconds > 0")
    const notObject = PoolConfig.validateInput([1], context)
    expect(Result.isFailure(notObject)).toBe(true)
  })

  it("min > max fails on the resolved config, naming both", () => {
    const resolved = PoolConfig.resolve([{ minConnections: 5 }, { maxConnections: 3 }], {
      ...context,
      serverName: "gh"
    })
    expect(Result.isFailure(resolved)).toBe(true)
    if (Result.isFailure(resolved)) {
      expect(resolved.failure.serverName).toBe("gh")
      expect(resolved.failure.message).toContain("minConnections")
      expect(resolved.failure.message).toContain("got 5")
      expect(resolved.failure.message).toContain("maxConnections (3)")
    }
  })

  it('maxConcurrentRequestsPerConnection is "auto" by default, a number fixes it; auto bounds are checked', () => {
    const byDefault = PoolConfig.resolve([], context)
    expect(Result.isSuccess(byDefault) && byDefault.success.maxConcurrentRequestsPerConnection).toBe("auto")
    const fixed = PoolConfig.resolve([{ maxConcurrentRequestsPerConnection: 4 }], context)
    expect(Result.isSuccess(fixed) && fixed.success.maxConcurrentRequestsPerConnection).toBe(4)
    const fromEnvironment = PoolConfig.validateInput({ maxConcurrentRequestsPerConnection: "auto" }, context)
    expect(Result.isSuccess(fromEnvironment)).toBe(true)
    const bad = PoolConfig.validateInput({ maxConcurrentRequestsPerConnection: 1.5 }, context)
    expect(Result.isFailure(bad) && bad.failure.message).toContain(`"auto" or a whole number >= 1`)
    const crossed = PoolConfig.resolve([{ autoConcurrencyMin: 8, autoConcurrencyMax: 4 }], context)
    expect(Result.isFailure(crossed) && crossed.failure.message).toContain(
      "autoConcurrencyMin must not exceed autoConcurrencyMax (4)"
    )
  })

  it("precedence: defaults < environment < file pool block < configureServerPool", () => {
    const env = { maxConnections: 4, minConnections: 1, requestTimeout: 10 }
    const file = { maxConnections: 6, requestTimeout: 20 }
    const runtime = { maxConnections: 8, requestTimeout: undefined }
    const resolved = PoolConfig.resolve([env, file, runtime], context)
    expect(Result.isSuccess(resolved) && resolved.success).toMatchObject({
      minConnections: 1,
      maxConnections: 8,
      requestTimeout: 20,
      maxIdleTime: 300
    })
  })

  it("shows the settings in snake_case", () => {
    const resolved = PoolConfig.resolve([], context)
    const snake = Result.isSuccess(resolved) ? PoolConfig.toSnakeCase(resolved.success) : {}
    expect(snake).toMatchObject({ min_connections: 2, max_connections: 10, circuit_breaker_failure_threshold: 5 })
  })
})
