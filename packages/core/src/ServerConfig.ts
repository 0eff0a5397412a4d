/**
 * The `.mcp.json` loader: stdio, Streamable HTTP and SSE servers in the formats the MCP
 * ecosystem uses (and VS Code's `mcp.json`), `${VAR}` expansion, per-server `"pool"` blocks.
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { resolve as resolvePath } from "node:path"
import * as Effect from "effect/Effect"
import * as Jsonc from "jsonc-parser"
import * as Predicate from "effect/Predicate"
import * as Result from "effect/Result"
import { MCPConfigError } from "./Errors.js"
import * as PoolConfig from "./PoolConfig.js"

interface ServerConfigBase {
  readonly name: string
  readonly pool: PoolConfig.PoolConfigInput
}

/**
 * A server started as a child process, spoken to over stdin/stdout.
 *
 * @since 0.1.0
 * @category models
 */
export interface StdioServerConfig extends ServerConfigBase {
  readonly transport: "stdio"
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string>>
  readonly cwd?: string | undefined
}

/**
 * A remote server over Streamable HTTP.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpServerConfig extends ServerConfigBase {
  readonly transport: "streamable-http"
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

/**
 * A remote server over the legacy HTTP+SSE transport.
 *
 * @since 0.1.0
 * @category models
 */
export interface SseServerConfig extends ServerConfigBase {
  readonly transport: "sse"
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
}

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

class Invalid {
  constructor(readonly error: MCPConfigError) {}
}

const variable = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Parses a whole file's JSON: `{"mcpServers": {...}}` or VS Code's `{"servers": {...}}`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (
  json: unknown,
  options: ParseOptions
): Result.Result<ReadonlyArray<ServerConfig>, MCPConfigError> => {
  if (!Predicate.isObject(json) || Array.isArray(json)) {
    return Result.fail(
      new MCPConfigError({ serverName: undefined, source: options.source, path: "", rule: "must be a JSON object" })
    )
  }
  const key = "mcpServers" in json ? "mcpServers" : "servers" in json ? "servers" : undefined
  if (key === undefined) {
    return Result.fail(
      new MCPConfigError({
        serverName: undefined,
        source: options.source,
        path: "",
        rule: `must have a "mcpServers" (or VS Code "servers") object`
      })
    )
  }
  return entries(json[key], key, options)
}

