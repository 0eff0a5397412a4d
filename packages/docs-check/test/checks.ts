/**
 * The checks of the blocks that are not TypeScript: JSON (config files and monitoring
 * answers), shell commands, HTTP requests; and, over a whole document, the environment
 * variables it names and its relative links.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve } from "node:path"
import * as MonitoringApi from "@mcp-pool/core/MonitoringApi"
import * as PoolConfig from "@mcp-pool/core/PoolConfig"
import * as ServerConfig from "@mcp-pool/core/ServerConfig"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Jsonc from "jsonc-parser"
import { type Block, type Doc, root, where } from "./markdown.js"

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

const lineOf = (text: string, offset: number): number => text.slice(0, offset).split("\n").length - 1

/**
 * Parses a `json` block strictly, a `jsonc` block with comments and trailing commas (as
 * `.mcp.json` files may have them).
 */
const parseJson = (block: Block): Result.Result<unknown, string> => {
  const errors: Array<Jsonc.ParseError> = []
  const strict = block.lang === "json"
  const value: unknown = Jsonc.parse(block.code, errors, {
    disallowComments: strict,
    allowTrailingComma: !strict,
    allowEmptyContent: false
  })
  const first = errors[0]
  if (first === undefined) return Result.succeed(value)
  const comment =
    strict && Jsonc.printParseErrorCode(first.error) === "InvalidCommentToken" ? " (use ```jsonc for comments)" : ""
  return Result.fail(
    `${where(block, lineOf(block.code, first.offset))}: invalid JSON: ${Jsonc.printParseErrorCode(first.error)}${comment}`
  )
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A config file: `{"mcpServers": {...}}`, or VS Code's `{"servers": {...}}` (an object, not the `/servers` answer's array). */
const isConfigFile = (value: unknown): boolean =>
  isRecord(value) && ("mcpServers" in value || ("servers" in value && isRecord(value["servers"])))

/** Every `${VAR}` of an example is set: examples name placeholders, not variables of this machine. */
const placeholderEnv: Readonly<Record<string, string | undefined>> = new Proxy(
  {},
  { get: (_, name) => (typeof name === "string" ? `value-of-${name}` : undefined) }
)

/** Loads a config block through `ServerConfig.loadFile`, and resolves every server's pool settings. */
const checkConfigFile = async (block: Block, directory: string): Promise<ReadonlyArray<string>> => {
  const path = join(directory, `${block.file.replaceAll(/[/\\]/g, "_")}_L${block.line}.mcp.json`)
  writeFileSync(path, block.code)
  const loaded = await Effect.runPromiseExit(ServerConfig.loadFile(path, placeholderEnv))
  if (Exit.isFailure(loaded)) {
    const message = String(Cause.squash(loaded.cause)).replaceAll(path, `the block at ${where(block)}`)
    return [`${where(block)}: the config does not load: ${message}`]
  }
  const errors: Array<string> = []
  if (loaded.value.length === 0) errors.push(`${where(block)}: the config has no server`)
  for (const server of loaded.value) {
    const resolved = PoolConfig.resolve([server.pool], {
      source: block.file,
      path: `${server.name}.pool`,
      serverName: server.name
    })
    if (Result.isFailure(resolved)) errors.push(`${where(block)}: ${resolved.failure.message}`)
  }
  return errors
}

type AnswerSchema = Schema.ConstraintDecoder<unknown>

/** The schema of each route's answer (`MonitoringApi.schemas`), by route path. */
const answerSchemas: Readonly<Record<string, AnswerSchema>> = {
  "GET /status": MonitoringApi.schemas.status,
  "GET /pools": MonitoringApi.schemas.pools,
  "GET /pools/{server_name}": MonitoringApi.schemas.pool,
  "GET /alerts": MonitoringApi.schemas.alerts,
  "GET /servers": MonitoringApi.schemas.servers,
  "GET /metrics/summary": MonitoringApi.schemas.summary,
  "GET /config": MonitoringApi.schemas.config,
  "POST /pools/{server_name}/health-check": MonitoringApi.schemas.healthCheck
}

const knownRoutes = new Set(MonitoringApi.routes.map((route) => `${route.method} ${route.path}`))

