/**
 * Removing known secrets from what libraries and servers say: texts, thrown values (copied,
 * with their cause chains) and JSON-RPC error data, before any of it reaches an error or a log.
 */
import * as Predicate from "effect/Predicate"
import { REDACTED } from "./redact.js"

/** Replaces every known secret in a text. */
export type Scrub = (text: string) => string

// Very short values would blank out ordinary words; they are not credentials anyway.
const MIN_SECRET_LENGTH = 4

/** The forms a secret may take in a message: as is, percent-encoded, form-encoded, JSON-escaped. */
const forms = (secret: string): ReadonlyArray<string> => [
  secret,
  encodeURIComponent(secret),
  new URLSearchParams({ s: secret }).toString().slice(2),
  JSON.stringify(secret).slice(1, -1)
]

/**
 * A scrubber of texts: each exact `replacements` pair first (a whole URL by its redacted
 * form), then every secret, in every form, by `[REDACTED]`.
 */
export const makeScrub = (
  secrets: Iterable<string>,
  replacements: ReadonlyArray<readonly [string, string]> = []
): Scrub => {
  const all = new Set<string>()
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue
    for (const form of forms(secret)) all.add(form)
  }
  if (all.size === 0 && replacements.length === 0) return (text) => text
  // Longest first, so that a secret containing another is replaced whole.
  const ordered = Array.from(all).toSorted((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const [raw, redacted] of replacements) if (out.includes(raw)) out = out.replaceAll(raw, redacted)
    for (const secret of ordered) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED)
    return out
  }
}

const MAX_DEPTH = 8

type Seen = WeakMap<object, unknown>

const define = (target: object, key: PropertyKey, value: unknown, enumerable: boolean): void => {
  Object.defineProperty(target, key, { value, writable: true, enumerable, configurable: true })
}

const copyData = (value: unknown, scrub: Scrub, depth: number, seen: Seen): unknown => {
  if (typeof value === "string") return scrub(value)
  if (typeof value === "function") return undefined
  if (typeof value !== "object" || value === null) return value
  const known = seen.get(value)
  if (known !== undefined) return known
  if (depth > MAX_DEPTH) return REDACTED
  if (value instanceof Error) return copyError(value, scrub, depth, seen)
  if (Array.isArray(value)) {
    const out: Array<unknown> = []
    seen.set(value, out)
    for (const item of value) out.push(copyData(item, scrub, depth + 1, seen))
    return out
  }
  const out: Record<string, unknown> = {}
  seen.set(value, out)
  for (const [key, item] of Object.entries(value)) define(out, scrub(key), copyData(item, scrub, depth + 1, seen), true)
  return out
}

/**
 * A plain `Error` standing for `error`: the same name, message, stack, code and other own
 * fields, and the same cause chain, all scrubbed. (A copy of the class could run getters that
 * read private state the copy lacks; the name still tells what it was.)
 */
const copyError = (error: Error, scrub: Scrub, depth: number, seen: Seen): Error => {
  const out = new Error(scrub(error.message))
  seen.set(error, out)
  define(out, "name", scrub(error.name), false)
  define(out, "stack", error.stack === undefined ? undefined : scrub(error.stack), false)
  for (const [key, item] of Object.entries(error)) {
    if (key !== "cause") define(out, scrub(key), copyData(item, scrub, depth + 1, seen), true)
  }
  const code: unknown = Predicate.hasProperty(error, "code") ? error.code : undefined
  if (code !== undefined && !Object.hasOwn(out, "code"))
    define(out, "code", copyData(code, scrub, depth + 1, seen), false)
  if (error instanceof AggregateError) {
    define(out, "errors", copyData(Array.from(error.errors), scrub, depth + 1, seen), false)
  }
  if ("cause" in error) define(out, "cause", copyData(error.cause, scrub, depth + 1, seen), false)
  return out
}

/**
 * A copy of a thrown value with every secret scrubbed, deeply: an `Error` becomes a plain
 * `Error` with the same name, message, stack, code, fields and (copied) cause chain.
 */
export const scrubCause = (cause: unknown, scrub: Scrub): unknown => copyData(cause, scrub, 0, new WeakMap())

/** A deep copy of JSON-RPC error `data` (or any value) with every string scrubbed. */
export const scrubData = (data: unknown, scrub: Scrub): unknown => copyData(data, scrub, 0, new WeakMap())
