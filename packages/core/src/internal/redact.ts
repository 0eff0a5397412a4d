/**
 * What may be shown of a server's configuration: env and header values, URL credentials and
 * query values, and secret-looking arguments become `[REDACTED]`, in decoded and raw entries.
 */
import * as Predicate from "effect/Predicate"

/** What a secret is replaced with. */
export const REDACTED = "[REDACTED]"

const secretWord = "[a-z0-9-]*(?:token|key|secret|password|passwd|auth|credential)[a-z0-9-]*"
const secretFlag = new RegExp(`^--?${secretWord}$`, "i")
const secretAssignment = new RegExp(`^(--?${secretWord}=)(.+)$`, "i")

/** A URL with its user, password and every query value replaced; an unparsable URL whole. */
export const redactUrl = (url: string): string => {
  const parsed = URL.parse(url)
  if (parsed === null) return REDACTED
  if (parsed.username !== "") parsed.username = REDACTED
  if (parsed.password !== "") parsed.password = REDACTED
  for (const key of Array.from(parsed.searchParams.keys())) parsed.searchParams.set(key, REDACTED)
  return parsed.toString().replaceAll(encodeURIComponent(REDACTED), REDACTED)
}

/** Command-line arguments with the value of `--token=x` and the argument after `--token` replaced. */
export const redactArgs = <A>(args: ReadonlyArray<A>): Array<A | string> =>
  args.map((arg, i) => {
    if (typeof arg !== "string") return arg
    const assignment = secretAssignment.exec(arg)
    if (assignment !== null) return `${assignment[1]}${REDACTED}`
    const previous = args[i - 1]
    return typeof previous === "string" && secretFlag.test(previous) ? REDACTED : arg
  })

/** A record with its keys kept and every value replaced. */
export const redactValues = (record: Readonly<Record<string, unknown>>): Record<string, string> =>
  Object.fromEntries(Object.keys(record).map((key) => [key, REDACTED]))

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  Predicate.isObject(value) && !Array.isArray(value)

/** Everything under an `env` or `headers` key: its keys may show, its values never. */
const redactSecrets = (value: unknown): unknown => (isRecord(value) ? redactValues(value) : REDACTED)

const MAX_DEPTH = 16

/**
 * Any part of a configuration as written (a file, the servers object, one entry, valid or
 * not) with every secret replaced: values under `env` and `headers`, `url` credentials and
 * query values, secret `args`.
 */
export const redactRaw = (value: unknown, key?: PropertyKey, depth = 0): unknown => {
  if (key === "env" || key === "headers") return redactSecrets(value)
  if (key === "url" && typeof value === "string") return redactUrl(value)
  if (depth > MAX_DEPTH) return REDACTED
  if (Array.isArray(value)) {
    const items = key === "args" ? redactArgs(value) : value
    return items.map((item) => redactRaw(item, undefined, depth + 1))
  }
  if (!isRecord(value)) return value
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactRaw(v, k, depth + 1)]))
}

/** The value at a path of a raw configuration (own properties only), or `undefined`. */
export const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  let current: unknown = root
  for (const key of path) {
    if (typeof current !== "object" || current === null || !Object.hasOwn(current, key)) return undefined
    current = (current as Readonly<Record<PropertyKey, unknown>>)[key]
  }
  return current
}

/**
 * The value at a path of a raw configuration, as an error may show it: under `env` or
 * `headers` only keys, a `url` without credentials or query values, an argument unless a
 * secret, anything else with its own secrets redacted.
 */
export const redactAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown => {
  const value = valueAt(root, path)
  if (path.some((key) => key === "env" || key === "headers")) return redactSecrets(value)
  const last = path.at(-1)
  if (typeof last === "number" && path.at(-2) === "args") {
    const args = valueAt(root, path.slice(0, -1))
    return Array.isArray(args) ? redactArgs(args)[last] : value
  }
  return redactRaw(value, last)
}
