/**
 * The one way a schema issue of the configuration becomes an `MCPConfigError`: the first
 * failure, the source and JSON path it is at, the value as written (redacted) and the rule.
 */
import type * as SchemaAST from "effect/SchemaAST"
import type * as SchemaIssue from "effect/SchemaIssue"
import { MCPConfigError } from "../Errors.js"
import { redactAt } from "./redact.js"

/** A path into the decoded input, as schema issues give it. */
export type Path = ReadonlyArray<PropertyKey>

/** How to name where a failure is: the source, the JSON path and the server, from its path. */
export interface Location {
  readonly source: (path: Path) => string
  readonly path: (path: Path) => string
  readonly serverName: (path: Path) => string | undefined
  /** Whether to show the value at the root (a whole file is not worth quoting). */
  readonly showRoot?: boolean | undefined
}

// A key shows as `.key` unless it would read ambiguously; then as `["key"]`.
const plainKey = /^[^.[\]\s"'`]+$/

const segment = (key: PropertyKey): string =>
  typeof key === "number"
    ? `[${key}]`
    : typeof key === "string" && plainKey.test(key)
      ? `.${key}`
      : `[${JSON.stringify(String(key))}]`

/** A JSON path such as `mcpServers.files.args[1]`, under `root` (`""` for none). */
export const formatPath = (root: string, path: Path): string => {
  const text = root + path.map(segment).join("")
  return text.startsWith(".") ? text.slice(1) : text
}

/**
 * A location in one source (a file, `options.servers`, `configureServerPool`), under the JSON
 * path `root`. `serverAt` is the index in the path of the server name, when the value holds
 * servers; otherwise `serverName` names the server the whole value is about.
 */
export const inSource = (options: {
  readonly source: string
  readonly root: string
  readonly serverName?: string | undefined
  readonly serverAt?: number | undefined
  readonly showRoot?: boolean | undefined
}): Location => ({
  source: () => options.source,
  path: (path) => formatPath(options.root, path),
  serverName: (path) => {
    if (options.serverAt === undefined) return options.serverName
    const key = path[options.serverAt]
    return key === undefined ? undefined : String(key)
  },
  showRoot: options.showRoot
})

const textOf = (annotations: Readonly<Record<string, unknown>> | undefined, key: string): string | undefined => {
  const text = annotations?.[key]
  return typeof text === "string" ? text : undefined
}

const messageOf = (annotations: Readonly<Record<string, unknown>> | undefined): string | undefined =>
  textOf(annotations, "message")

/** The rule of a union that matched no member: its own message, else its first member's. */
const unionRule = (ast: SchemaAST.Union): string => {
  const own = messageOf(ast.annotations)
  if (own !== undefined) return own
  for (const member of ast.types) {
    const message = messageOf(member.annotations)
    if (message !== undefined) return message
  }
  return "has the wrong type"
}

interface Leaf {
  readonly path: Path
  readonly rule: string
}

/** The first failure of an issue tree, with its full path and the rule it broke. */
const firstLeaf = (issue: SchemaIssue.Issue, path: Path): Leaf => {
  switch (issue._tag) {
    case "Pointer":
      return firstLeaf(issue.issue, [...path, ...issue.path])
    case "Encoding":
      return firstLeaf(issue.issue, path)
    case "Composite":
      return firstLeaf(issue.issues[0], path)
    case "AnyOf": {
      const first = issue.issues[0]
      return first === undefined ? { path, rule: unionRule(issue.ast) } : firstLeaf(first, path)
    }
    case "Filter": {
      const inner = issue.issue
      if (inner._tag !== "InvalidValue") return firstLeaf(inner, path)
      const filter = issue.filter.annotations
      const rule = messageOf(inner.annotations) ?? messageOf(filter) ?? textOf(filter, "expected")
      return { path, rule: rule ?? "is invalid" }
    }
    case "InvalidType":
      return { path, rule: messageOf(issue.ast.annotations) ?? `must be a ${issue.ast._tag.toLowerCase()}` }
    case "InvalidValue":
    case "Forbidden":
      return { path, rule: messageOf(issue.annotations) ?? "is invalid" }
    case "MissingKey":
      return { path, rule: textOf(issue.annotations, "messageMissingKey") ?? "is missing" }
    case "UnexpectedKey":
      return { path, rule: textOf(issue.ast.annotations, "messageUnexpectedKey") ?? "is not allowed here" }
    case "OneOf":
      return { path, rule: "matches more than one of the allowed shapes" }
  }
}

/**
 * The `MCPConfigError` of a failed decoding of `input`: where the first failure is, the value
 * there as written (with every secret redacted), and the rule it broke.
 */
export const toConfigError = (issue: SchemaIssue.Issue, input: unknown, location: Location): MCPConfigError => {
  const leaf = firstLeaf(issue, [])
  const showValue = leaf.path.length > 0 || location.showRoot !== false
  return new MCPConfigError({
    serverName: location.serverName(leaf.path),
    source: location.source(leaf.path),
    path: location.path(leaf.path),
    value: showValue ? redactAt(input, leaf.path) : undefined,
    rule: leaf.rule
  })
}