/**
 * Parses server entries given in code (`createMcpConnectionManager({ servers })`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromEntries = (
  servers: Readonly<Record<string, unknown>>,
  options: ParseOptions
): Result.Result<ReadonlyArray<ServerConfig>, MCPConfigError> => entries(servers, "servers", options)

const entries = (
  value: unknown,
  path: string,
  options: ParseOptions
): Result.Result<ReadonlyArray<ServerConfig>, MCPConfigError> => {
  if (!Predicate.isObject(value) || Array.isArray(value)) {
    return Result.fail(
      new MCPConfigError({
        serverName: undefined,
        source: options.source,
        path,
        value,
        rule: "must be an object of servers"
      })
    )
  }
  try {
    return Result.succeed(
      Object.entries(value).map(([name, entry]) => parseServer(name, entry, `${path}.${name}`, options))
    )
  } catch (error) {
    if (error instanceof Invalid) return Result.fail(error.error)
    throw error
  }
}

// Keys other tools put on a server entry ("disabled", "alwaysAllow", "timeout",
// "description", ...) are ignored, so one file can serve them and us.
const parseServer = (name: string, entry: unknown, path: string, options: ParseOptions): ServerConfig => {
  const invalid = (at: string, value: unknown, rule: string): never => {
    throw new Invalid(new MCPConfigError({ serverName: name, source: options.source, path: at, value, rule }))
  }
  if (name.trim() === "") invalid(path, name, "a server name must not be empty")
  if (!Predicate.isObject(entry) || Array.isArray(entry)) return invalid(path, entry, "must be an object")
  const record = entry as Record<string, unknown>
  const expand = (value: string, at: string): string =>
    value.replace(variable, (_, variableName: string, fallback: string | undefined) => {
      const found = options.env[variableName]
      if (found !== undefined && found !== "") return found
      if (fallback !== undefined) return fallback
      return invalid(at, value, `environment variable ${variableName} is not set`)
    })
  const string = (key: string, required: boolean): string | undefined => {
    const value = record[key]
    if (value === undefined && !required) return undefined
    if (typeof value !== "string" || value.trim() === "")
      return invalid(`${path}.${key}`, value, "must be a non-empty string")
    return expand(value, `${path}.${key}`)
  }
  const strings = (key: string): Record<string, string> => {
    const value = record[key]
    if (value === undefined) return {}
    if (!Predicate.isObject(value) || Array.isArray(value))
      return invalid(`${path}.${key}`, value, "must be an object of strings")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => {
        if (typeof v !== "string") return invalid(`${path}.${key}.${k}`, v, "must be a string")
        return [k, expand(v, `${path}.${key}.${k}`)]
      })
    )
  }
  const poolChecked = (): PoolConfig.PoolConfigInput => {
    if (record["pool"] === undefined) return {}
    const checked = PoolConfig.validateInput(record["pool"], {
      source: options.source,
      path: `${path}.pool`,
      serverName: name
    })
    if (Result.isFailure(checked)) throw new Invalid(checked.failure)
    return checked.success
  }
  const type = record["type"]
  if (type !== undefined && typeof type !== "string")
    invalid(`${path}.type`, type, `must be "stdio", "http", "streamable-http" or "sse"`)
  if (type === "stdio" || (type === undefined && record["command"] !== undefined)) {
    const args = record["args"] ?? []
    if (!Array.isArray(args)) invalid(`${path}.args`, args, "must be an array of strings")
    const argList = (args as ReadonlyArray<unknown>).map((arg, i) =>
      typeof arg === "string"
        ? expand(arg, `${path}.args[${i}]`)
        : invalid(`${path}.args[${i}]`, arg, "must be a string")
    )
    return {
      name,
      transport: "stdio",
      command: string("command", true) ?? "",
      args: argList,
      env: strings("env"),
      cwd: string("cwd", false),
      pool: poolChecked()
    }
  }
  if (type === undefined || type === "http" || type === "streamable-http" || type === "sse") {
    if (record["url"] === undefined) invalid(path, entry, `needs a "command" (stdio) or a "url" (http, sse)`)
    const url = string("url", true) ?? ""
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    if (parsed === undefined || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      invalid(`${path}.url`, redactUrl(url), "must be an http:// or https:// URL")
    }
    return {
      name,
      transport: type === "sse" ? "sse" : "streamable-http",
      url,
      headers: strings("headers"),
      pool: poolChecked()
    }
  }
  return invalid(`${path}.type`, type, `must be "stdio", "http", "streamable-http" or "sse"`)
}

const lineColumn = (text: string, offset: number): string => {
  const before = text.slice(0, offset)
  return `line ${before.split("\n").length}, column ${offset - before.lastIndexOf("\n")}`
}

/**
 * Reads and parses a config file (comments and trailing commas allowed). A missing or unreadable file, and a JSON syntax error
 * (with its line and column), are `MCPConfigError`s naming the file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const loadFile = (
  path: string,
  env: Readonly<Record<string, string | undefined>> = process.env
): Effect.Effect<ReadonlyArray<ServerConfig>, MCPConfigError> => {
  const source = resolvePath(path)
  return Effect.tryPromise({
    try: () => readFile(source, "utf8"),
    catch: (cause) =>
      new MCPConfigError({
        serverName: undefined,
        source,
        path: "",
        rule: `cannot read the MCP config file: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  }).pipe(
    Effect.flatMap((text) => {
      // JSON with comments and trailing commas, as VS Code writes its mcp.json.
      const errors: Array<Jsonc.ParseError> = []
      const json: unknown = Jsonc.parse(text, errors, { allowTrailingComma: true })
      const first = errors[0]
      if (first !== undefined) {
        return Effect.fail(
          new MCPConfigError({
            serverName: undefined,
            source,
            path: "",
            rule: `invalid JSON at ${lineColumn(text, first.offset)}: ${Jsonc.printParseErrorCode(first.error)}`
          })
        )
      }
      return Effect.fromResult(parse(json, { source, env }))
    })
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
  return fromEnv !== undefined && fromEnv !== "" ? fromEnv : resolvePath(cwd, ".mcp.json")
}

/**
 * The transport of a server, as the monitoring API names it.
 *
 * @since 0.1.0
 * @category getters
 */
