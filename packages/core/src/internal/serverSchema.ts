/**
 * The schemas of `.mcp.json`: a whole file, its servers object and one entry of each
 * transport, with `${VAR}` expansion from the `Variables` service in every string.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as SchemaAST from "effect/SchemaAST"
import * as SchemaGetter from "effect/SchemaGetter"
import * as SchemaIssue from "effect/SchemaIssue"
import * as SchemaParser from "effect/SchemaParser"
import * as PoolConfig from "../PoolConfig.js"

/**
 * Where `${VAR}` and `${env:VAR}` are looked up. `lookup` answers `undefined` for a variable
 * that is unset or empty, and fails with the rule to report when the source cannot be read.
 */
export class Variables extends Context.Service<
  Variables,
  { readonly lookup: (name: string) => Effect.Effect<string | undefined, string> }
>()("@mcp-pool/core/ServerConfig/Variables") {}

const variable = /\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

const invalid = (message: string) => new SchemaIssue.InvalidValue({ message })

/** `${VAR}`, `${env:VAR}` and `${VAR:-default}` replaced; an unset variable without default fails. */
const expand = (text: string): Effect.Effect<string, SchemaIssue.Issue, Variables> => {
  const matches = Array.from(text.matchAll(variable))
  if (matches.length === 0) return Effect.succeed(text)
  return Effect.gen(function* () {
    const { lookup } = yield* Variables
    let out = ""
    let last = 0
    for (const match of matches) {
      const [whole, name = "", fallback] = match
      const value = (yield* Effect.mapError(lookup(name), invalid)) ?? fallback
      if (value === undefined) return yield* Effect.fail(invalid(`environment variable ${name} is not set`))
      out += text.slice(last, match.index) + value
      last = match.index + whole.length
    }
    return out + text.slice(last)
  })
}

const expanded = (schema: Schema.String) =>
  schema.pipe(Schema.decode({ decode: SchemaGetter.transformEffect(expand), encode: SchemaGetter.passthrough() }))

const nonEmptyRule = "must be a non-empty string"
const Text = expanded(Schema.String.annotate({ message: "must be a string" }))
const NonEmptyText = expanded(
  Schema.String.annotate({ message: nonEmptyRule }).check(
    Schema.makeFilter((text: string) => text.trim() !== "", { message: nonEmptyRule })
  )
)
const required = { messageMissingKey: `is missing (${nonEmptyRule})` }

const isHttpUrl = (url: string): boolean => {
  const parsed = URL.parse(url)
  return parsed !== null && (parsed.protocol === "http:" || parsed.protocol === "https:")
}

const HttpUrl = NonEmptyText.check(Schema.makeFilter(isHttpUrl, { message: "must be an http:// or https:// URL" }))
const Strings = Schema.Record(Schema.String, Text).annotate({ message: "must be an object of strings" })
const Args = Schema.Array(Text).annotate({ message: "must be an array of strings" })

const InheritEnv = Schema.Union([Schema.Boolean, Schema.Array(Schema.String)]).annotate({
  message: "must be true, false, or an array of variable names"
})

const StdioEntry = Schema.Struct({
  command: NonEmptyText.annotateKey(required),
  args: Schema.optionalKey(Args),
  env: Schema.optionalKey(Strings),
  inheritEnv: Schema.optionalKey(InheritEnv),
  cwd: Schema.optionalKey(NonEmptyText),
  pool: Schema.optionalKey(PoolConfig.PoolConfigInputSchema)
})

const RemoteEntry = Schema.Struct({
  url: HttpUrl.annotateKey(required),
  headers: Schema.optionalKey(Strings),
  pool: Schema.optionalKey(PoolConfig.PoolConfigInputSchema)
})

const Pool = Schema.toType(PoolConfig.PoolConfigInputSchema)
const StringRecord = Schema.Record(Schema.String, Schema.String)

/** Where a server was configured: for errors about its settings found later (min > max, say). */
const Origin = Schema.optional(
  Schema.Struct({
    /** The file, or `options.servers`. */
    source: Schema.String,
    /** The JSON path of the entry's `"pool"` block, e.g. `mcpServers.search.pool`. */
    poolPath: Schema.String
  })
)

/** A server started as a child process, spoken to over stdin/stdout. */
export const StdioServerConfig = Schema.Struct({
  name: Schema.String,
  transport: Schema.Literal("stdio"),
  command: Schema.String,
  args: Schema.Array(Schema.String),
  env: StringRecord,
  /**
   * What the server gets of this process's environment besides `env`: `true` all of it, an
   * array those variables; absent or `false`, the safe default (see `environment`).
   */
  inheritEnv: Schema.optional(Schema.Union([Schema.Boolean, Schema.Array(Schema.String)])),
  cwd: Schema.optional(Schema.String),
  /** The server's own pool settings, over the defaults. */
  pool: Pool,
  origin: Origin
})

