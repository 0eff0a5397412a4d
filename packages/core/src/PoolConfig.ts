/**
 * The settings of a pool as an `effect/Schema`: defaults, `MCP_POOL_*` environment variables
 * (through effect `Config`), one decoding for code, files and the environment, and precedence.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaParser from "effect/SchemaParser"
import * as Struct from "effect/Struct"
import { MCPConfigError } from "./Errors.js"
import { inSource, type Location, toConfigError } from "./internal/configIssue.js"
import * as EnvNames from "./internal/envNames.js"

/**
 * The longest duration a setting may have, in seconds: Node's timers hold at most
 * 2^31 - 1 ms (about 24.8 days), and a longer one would fire at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDurationSeconds: number = Math.floor((2 ** 31 - 1) / 1000)

const wholeNumber = (min: number) => {
  const rule = `must be a whole number >= ${min}`
  return Schema.Number.annotate({ message: rule }).check(
    Schema.makeFilter((n: number) => Number.isInteger(n) && n >= min, { message: rule })
  )
}

const seconds = (positive: boolean) => {
  const rule = positive ? "must be a number of seconds > 0" : "must be a number of seconds >= 0"
  return Schema.Number.annotate({ message: rule }).check(
    Schema.makeFilter((n: number) => Number.isFinite(n) && (positive ? n > 0 : n >= 0), { message: rule }),
    Schema.makeFilter((n: number) => n <= maxDurationSeconds, {
      message: `must be at most ${maxDurationSeconds} seconds (about 24.8 days, the longest a timer can wait)`
    })
  )
}

const fallbackRule = `must be "fail" or "direct"`
const concurrencyRule = `must be "auto" or a whole number >= 1`
const catalogRule = `must be "shared" or "off"`

const fields = {
  minConnections: wholeNumber(0),
  maxConnections: wholeNumber(1),
  maxIdleTime: seconds(true),
  connectionTimeout: seconds(true),
  healthCheckInterval: seconds(true),
  retryAttempts: wholeNumber(0),
  retryDelay: seconds(false),
  circuitBreakerFailureThreshold: wholeNumber(1),
  circuitBreakerRecoveryTimeout: seconds(true),
  /** How long a borrower waits for a connection; defaults to `connectionTimeout`. */
  acquireTimeout: seconds(true),
  requestTimeout: seconds(true),
  /** `"auto"`: each connection's limit adapts to the server's latency (see `autoConcurrencyMin`/`Max`). */
  maxConcurrentRequestsPerConnection: Schema.Union([
    Schema.Literal("auto"),
    Schema.Number.check(Schema.makeFilter((n: number) => Number.isInteger(n) && n >= 1, { message: concurrencyRule }))
  ]).annotate({ message: concurrencyRule }),
  /** The least requests an adaptive (`"auto"`) connection carries at once. */
  autoConcurrencyMin: wholeNumber(1),
  /** The most requests an adaptive (`"auto"`) connection carries at once. */
  autoConcurrencyMax: wholeNumber(1),
  /** `"direct"`: when the pool cannot serve, run the call on a one-off connection. */
  fallback: Schema.Literals(["fail", "direct"]).annotate({ message: fallbackRule }),
  /** A connection idle longer than this is pinged before it is lent (0: always). */
  aliveBypassWindow: seconds(false),
  /** Time between SIGTERM and SIGKILL when a stdio server's process group is ended. */
  shutdownGracePeriod: seconds(false),
  /** `"shared"`: list calls are answered from the server's catalog; `"off"`: each goes to the server. */
  catalog: Schema.Literals(["shared", "off"]).annotate({ message: catalogRule }),
  /** How long a listed catalog stays fresh (0: until the server says it changed or a connection is replaced). */
  catalogTtl: seconds(false)
}

type Field = keyof typeof fields

const fieldNames = Object.keys(fields) as ReadonlyArray<Field>

const isField = (key: string): key is Field => Object.hasOwn(fields, key)

/**
 * The settings of one pool, every field checked: whole numbers where counts are meant,
 * durations in seconds up to {@link maxDurationSeconds}, and `minConnections <= maxConnections`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PoolConfigSchema = Schema.Struct(fields).check(
  Schema.makeFilter((config: { readonly minConnections: number; readonly maxConnections: number }) =>
    config.minConnections <= config.maxConnections
      ? undefined
      : {
          path: ["minConnections"],
          issue: `minConnections must not exceed maxConnections (${config.maxConnections})`
        }
  ),
  Schema.makeFilter((config: { readonly autoConcurrencyMin: number; readonly autoConcurrencyMax: number }) =>
    config.autoConcurrencyMin <= config.autoConcurrencyMax
      ? undefined
      : {
          path: ["autoConcurrencyMin"],
          issue: `autoConcurrencyMin must not exceed autoConcurrencyMax (${config.autoConcurrencyMax})`
        }
  )
)

type PoolConfigType = typeof PoolConfigSchema.Type

/**
 * The settings of one pool. Durations are in seconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface PoolConfig extends PoolConfigType {}

/**
 * Some settings of a pool; what is missing comes from a lower layer.
 *
 * @since 0.1.0
 * @category models
 */
export type PoolConfigInput = { readonly [K in keyof PoolConfig]?: PoolConfig[K] | undefined }

const withoutUndefined = (record: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))

