/**
 * JSON with comments and trailing commas (as VS Code writes its `mcp.json`), parsed into
 * plain values where every key, `__proto__` included, is an own property as `JSON.parse` makes it.
 */
import * as Jsonc from "jsonc-parser"
import * as Result from "effect/Result"

const lineColumn = (text: string, offset: number): string => {
  const before = text.slice(0, offset)
  return `line ${before.split("\n").length}, column ${offset - before.lastIndexOf("\n")}`
}

// Assignment would set the prototype for a key `__proto__`; a defined property is a key like any other.
const define = (target: Record<string, unknown>, key: string, value: unknown): void => {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true })
}

const toValue = (node: Jsonc.Node): unknown => {
  switch (node.type) {
    case "object": {
      const out: Record<string, unknown> = {}
      for (const property of node.children ?? []) {
        const [key, value] = property.children ?? []
        if (key !== undefined && typeof key.value === "string") {
          define(out, key.value, value === undefined ? undefined : toValue(value))
        }
      }
      return out
    }
    case "array":
      return (node.children ?? []).map(toValue)
    default:
      return node.value
  }
}

/**
 * Parses a text of JSON with comments and trailing commas; fails with the first syntax
 * error, its line and column.
 */
export const parse = (text: string): Result.Result<unknown, string> => {
  const errors: Array<Jsonc.ParseError> = []
  const tree = Jsonc.parseTree(text, errors, { allowTrailingComma: true })
  const first = errors[0]
  if (first !== undefined) {
    return Result.fail(`invalid JSON at ${lineColumn(text, first.offset)}: ${Jsonc.printParseErrorCode(first.error)}`)
  }
  return Result.succeed(tree === undefined ? undefined : toValue(tree))
}
