/**
 * The settings of a pool: defaults, `MCP_POOL_*` environment variables (through effect
 * `Config`), validation with errors that name the field, the value and the rule, and precedence.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { MCPConfigError } from "./Errors.js"

/**
 * The settings of one pool. Durations are in seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolConfig {
  readonly minConnections: number
  readonly maxConnections: number
  readonly maxIdleTime: number
  readonly connectionTimeout: number
  readonly healthCheckInterval: number
  readonly retryAttempts: number
  readonly retryDelay: number
  readonly circuitBreakerFailureThreshold: number
  readonly circuitBreakerRecoveryTimeout: number
  /** How long a borrower waits for a connection; defaults to `connectionTimeout`. */
  readonly acquireTimeout: number
  readonly requestTimeout: number
  readonly maxConcurrentRequestsPerConnection: number
  /** `"direct"`: when the pool cannot serve, run the call on a one-off connection. */
  readonly fallback: "fail" | "direct"
  /** A connection idle longer than this is pinged before it is lent (0: always). */
  readonly aliveBypassWindow: number
  /** Time between SIGTERM and SIGKILL when a stdio server's process group is ended. */
  readonly shutdownGracePeriod: number
}

/**
 * Some settings of a pool; what is missing comes from a lower layer.
 *
 * @since 0.1.0
 * @category models
 */
export type PoolConfigInput = { readonly [K in keyof PoolConfig]?: PoolConfig[K] | undefined }

/**
 * The pool settings as an `effect/Schema` struct (for docs and encoding).
 *
 * @since 0.1.0
 * @category schemas
 */
export const PoolConfigSchema = Schema.Struct({
  minConnections: Schema.Number,
  maxConnections: Schema.Number,
  maxIdleTime: Schema.Number,
  connectionTimeout: Schema.Number,
  healthCheckInterval: Schema.Number,
  retryAttempts: Schema.Number,
  retryDelay: Schema.Number,
  circuitBreakerFailureThreshold: Schema.Number,
  circuitBreakerRecoveryTimeout: Schema.Number,
  acquireTimeout: Schema.Number,
  requestTimeout: Schema.Number,
  maxConcurrentRequestsPerConnection: Schema.Number,
  fallback: Schema.Literals(["fail", "direct"]),
  aliveBypassWindow: Schema.Number,
  shutdownGracePeriod: Schema.Number
})

/**
 * The built-in defaults (`acquireTimeout` follows `connectionTimeout` unless set).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: Omit<PoolConfig, "acquireTimeout"> = {
  minConnections: 2,
  maxConnections: 10,
  maxIdleTime: 300,
  connectionTimeout: 30,
  healthCheckInterval: 60,
  retryAttempts: 3,
  retryDelay: 1,
  circuitBreakerFailureThreshold: 5,
  circuitBreakerRecoveryTimeout: 60,
  requestTimeout: 60,
  maxConcurrentRequestsPerConnection: 1,
  fallback: "fail",
  aliveBypassWindow: 30,
  shutdownGracePeriod: 2
}

/**
 * The environment variable of each setting.
 *
 * @since 0.1.0
 * @category constants
 */
export const envVariables: Readonly<Record<keyof PoolConfig, string>> = {
  minConnections: "MCP_POOL_MIN_CONNECTIONS",
  maxConnections: "MCP_POOL_MAX_CONNECTIONS",
  maxIdleTime: "MCP_POOL_MAX_IDLE_TIME",
  connectionTimeout: "MCP_POOL_CONNECTION_TIMEOUT",
  healthCheckInterval: "MCP_POOL_HEALTH_CHECK_INTERVAL",
  retryAttempts: "MCP_POOL_RETRY_ATTEMPTS",
  retryDelay: "MCP_POOL_RETRY_DELAY",
  circuitBreakerFailureThreshold: "MCP_CIRCUIT_BREAKER_FAILURE_THRESHOLD",
  circuitBreakerRecoveryTimeout: "MCP_CIRCUIT_BREAKER_RECOVERY_TIMEOUT",
  acquireTimeout: "MCP_POOL_ACQUIRE_TIMEOUT",
  requestTimeout: "MCP_POOL_REQUEST_TIMEOUT",
  maxConcurrentRequestsPerConnection: "MCP_POOL_MAX_CONCURRENT_REQUESTS",
  fallback: "MCP_POOL_FALLBACK",
  aliveBypassWindow: "MCP_POOL_ALIVE_BYPASS_WINDOW",
  shutdownGracePeriod: "MCP_POOL_SHUTDOWN_GRACE_PERIOD"
}

type Rule =
  | { readonly kind: "int"; readonly min: number }
  | { readonly kind: "seconds"; readonly positive: boolean }
  | { readonly kind: "fallback" }

