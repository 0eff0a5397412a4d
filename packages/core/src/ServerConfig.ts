/**
 * The `.mcp.json` loader: stdio, Streamable HTTP and SSE servers in the formats the MCP
 * ecosystem uses (and VS Code's `mcp.json`), `${VAR}` expansion, per-server `"pool"` blocks.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { resolve as resolvePath } from "node:path"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import * as SchemaParser from "effect/SchemaParser"
import { MCPConfigError } from "./Errors.js"
import { inSource, type Location, toConfigError } from "./internal/configIssue.js"
import * as Jsonc from "./internal/jsonc.js"
import { redactArgs, redactUrl as redactUrlText, redactValues } from "./internal/redact.js"
import { makeScrub } from "./internal/scrub.js"
import * as internal from "./internal/serverSchema.js"
import * as PoolConfig from "./PoolConfig.js"

/**
 * One configured server, as an `effect/Schema` (a union on `transport`). Decoding a file or
 * entries goes through {@link load}, {@link loadFile}, {@link parse} or {@link fromEntries}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerConfigSchema = internal.ServerConfig

type StdioType = typeof internal.StdioServerConfig.Type
type HttpType = typeof internal.HttpServerConfig.Type
type SseType = typeof internal.SseServerConfig.Type

/**
 * A server started as a child process, spoken to over stdin/stdout.
 *
 * @since 0.1.0
 * @category models
 */
export interface StdioServerConfig extends StdioType {}

/**
 * A remote server over Streamable HTTP.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpServerConfig extends HttpType {}

/**
 * A remote server over the legacy HTTP+SSE transport.
 *
 * @since 0.1.0
 * @category models
 */
export interface SseServerConfig extends SseType {}

/**
 * One configured server.
 *
 * @since 0.1.0
 * @category models
 */
export type ServerConfig = StdioServerConfig | HttpServerConfig | SseServerConfig

/**
 * Where the configuration comes from and the environment `${VAR}` expands from.
 *
 * @since 0.1.0
 * @category models
 */
export interface ParseOptions {
  readonly source: string
  readonly env: Readonly<Record<string, string | undefined>>
}

type Variables = typeof internal.Variables.Service

/** Variables from a record; only its string values count (`env.toString` is not a variable). */
const fromRecord = (env: Readonly<Record<string, string | undefined>>): Variables => ({
  lookup: (name) => {
    const value: unknown = env[name]
    return Effect.succeed(typeof value === "string" && value !== "" ? value : undefined)
  }
})

/** Variables through effect `Config`, so that the current `ConfigProvider` answers. */
const fromConfig: Variables = {
  lookup: (name) =>
    Config.option(Config.String(name)).pipe(
      Effect.map((value) => Option.getOrUndefined(Option.filter(value, (text) => text !== ""))),
      Effect.mapError((error) => `environment variable ${name} cannot be read: ${error.message}`)
    )
}

const inFile = (source: string): Location => inSource({ source, root: "", serverAt: 1, showRoot: false })
const inEntries = (source: string): Location => inSource({ source, root: "servers", serverAt: 0 })

const decode = (
  schema: typeof internal.File | typeof internal.Servers,
  input: unknown,
  location: Location,
  variables: Variables
): Effect.Effect<ReadonlyArray<ServerConfig>, MCPConfigError> =>
  SchemaParser.decodeUnknownEffect(schema)(input).pipe(
    Effect.mapError((issue) => toConfigError(issue, input, location)),
    Effect.map((servers) => {
      // A file's servers are under "mcpServers" (or VS Code's "servers"); entries are the root.
      const key = schema === internal.File && Predicate.hasProperty(input, "mcpServers") ? ["mcpServers"] : []
      const prefix = schema === internal.File && key.length === 0 ? ["servers"] : key
      return servers.map((server) => ({
        ...server,
        origin: { source: location.source([]), poolPath: location.path([...prefix, server.name, "pool"]) }
      }))
    }),
    Effect.provideService(internal.Variables, variables)
  )

/** Runs a decoding that needs nothing asynchronous; a defect is thrown, not hidden. */
const runSync = <A>(effect: Effect.Effect<A, MCPConfigError>): Result.Result<A, MCPConfigError> =>
  Effect.runSync(Effect.result(effect))