export const describeTransport = (server: ServerConfig): ServerConfig["transport"] => server.transport

const REDACTED = "[REDACTED]"
const secretFlag = /^--?(?:[a-z0-9-]*(?:token|key|secret|password|passwd|auth|credential)[a-z0-9-]*)$/i
const secretAssignment = /^(--?[a-z0-9-]*(?:token|key|secret|password|passwd|auth|credential)[a-z0-9-]*=)(.+)$/i

/**
 * A URL with its user, password and every query value replaced.
 *
 * @since 0.1.0
 * @category getters
 */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.username !== "") parsed.username = REDACTED
    if (parsed.password !== "") parsed.password = REDACTED
    for (const key of Array.from(parsed.searchParams.keys())) parsed.searchParams.set(key, REDACTED)
    return parsed.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED)
  } catch {
    return REDACTED
  }
}

const redactArgs = (args: ReadonlyArray<string>): Array<string> =>
  args.map((arg, i) => {
    const assignment = secretAssignment.exec(arg)
    if (assignment !== null) return `${assignment[1]}${REDACTED}`
    const previous = args[i - 1]
    return previous !== undefined && secretFlag.test(previous) ? REDACTED : arg
  })

const redactValues = (record: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.keys(record).map((key) => [key, REDACTED]))

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
        pool: PoolConfig.toSnakeCase(server.pool)
      }
    : {
        name: server.name,
        transport: server.transport,
        url: redactUrl(server.url),
        headers: redactValues(server.headers),
        pool: PoolConfig.toSnakeCase(server.pool)
      }

/**
 * A function that replaces every secret of a server's configuration (env and header values,
 * the URL's credentials and query values, in plain and percent-encoded form) found in a
 * text: for error messages and logs that quote what a library or a server said.
 *
 * @since 0.1.0
 * @category getters
 */
export const scrubber = (server: ServerConfig): ((text: string) => string) => {
  const secrets = new Set<string>()
  const add = (value: string) => {
    // Very short values would blank out ordinary words; they are not credentials anyway.
    if (value.length < 4) return
    secrets.add(value)
    secrets.add(encodeURIComponent(value))
  }
  let url: { readonly raw: string; readonly redacted: string } | undefined
  if (server.transport === "stdio") {
    for (const value of Object.values(server.env)) add(value)
  } else {
    for (const value of Object.values(server.headers)) add(value)
    const parsed = URL.parse(server.url)
    if (parsed !== null) {
      add(decodeURIComponent(parsed.password))
      add(decodeURIComponent(parsed.username))
      for (const value of parsed.searchParams.values()) add(value)
      url = { raw: server.url, redacted: redactUrl(server.url) }
    }
  }
  if (secrets.size === 0) return (text) => text
  // Longest first, so that a secret containing another is replaced whole.
  const ordered = Array.from(secrets).toSorted((a, b) => b.length - a.length)
  return (text) => {
    let out = url === undefined ? text : text.replaceAll(url.raw, url.redacted)
    for (const secret of ordered) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    return out
  }
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
  if (parsed.username !== "" || parsed.password !== "") {
    const hasAuthorization = Object.keys(out).some((key) => key.toLowerCase() === "authorization")
    if (!hasAuthorization) {
      const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`
      out["Authorization"] = `Basic ${Buffer.from(credentials).toString("base64")}`
    }
    parsed.username = ""
    parsed.password = ""
  }
  return { url: parsed, headers: out }
}