/**
 * Some settings of a pool, as written in a `"pool"` block, the `defaults` option or
 * `configureServerPool`: an object whose keys must be settings (a typo is an error, not
 * ignored) and whose `undefined` values are dropped.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PoolConfigInputSchema = Schema.Record(Schema.String, Schema.Unknown)
  .annotate({ message: "must be an object of pool settings" })
  .check(
    Schema.makeFilter((record: Readonly<Record<string, unknown>>) => {
      const unknown = Object.keys(record).find((key) => !isField(key))
      return unknown === undefined
        ? undefined
        : { path: [unknown], issue: `is not a pool setting (known: ${fieldNames.join(", ")})` }
    })
  )
  .pipe(
    Schema.decodeTo(Schema.Struct(fields).mapFields(Struct.map(Schema.optionalKey)), {
      decode: SchemaGetter.transform(withoutUndefined),
      encode: SchemaGetter.passthrough()
    })
  )

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
  maxConcurrentRequestsPerConnection: "auto",
  autoConcurrencyMin: 1,
  autoConcurrencyMax: 128,
  fallback: "fail",
  aliveBypassWindow: 30,
  shutdownGracePeriod: 2,
  catalog: "shared",
  catalogTtl: 0
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
  autoConcurrencyMin: "MCP_POOL_AUTO_CONCURRENCY_MIN",
  autoConcurrencyMax: "MCP_POOL_AUTO_CONCURRENCY_MAX",
  fallback: "MCP_POOL_FALLBACK",
  aliveBypassWindow: "MCP_POOL_ALIVE_BYPASS_WINDOW",
  shutdownGracePeriod: "MCP_POOL_SHUTDOWN_GRACE_PERIOD",
  catalog: "MCP_POOL_CATALOG",
  catalogTtl: "MCP_POOL_CATALOG_TTL"
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

const decode = <S extends Schema.ConstraintDecoder<unknown>>(
  schema: S,
  input: unknown,
  location: Location,
  written: unknown = input
): Result.Result<S["Type"], MCPConfigError> =>
  Result.mapError(SchemaParser.decodeUnknownResult(schema)(input), (issue) => toConfigError(issue, written, location))

const inContext = (context: Context): Location =>
  inSource({ source: context.source, root: context.path, serverName: context.serverName })

/**
 * Checks settings given as an object (from JSON or code) with {@link PoolConfigInputSchema}:
 * unknown fields, types and the rule of every field; `undefined` values are dropped.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validateInput = (input: unknown, context: Context): Result.Result<PoolConfigInput, MCPConfigError> =>
  decode(PoolConfigInputSchema, input, inContext(context))

/**
 * Merges layers of settings (later ones win, `undefined` never overrides) over the
 * defaults, derives `acquireTimeout`, and checks the result with {@link PoolConfigSchema}
 * (every rule, and `minConnections <= maxConnections`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve = (
  layers: ReadonlyArray<PoolConfigInput>,
  context: Context
): Result.Result<PoolConfig, MCPConfigError> => {
  const merged: Record<string, unknown> = { ...defaults }
  // Only the known fields are read, so no key of a layer can reach the object's prototype.
  for (const layer of layers) {
    for (const field of fieldNames) if (layer[field] !== undefined) merged[field] = layer[field]
  }
  merged["acquireTimeout"] ??= merged["connectionTimeout"]
  return decode(PoolConfigSchema, merged, inContext(context))
}

// An environment variable is text: a number (blanks around it ignored, a blank one is not a
// number) or the fallback's word. Then it is decoded like any other value.
const fromText = (field: Field, text: string): number | string => {
  const trimmed = text.trim()
  if (field === "fallback" || field === "catalog") return trimmed
  if (field === "maxConcurrentRequestsPerConnection" && trimmed === "auto") return trimmed
  return trimmed === "" ? Number.NaN : Number(text)
}

const inEnvironment: Location = {
  source: (path) => {
    const field = path[0]
    return typeof field === "string" && isField(field) ? `environment variable ${envVariables[field]}` : "environment"
  },
  path: () => "",
  serverName: () => undefined
}

const readVariable = (field: Field) =>
  Config.option(Config.String(envVariables[field])).pipe(
    Effect.mapError(
      (error) =>
        new MCPConfigError({
          serverName: undefined,
          source: `environment variable ${envVariables[field]}`,
          path: "",
          rule: `cannot be read: ${error.message}`
        })
    ),
    Effect.map(Option.map((text) => [field, text] as const))
  )

/**
 * Reads the `MCP_POOL_*` and `MCP_CIRCUIT_BREAKER_*` variables that are set, through effect
 * `Config` (so a `ConfigProvider` can supply them), and decodes them with
 * {@link PoolConfigInputSchema}, as settings written in code or a file are.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEnv: Effect.Effect<PoolConfigInput, MCPConfigError> = Effect.gen(function* () {
  const read = yield* Effect.forEach(fieldNames, readVariable)
  const written = Object.fromEntries(Arr.getSomes(read))
  const input = Object.fromEntries(
    Object.entries(written).map(([field, text]) => [field, fromText(field as Field, text)])
  )
  return yield* Effect.fromResult(decode(PoolConfigInputSchema, input, inEnvironment, written))
})

/**
 * The `MCP_POOL_*` and `MCP_CIRCUIT_BREAKER_*` variables of the current `ConfigProvider` that
 * are no setting (a typo such as `MCP_POOL_MAX_CONNECTION`), each with the closest setting's
 * variable when one is close. The manager logs a warning for each.
 *
 * @since 0.1.0
 * @category getters
 */
export const unknownVariables: Effect.Effect<
  ReadonlyArray<{ readonly name: string; readonly suggestion: string | undefined }>
> = Effect.map(
  Effect.all([EnvNames.namesUnder(["MCP", "POOL"]), EnvNames.namesUnder(["MCP", "CIRCUIT", "BREAKER"])]),
  ([pool, breaker]) => {
    const known = Object.values(envVariables)
    return [...pool, ...breaker]
      .filter((name) => !known.includes(name))
      .map((name) => ({ name, suggestion: EnvNames.closest(name, known) }))
  }
)

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