/**
 * Parses a whole file's JSON: `{"mcpServers": {...}}` or VS Code's `{"servers": {...}}`,
 * expanding `${VAR}` from `options.env`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (
  json: unknown,
  options: ParseOptions
): Result.Result<ReadonlyArray<ServerConfig>, MCPConfigError> =>
  runSync(decode(internal.File, json, inFile(options.source), fromRecord(options.env)))

/**
 * Parses server entries given in code (`createMcpConnectionManager({ servers })`),
 * expanding `${VAR}` from `options.env`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEntries = (
  servers: Readonly<Record<string, unknown>>,
  options: ParseOptions
): Result.Result<ReadonlyArray<ServerConfig>, MCPConfigError> =>
  runSync(decode(internal.Servers, servers, inEntries(options.source), fromRecord(options.env)))

const readJson = (source: string): Effect.Effect<unknown, MCPConfigError> =>
  Effect.tryPromise({
    try: () => readFile(source, "utf8"),
    catch: (cause) =>
      new MCPConfigError({
        serverName: undefined,
        source,
        path: "",
        rule: `cannot read the MCP config file: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.fromResult(
        Result.mapError(
          Jsonc.parse(text),
          (rule) => new MCPConfigError({ serverName: undefined, source, path: "", rule })
        )
      )
    )
  )

/**
 * Reads and parses a config file (comments and trailing commas allowed). A missing or
 * unreadable file, and a JSON syntax error (with its line and column), are `MCPConfigError`s
 * naming the file. `${VAR}` expands from `env` when given, else through effect `Config`
 * (the current `ConfigProvider`, which reads `process.env` unless replaced).
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadFile = (
  path: string,
  env?: Readonly<Record<string, string | undefined>>
): Effect.Effect<ReadonlyArray<ServerConfig>, MCPConfigError> => {
  const source = resolvePath(path)
  return Effect.flatMap(readJson(source), (json) =>
    decode(internal.File, json, inFile(source), env === undefined ? fromConfig : fromRecord(env))
  )
}

/**
 * Where {@link load} finds the servers: entries in the `.mcp.json` shape given in code, or
 * a file.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadOptions {
  readonly servers?: Readonly<Record<string, unknown>> | undefined
  readonly configPath?: string | undefined
}

const configPathFromEnv: Effect.Effect<string, MCPConfigError> = Config.option(Config.String("MCP_CONFIG_PATH")).pipe(
  Effect.mapError(
    (error) =>
      new MCPConfigError({
        serverName: undefined,
        source: "environment variable MCP_CONFIG_PATH",
        path: "",
        rule: `cannot be read: ${error.message}`
      })
  ),
  Effect.map((value) =>
    Option.getOrElse(
      Option.filter(value, (path) => path !== ""),
      () => resolvePath(".mcp.json")
    )
  )
)

/**
 * Loads the servers, reading the environment only through effect `Config` (so that a
 * `ConfigProvider` decides what `${VAR}` and `MCP_CONFIG_PATH` are): `servers` when given
 * (source `options.servers`), else the file `configPath`, else the file named by
 * `MCP_CONFIG_PATH`, else `./.mcp.json`.
 *
 * @example
 * ```ts
 * import * as ServerConfig from "@mcp-pool/core/ServerConfig"
 * import * as ConfigProvider from "effect/ConfigProvider"
 * import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
 *
 * const servers = ServerConfig.load({
 *   servers: { search: { type: "http", url: "https://search.example.com/mcp", headers: { Authorization: "Bearer ${TOKEN}" } } }
 * }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { TOKEN: "t0ken" } }))))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = (options: LoadOptions = {}): Effect.Effect<ReadonlyArray<ServerConfig>, MCPConfigError> => {
  if (options.servers !== undefined) {
    return decode(internal.Servers, options.servers, inEntries("options.servers"), fromConfig)
  }
  const configPath = options.configPath
  return Effect.flatMap(configPath === undefined ? configPathFromEnv : Effect.succeed(configPath), (path) =>
    loadFile(path)
  )
}

/**
 * The config file used when none is given: `MCP_CONFIG_PATH`, else `./.mcp.json`.
 *
 * @since 0.1.0
 * @category getters
 */
export const defaultConfigPath = (env: Readonly<Record<string, string | undefined>>, cwd: string): string => {
  const fromEnv = env["MCP_CONFIG_PATH"]
  return typeof fromEnv === "string" && fromEnv !== "" ? fromEnv : resolvePath(cwd, ".mcp.json")
}

/**
 * The transport of a server, as the monitoring API names it.
 *
 * @since 0.1.0
 * @category getters
 */