/**
 * The schemas a monitoring answer may have: those of the routes named in backticks in the
 * paragraph before the block (`GET /status`), and `PoolMetrics` when that paragraph names it.
 */
const candidates = (block: Block): Result.Result<ReadonlyArray<readonly [string, AnswerSchema]>, string> => {
  const found: Array<readonly [string, AnswerSchema]> = []
  for (const match of block.before.matchAll(/`(GET|POST) (\/[^`?\s]*)/g)) {
    const route = `${match[1]} ${match[2]}`
    const schema = answerSchemas[route]
    if (!knownRoutes.has(route) || schema === undefined) {
      return Result.fail(`${where(block)}: the text before the block names ${route}, which is not a monitoring route`)
    }
    found.push([route, schema])
  }
  if (/\bPoolMetrics\b/.test(block.before)) found.push(["PoolMetrics", MonitoringApi.PoolMetricsSchema])
  if (found.length === 0) {
    return Result.fail(
      `${where(block)}: a JSON block must be a .mcp.json example or follow a paragraph naming the monitoring route it answers (e.g. \`GET /status\`)`
    )
  }
  return Result.succeed(found)
}

/** Decodes a monitoring answer with its route's schema; a field the schema does not know is an error. */
const checkAnswer = (block: Block, value: unknown): ReadonlyArray<string> => {
  const schemas = candidates(block)
  if (Result.isFailure(schemas)) return [schemas.failure]
  const failures: Array<string> = []
  for (const [name, schema] of schemas.success) {
    const decoded = Schema.decodeUnknownExit(schema)(value, { onExcessProperty: "error", errors: "all" })
    if (Exit.isSuccess(decoded)) return []
    failures.push(`as ${name}: ${String(Cause.squash(decoded.cause))}`.replaceAll("\n", "\n    "))
  }
  return [`${where(block)}: the example answer does not decode with MonitoringApi.schemas\n  ${failures.join("\n  ")}`]
}