const rules: Readonly<Record<keyof PoolConfig, Rule>> = {
  minConnections: { kind: "int", min: 0 },
  maxConnections: { kind: "int", min: 1 },
  maxIdleTime: { kind: "seconds", positive: true },
  connectionTimeout: { kind: "seconds", positive: true },
  healthCheckInterval: { kind: "seconds", positive: true },
  retryAttempts: { kind: "int", min: 0 },
  retryDelay: { kind: "seconds", positive: false },
  circuitBreakerFailureThreshold: { kind: "int", min: 1 },
  circuitBreakerRecoveryTimeout: { kind: "seconds", positive: true },
  acquireTimeout: { kind: "seconds", positive: true },
  requestTimeout: { kind: "seconds", positive: true },
  maxConcurrentRequestsPerConnection: { kind: "int", min: 1 },
  fallback: { kind: "fallback" },
  aliveBypassWindow: { kind: "seconds", positive: false },
  shutdownGracePeriod: { kind: "seconds", positive: false }
}

const fields = Object.keys(rules) as ReadonlyArray<keyof PoolConfig>

const describeRule = (rule: Rule): string => {
  switch (rule.kind) {
    case "int":
      return rule.min === 0 ? "must be a whole number >= 0" : `must be a whole number >= ${rule.min}`
    case "seconds":
      return rule.positive ? "must be a number of seconds > 0" : "must be a number of seconds >= 0"
    case "fallback":
      return `must be "fail" or "direct"`
  }
}

const check = (rule: Rule, value: unknown): boolean => {
  switch (rule.kind) {
    case "int":
      return typeof value === "number" && Number.isInteger(value) && value >= rule.min
    case "seconds":
      return typeof value === "number" && Number.isFinite(value) && (rule.positive ? value > 0 : value >= 0)
    case "fallback":
      return value === "fail" || value === "direct"
  }
}

/**
 * Where a value came from, for error messages.
 *
 * @since 0.1.0
 * @category models
 */
export interface Context {
  readonly source: string
  readonly path: string
  readonly serverName?: string | undefined
}

/**
 * Checks settings given as an object (from JSON or code): unknown fields, types and the
 * rule of every field.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validateInput = (input: unknown, context: Context): Result.Result<PoolConfigInput, MCPConfigError> => {
  const fail = (path: string, value: unknown, rule: string) =>
    Result.fail(new MCPConfigError({ serverName: context.serverName, source: context.source, path, value, rule }))
  if (!Predicate.isObject(input) || Array.isArray(input)) {
    return fail(context.path, input, "must be an object of pool settings")
  }
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(input)) {
    const path = context.path === "" ? key : `${context.path}.${key}`
    if (!(key in rules)) {
      return fail(path, value, `is not a pool setting (known: ${fields.join(", ")})`)
    }
    if (value === undefined) continue
    const rule = rules[key as keyof PoolConfig]
    if (!check(rule, value)) return fail(path, value, describeRule(rule))
    out[key] = value
  }
  return Result.succeed(out as PoolConfigInput)
}

/**
 * Merges layers of settings (later ones win, `undefined` never overrides) over the
 * defaults, derives `acquireTimeout`, and checks `minConnections <= maxConnections`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (
  layers: ReadonlyArray<PoolConfigInput>,
  context: Context
): Result.Result<PoolConfig, MCPConfigError> => {
  const merged: Record<string, unknown> = { ...defaults }
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) merged[key] = value
  }
  merged["acquireTimeout"] ??= merged["connectionTimeout"]
  const config = merged as unknown as PoolConfig
  if (config.minConnections > config.maxConnections) {
    return Result.fail(
      new MCPConfigError({
        serverName: context.serverName,
        source: context.source,
        path: `${context.path}.minConnections`,
        value: config.minConnections,
        rule: `minConnections must not exceed maxConnections (${config.maxConnections})`
      })
    )
  }
  return Result.succeed(config)
}

const envValue = (field: keyof PoolConfig) => {
  const name = envVariables[field]
  return Effect.map(Config.option(Config.String(name)), (value) => ({ field, name, value }))
}

/**
 * Reads the `MCP_POOL_*` and `MCP_CIRCUIT_BREAKER_*` variables that are set, through effect
 * `Config` (so a `ConfigProvider` can supply them), and validates them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv: Effect.Effect<PoolConfigInput, MCPConfigError> = Effect.gen(function* () {
  const out: Record<string, unknown> = {}
  for (const field of fields) {
    const read = yield* Effect.result(envValue(field))
    const name = envVariables[field]
    if (Result.isFailure(read)) {
      return yield* new MCPConfigError({
        serverName: undefined,
        source: `environment variable ${name}`,
        path: "",
        rule: String(read.failure)
      })
    }
    const raw = read.success.value
    if (Option.isNone(raw)) continue
    const rule = rules[field]
    const text = raw.value.trim()
    const value = rule.kind === "fallback" ? text : text === "" ? Number.NaN : Number(text)
    if (!check(rule, value)) {
      return yield* new MCPConfigError({
        serverName: undefined,
        source: `environment variable ${name}`,
        path: "",
        value: raw.value,
        rule: describeRule(rule)
      })
    }
    out[field] = value
  }
  return out as PoolConfigInput
})

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)

/**
 * The settings (all of them, or a server's own `"pool"` block) with snake_case names, as the
 * monitoring API shows them.
 *
 * @since 0.1.0
 * @category getters
 */
export const toSnakeCase = (config: PoolConfig | PoolConfigInput): Record<string, number | string> =>
  Object.fromEntries(Object.entries(config).map(([key, value]) => [snake(key), value as number | string]))
