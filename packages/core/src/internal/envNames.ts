/**
 * The names of the environment variables the current `ConfigProvider` holds under a prefix
 * (`MCP_POOL_`...), and the closest known name to a misspelt one.
 */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"

/** The most names walked, so that an odd provider cannot make the walk long. */
const MAX_NODES = 500

/**
 * The names of the values under `prefix` (e.g. `["MCP", "POOL"]`) of the current provider. The
 * environment's provider splits names on `_` into a tree; a provider without such a tree
 * (a JSON document, say) answers none. A provider that cannot be read answers none too.
 */
export const namesUnder = (prefix: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>> =>
  Effect.gen(function* () {
    const provider = yield* ConfigProvider.ConfigProvider
    const names: Array<string> = []
    const pending: Array<ReadonlyArray<string>> = [prefix]
    let visited = 0
    for (let path = pending.pop(); path !== undefined && visited < MAX_NODES; path = pending.pop()) {
      visited++
      const node = yield* Effect.orElseSucceed(provider.load(path), () => undefined)
      if (node === undefined) continue
      if (node._tag === "Value" || node.value !== undefined) names.push(path.join("_"))
      if (node._tag === "Record") for (const key of node.keys) pending.push([...path, key])
    }
    return names.toSorted()
  })

/** The edit distance between two names (insertions, deletions, substitutions). */
const distance = (a: string, b: string): number => {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

/** The known name closest to `name`, if one is close enough to be a likely typo. */
export const closest = (name: string, known: ReadonlyArray<string>): string | undefined => {
  let best: { readonly name: string; readonly distance: number } | undefined
  for (const candidate of known) {
    const d = distance(name, candidate)
    if (best === undefined || d < best.distance) best = { name: candidate, distance: d }
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(name.length / 4)) ? best.name : undefined
}