/** Checks `json` and `jsonc` blocks. */
export const checkJsonBlocks = async (blocks: ReadonlyArray<Block>): Promise<ReadonlyArray<string>> => {
  const directory = mkdtempSync(join(tmpdir(), "mcp-pool-docs-"))
  try {
    const errors: Array<string> = []
    for (const block of blocks) {
      const parsed = parseJson(block)
      if (Result.isFailure(parsed)) {
        errors.push(parsed.failure)
        continue
      }
      errors.push(
        ...(isConfigFile(parsed.success) ? await checkConfigFile(block, directory) : checkAnswer(block, parsed.success))
      )
    }
    return errors
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------
// Shell
// ---------------------------------------------------------------------------

interface PackageJson {
  readonly name?: string
  readonly packageManager?: string
  readonly scripts?: Readonly<Record<string, string>>
}

const readPackage = (directory: string): PackageJson =>
  JSON.parse(readFileSync(join(directory, "package.json"), "utf8"))

/** The root package and every workspace package, by name. */
const workspace = (): { readonly root: PackageJson; readonly packages: ReadonlyMap<string, PackageJson> } => {
  const packages = new Map<string, PackageJson>()
  const directories = ["packages", "examples"].flatMap((parent) =>
    readdirSync(join(root, parent), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(root, parent, entry.name))
  )
  for (const directory of [...directories, join(root, "bench")]) {
    try {
      const pkg = readPackage(directory)
      if (pkg.name !== undefined) packages.set(pkg.name, pkg)
    } catch {
      // A directory without a package.json is not a workspace package.
    }
  }
  return { root: readPackage(root), packages }
}

/** pnpm's own commands: any other command word is a script of the package. */
const pnpmCommands = new Set([
  "add",
  "approve-builds",
  "audit",
  "dlx",
  "exec",
  "i",
  "install",
  "list",
  "ls",
  "outdated",
  "prune",
  "rebuild",
  "remove",
  "store",
  "up",
  "update",
  "why"
])

const flagsWithValue = new Set(["--filter", "-F", "--dir", "-C", "--workspace-root"])

/** Splits a shell text into simple commands (continuations joined; comments, `&&`, `||`, `;`, `|` split). */
const commandsOf = (code: string): ReadonlyArray<{ readonly line: number; readonly words: ReadonlyArray<string> }> => {
  const out: Array<{ line: number; words: Array<string> }> = []
  const lines = code.split("\n")
  for (let index = 0; index < lines.length; index++) {
    const start = index
    let text = lines[index] ?? ""
    while (text.endsWith("\\") && index + 1 < lines.length) text = text.slice(0, -1) + " " + (lines[++index] ?? "")
    const withoutComment = text.replace(/(^|\s)#.*$/, "")
    for (const part of withoutComment.split(/&&|\|\||;|\|/)) {
      const words = part
        .trim()
        .split(/\s+/)
        .filter((word) => word !== "")
      // Leading `VAR=value` assignments are part of the command's environment.
      while (words[0] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) words.shift()
      if (words.length > 0) out.push({ line: start, words })
    }
  }
  return out
}

/** Checks one pnpm invocation (`words` after `pnpm`): the script it runs exists where it runs. */
const checkPnpm = (
  words: ReadonlyArray<string>,
  at: string,
  space: ReturnType<typeof workspace>
): ReadonlyArray<string> => {
  const filters: Array<string> = []
  let index = 0
  while (index < words.length && (words[index] ?? "").startsWith("-")) {
    const flag = words[index] ?? ""
    const [name, inline] = flag.split("=", 2)
    if (name === "--filter" || name === "-F") {
      const value = inline ?? words[index + 1]
      if (value !== undefined) filters.push(value)
    }
    index += inline === undefined && flagsWithValue.has(name ?? "") ? 2 : 1
  }
  let command = words[index]
  if (command === undefined) return []
  if (command === "run" || command === "run-script") {
    command = words[index + 1]
    if (command === undefined) return []
  } else if (pnpmCommands.has(command)) {
    return []
  }
  if (filters.length === 0) {
    return space.root.scripts?.[command] === undefined
      ? [`${at}: \`pnpm ${command}\`: the root package.json has no script "${command}"`]
      : []
  }
  return filters.flatMap((filter) => {
    const pkg = space.packages.get(filter)
    if (pkg === undefined) return [`${at}: \`--filter ${filter}\`: no workspace package has that name`]
    return pkg.scripts?.[command] === undefined ? [`${at}: ${filter} has no script "${command}"`] : []
  })
}

/**
 * Checks the commands of shell text: every `pnpm <script>` names a script of the package it
 * runs in (the root, or the `--filter` package), and `pnpm@<version>` is the pinned one.
 */
export const checkCommands = (code: string, at: (line: number) => string): ReadonlyArray<string> => {
  const space = workspace()
  const pinned = space.root.packageManager?.replace(/^pnpm@/, "")
  const errors: Array<string> = []
  for (const { line, words } of commandsOf(code)) {
    let rest = words
    if (rest[0] === "npx") {
      rest = rest.slice(1)
      while (rest[0]?.startsWith("-")) rest = rest.slice(1)
    }
    const program = rest[0] ?? ""
    if (program !== "pnpm" && !program.startsWith("pnpm@")) continue
    const version = program.startsWith("pnpm@") ? program.slice("pnpm@".length) : undefined
    if (version !== undefined && version !== pinned) {
      errors.push(`${at(line)}: pnpm@${version}, but package.json pins pnpm@${pinned}`)
    }
    errors.push(...checkPnpm(rest.slice(1), at(line), space))
  }
  return errors
}

/** Checks `sh`/`bash`/`shell` blocks. */
export const checkShellBlocks = (blocks: ReadonlyArray<Block>): ReadonlyArray<string> =>
  blocks.flatMap((block) => checkCommands(block.code, (line) => where(block, line)))

/** Checks the commands in inline code spans of prose (`` `npx -y pnpm@12.21.0 --filter x start` ``). */
export const checkInlineCommands = (doc: Doc): ReadonlyArray<string> =>
  doc.text
    .split("\n")
    .flatMap((text, index) =>
      Array.from(text.matchAll(/`((?:npx [^`]*)?pnpm[@ ][^`]*)`/g)).flatMap((match) =>
        checkCommands(match[1] ?? "", () => `${doc.file}:${index + 1}`)
      )
    )

// ---------------------------------------------------------------------------
// Environment variables
// ---------------------------------------------------------------------------

const knownVariables = new Set(Object.values(PoolConfig.envVariables))

/**
 * Every pool variable (`MCP_POOL_*`, `MCP_CIRCUIT_BREAKER_*`) a document names, anywhere in
 * it (shell blocks, tables, prose), is one that `PoolConfig` reads. A name ending in `_`
 * (`MCP_POOL_*`) stands for the family and is not checked.
 */
export const checkVariables = (doc: Doc): ReadonlyArray<string> =>
  doc.text.split("\n").flatMap((text, index) =>
    Array.from(text.matchAll(/\bMCP_(?:POOL|CIRCUIT_BREAKER)_[A-Z0-9_]*/g))
      .map((match) => match[0])
      .filter((name) => !name.endsWith("_") && !knownVariables.has(name))
      .map((name) => `${doc.file}:${index + 1}: ${name} is not a variable of PoolConfig.envVariables`)
  )

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

const routePattern = (path: string): RegExp =>
  new RegExp(`^${path.replaceAll(/\{[^}]+\}/g, "[^/]+").replaceAll("/", "\\/")}$`)

/**
 * Checks `http` blocks: every request line (`GET /api/v1/mcp/pools/fx HTTP/1.1`) is a route of
 * the monitoring API under the default prefix, with its method.
 */
export const checkHttpBlocks = (blocks: ReadonlyArray<Block>): ReadonlyArray<string> =>
  blocks.flatMap((block) =>
    block.code.split("\n").flatMap((text, line) => {
      const request = /^([A-Z]+) (\S+)/.exec(text)
      if (request === null) return []
      const [, method, target] = request
      const path = new URL(target ?? "", "http://localhost").pathname
      const prefix = MonitoringApi.defaultPrefix
      const below = path.startsWith(prefix) ? path.slice(prefix.length) : undefined
      const found = MonitoringApi.routes.some(
        (route) => route.method === method && below !== undefined && routePattern(route.path).test(below)
      )
      return found ? [] : [`${where(block, line)}: ${method} ${path} is not a route of the monitoring API`]
    })
  )

// ---------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replaceAll(/[`*_]/g, "")
    .replaceAll(/[^\p{L}\p{N} -]/gu, "")
    .replaceAll(" ", "-")

const anchorsOf = (text: string): ReadonlySet<string> =>
  new Set(
    text
      .replaceAll(/^(`{3,}|~{3,})[\s\S]*?^\1/gm, "")
      .split("\n")
      .flatMap((line) => {
        const heading = /^#{1,6}\s+(.*)$/.exec(line)
        return heading === null ? [] : [slug(heading[1] ?? "")]
      })
  )

/**
 * Every relative link of a document (`[x](operations.md#alerts)`, `[y](../examples/a/src/main.ts)`)
 * points to a file that exists, and an anchor into a markdown file to one of its headings.
 */
export const checkLinks = (doc: Doc): ReadonlyArray<string> => {
  const directory = dirname(join(root, doc.file))
  const prose = doc.text.replaceAll(/^(`{3,}|~{3,})[\s\S]*?^\1/gm, (block) => block.replaceAll(/[^\n]/g, " "))
  return prose.split("\n").flatMap((text, index) =>
    Array.from(text.matchAll(/\]\(([^)\s]+)\)/g)).flatMap((match) => {
      const target = match[1] ?? ""
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return []
      const [path = "", anchor] = target.split("#", 2)
      const file = path === "" ? join(root, doc.file) : resolve(directory, decodeURIComponent(path))
      const at = `${doc.file}:${index + 1}`
      if (!existsSync(file)) return [`${at}: the link ${target} points to a file that does not exist`]
      if (anchor === undefined || !file.endsWith(".md")) return []
      return anchorsOf(readFileSync(file, "utf8")).has(anchor)
        ? []
        : [`${at}: the link ${target} names an anchor that is not a heading of ${relative(root, file)}`]
    })
  )
}