export const describeTransport = (server: ServerConfig): ServerConfig["transport"] => server.transport

/**
 * A URL with its user, password and every query value replaced.
 *
 * @since 0.1.0
 * @category getters
 */
export const redactUrl = (url: string): string => redactUrlText(url)

/**
 * A server's configuration with no secret in it: env and header values, URL credentials and
 * query values, and the value after a secret-looking flag in `args` are `[REDACTED]`. Its
 * `"pool"` block has snake_case names, like every field of the monitoring API.
 *
 * @since 0.1.0
 * @category getters
 */
export const redact = (server: ServerConfig): Record<string, unknown> =>
  server.transport === "stdio"
    ? {
        name: server.name,
        transport: server.transport,
        command: server.command,
        args: redactArgs(server.args),
        env: redactValues(server.env),
        ...(server.cwd === undefined ? {} : { cwd: server.cwd }),
        ...(server.inheritEnv === undefined ? {} : { inherit_env: server.inheritEnv }),
        pool: PoolConfig.toSnakeCase(server.pool)
      }
    : {
        name: server.name,
        transport: server.transport,
        url: redactUrl(server.url),
        headers: redactValues(server.headers),
        pool: PoolConfig.toSnakeCase(server.pool)
      }

const decodeComponent = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    // Not valid percent-encoding: the text is the value itself.
    return text
  }
}

/** The `Authorization` header that credentials in a URL stand for, if it has any. */
const basicAuthorization = (url: URL): string | undefined =>
  url.username === "" && url.password === ""
    ? undefined
    : `Basic ${Buffer.from(`${decodeComponent(url.username)}:${decodeComponent(url.password)}`).toString("base64")}`

/** A header value, its credentials after the scheme, and what a `Basic` header encodes. */
function* headerSecrets(value: string): Generator<string> {
  yield value
  const parts = /^(\S+)\s+(\S+)$/.exec(value.trim())
  if (parts === null) return
  const [, scheme = "", credentials = ""] = parts
  yield credentials
  if (scheme.toLowerCase() !== "basic") return
  const decoded = Buffer.from(credentials, "base64").toString("utf8")
  yield decoded
  yield decoded.slice(decoded.indexOf(":") + 1)
}

function* secretsOf(server: ServerConfig): Generator<string> {
  if (server.transport === "stdio") {
    yield* Object.values(server.env)
    return
  }
  for (const value of Object.values(server.headers)) yield* headerSecrets(value)
  const url = URL.parse(server.url)
  if (url === null) return
  yield decodeComponent(url.password)
  yield decodeComponent(url.username)
  yield* url.searchParams.values()
  const authorization = basicAuthorization(url)
  if (authorization !== undefined) yield* headerSecrets(authorization)
}

/**
 * A function that replaces every secret of a server's configuration found in a text: env
 * and header values (and the credentials after a header's scheme), the URL's credentials and
 * query values, and the `Authorization: Basic` header derived from them, in plain,
 * percent-encoded, form-encoded and JSON-escaped form. For error messages and logs that
 * quote what a library or a server said.
 *
 * @since 0.1.0
 * @category getters
 */
export const scrubber = (server: ServerConfig): ((text: string) => string) => {
  const replacements: Array<readonly [string, string]> = []
  if (server.transport !== "stdio") {
    replacements.push([server.url, redactUrl(server.url)])
    const href = URL.parse(server.url)?.href
    if (href !== undefined && href !== server.url) replacements.push([href, redactUrl(href)])
  }
  return makeScrub(secretsOf(server), replacements)
}

/**
 * The URL and headers to connect with: credentials in the URL (`http://user:pass@host/`),
 * which `fetch` refuses, become an `Authorization: Basic` header unless one is set.
 *
 * @since 0.1.0
 * @category getters
 */
export const connectionTarget = (
  url: string,
  headers: Readonly<Record<string, string>>
): { readonly url: URL; readonly headers: Record<string, string> } => {
  const parsed = new URL(url)
  const out: Record<string, string> = { ...headers }
  const authorization = basicAuthorization(parsed)
  if (authorization !== undefined) {
    const hasAuthorization = Object.keys(out).some((key) => key.toLowerCase() === "authorization")
    if (!hasAuthorization) out["Authorization"] = authorization
    parsed.username = ""
    parsed.password = ""
  }
  return { url: parsed, headers: out }
}