/** A remote server over Streamable HTTP. */
export const HttpServerConfig = Schema.Struct({
  name: Schema.String,
  transport: Schema.Literal("streamable-http"),
  url: Schema.String,
  headers: StringRecord,
  pool: Pool,
  origin: Origin
})

/** A remote server over the legacy HTTP+SSE transport. */
export const SseServerConfig = Schema.Struct({
  name: Schema.String,
  transport: Schema.Literal("sse"),
  url: Schema.String,
  headers: StringRecord,
  pool: Pool,
  origin: Origin
})

/** One configured server, as the rest of the library uses it. */
export const ServerConfig = Schema.Union([StdioServerConfig, HttpServerConfig, SseServerConfig])

type Decoded = typeof ServerConfig.Type

const remoteTypes: ReadonlySet<unknown> = new Set(["http", "streamable-http", "sse"])
const typeRule = `must be "stdio", "http", "streamable-http" or "sse"`

const own = (record: Readonly<Record<string, unknown>>, key: string): unknown =>
  Object.hasOwn(record, key) ? record[key] : undefined

// Code may pass `cwd: undefined`; such a key counts as absent.
const withoutUndefined = (record: Readonly<Record<string, unknown>>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))

const EntryObject = Schema.Record(Schema.String, Schema.Unknown).annotate({ message: "must be an object" })

// Keys other tools put on a server entry ("disabled", "alwaysAllow", "timeout",
// "description", ...) are ignored, so one file can serve them and us.
const decodeEntry = (
  name: string,
  entry: Readonly<Record<string, unknown>>,
  options: SchemaAST.ParseOptions
): Effect.Effect<Decoded, SchemaIssue.Issue, Variables> => {
  const record = withoutUndefined(entry)
  const type = own(record, "type")
  if (type === "stdio" || (type === undefined && own(record, "command") !== undefined)) {
    return Effect.map(SchemaParser.decodeUnknownEffect(StdioEntry)(record, options), (fields) => ({
      name,
      transport: "stdio" as const,
      command: fields.command,
      args: fields.args ?? [],
      env: fields.env ?? {},
      cwd: fields.cwd,
      inheritEnv: fields.inheritEnv,
      pool: fields.pool ?? {}
    }))
  }
  if (type !== undefined && !remoteTypes.has(type)) {
    return Effect.fail(new SchemaIssue.Pointer(["type"], invalid(typeRule)))
  }
  if (own(record, "url") === undefined) {
    return Effect.fail(invalid(`needs a "command" (stdio) or a "url" (http, sse)`))
  }
  return Effect.map(SchemaParser.decodeUnknownEffect(RemoteEntry)(record, options), (fields) => ({
    name,
    transport: type === "sse" ? ("sse" as const) : ("streamable-http" as const),
    url: fields.url,
    headers: fields.headers ?? {},
    pool: fields.pool ?? {}
  }))
}

const decodeNamed = (name: string, entry: unknown, options: SchemaAST.ParseOptions) =>
  name.trim() === ""
    ? Effect.fail(invalid("a server name must not be empty"))
    : Effect.flatMap(SchemaParser.decodeUnknownEffect(EntryObject)(entry, options), (record) =>
        decodeEntry(name, record, options)
      )

const notEncoded = SchemaGetter.forbidden<never, unknown>(() => "server configurations are not encoded back")

/**
 * The servers object of a file (`mcpServers` or VS Code's `servers`) or of code
 * (`options.servers`): every key a server name (`__proto__` too), in order.
 */
export const Servers = Schema.Record(Schema.String, Schema.Unknown)
  .annotate({ message: "must be an object of servers" })
  .pipe(
    Schema.decodeTo(Schema.Array(ServerConfig), {
      decode: SchemaGetter.transformEffect((servers: Readonly<Record<string, unknown>>, options) =>
        Effect.forEach(Object.entries(servers), ([name, entry]) =>
          Effect.mapError(decodeNamed(name, entry, options), (issue) => new SchemaIssue.Pointer([name], issue))
        )
      ),
      encode: notEncoded
    })
  )

/** A whole `.mcp.json` (`{"mcpServers": {...}}`) or VS Code `mcp.json` (`{"servers": {...}}`). */
export const File = Schema.Record(Schema.String, Schema.Unknown)
  .annotate({ message: "must be a JSON object" })
  .pipe(
    Schema.decodeTo(Schema.Array(ServerConfig), {
      decode: SchemaGetter.transformEffect((file: Readonly<Record<string, unknown>>, options) => {
        const key = Object.hasOwn(file, "mcpServers")
          ? "mcpServers"
          : Object.hasOwn(file, "servers")
            ? "servers"
            : undefined
        if (key === undefined) return Effect.fail(invalid(`must have a "mcpServers" (or VS Code "servers") object`))
        return Effect.mapError(
          SchemaParser.decodeUnknownEffect(Servers)(file[key], options),
          (issue) => new SchemaIssue.Pointer([key], issue)
        )
      }),
      encode: notEncoded
    })
  )
