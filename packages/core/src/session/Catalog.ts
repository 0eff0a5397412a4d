/**
 * A server's catalog: its tools, prompts, resources and resource templates, listed once and
 * shared by every caller and connection until the server says a list changed, a connection is
 * replaced, or (optionally) a time-to-live passes. One request at a time fills a list; callers
 * that come meanwhile wait for it.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { Tool } from "@modelcontextprotocol/sdk/types.js"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"

/** The lists a catalog keeps. */
export type ListKind = "tools" | "prompts" | "resources" | "resourceTemplates"

/** What a `list_changed` notification of each kind makes stale. */
export const changedLists: Readonly<Record<"tools" | "prompts" | "resources", ReadonlyArray<ListKind>>> = {
  tools: ["tools"],
  prompts: ["prompts"],
  resources: ["resources", "resourceTemplates"]
}

/**
 * How the catalog answered the list calls of a server, counted since it started.
 *
 * @since 0.1.0
 * @category models
 */
export interface CatalogLookups {
  /** Answered from the catalog. */
  hit: number
  /** Answered by reading the server (the call started the read). */
  fill: number
  /** Answered by a read another call had started. */
  shared: number
}

interface Entry {
  /** The kept answer as JSON text: each caller gets its own copy, parsed from it. */
  value: string | undefined
  /** Clock time (ms) of the fill that gave `value`. */
  filledAt: number
  /** Raised by every invalidation: a fill started before one is not kept. */
  version: number
  filling: Deferred.Deferred<string, unknown> | undefined
}

/** A server's shared lists. */
export class Catalog {
  private readonly entries = new Map<ListKind, Entry>()
  /** Raised whenever the tools list is replaced: connections primed with an older one are primed again. */
  private toolsVersion = 0
  private tools: ReadonlyArray<Tool> | undefined = undefined
  private readonly primed = new WeakMap<Client, number>()
  /** The list calls answered so far: from the catalog, by a fill they started, or by one they waited for. */
  readonly lookups: CatalogLookups = { hit: 0, fill: 0, shared: 0 }

  private entry(kind: ListKind): Entry {
    let entry = this.entries.get(kind)
    if (entry === undefined) {
      entry = { value: undefined, filledAt: 0, version: 0, filling: undefined }
      this.entries.set(kind, entry)
    }
    return entry
  }

  /**
   * The list of `kind`: the kept one while it is fresh (`ttlMs` 0: until invalidated), else the
   * answer of the one fill in flight, started with `fork` so that a caller who stops waiting
   * does not stop it for the others. Each caller gets its own copy (parsed from the kept JSON).
   */
  list<A, E>(options: {
    readonly kind: ListKind
    readonly ttlMs: number
    readonly now: number
    readonly fill: Effect.Effect<A, E>
    readonly fork: <X, Y>(effect: Effect.Effect<X, Y>) => Fiber.Fiber<X, Y>
  }): Effect.Effect<A, E> {
    return Effect.suspend(() => {
      const entry = this.entry(options.kind)
      const fresh = entry.value !== undefined && (options.ttlMs === 0 || options.now - entry.filledAt < options.ttlMs)
      if (fresh) {
        this.lookups.hit++
        return Effect.sync(() => JSON.parse(entry.value ?? "null") as A)
      }
      if (entry.filling === undefined) this.lookups.fill++
      else this.lookups.shared++
      const deferred = entry.filling ?? this.startFill(entry, options)
      return Effect.map(Deferred.await(deferred as Deferred.Deferred<string, E>), (text) => JSON.parse(text) as A)
    })
  }

  private startFill<A, E>(
    entry: Entry,
    options: {
      readonly kind: ListKind
      readonly now: number
      readonly fill: Effect.Effect<A, E>
      readonly fork: <X, Y>(effect: Effect.Effect<X, Y>) => Fiber.Fiber<X, Y>
    }
  ): Deferred.Deferred<string, E> {
    const deferred = Deferred.makeUnsafe<string, E>()
    const version = entry.version
    entry.filling = deferred as Deferred.Deferred<string, unknown>
    // An answer is plain JSON (it came as JSON-RPC): kept as text, copied by parsing it.
    const fiber = options.fork(Effect.map(options.fill, (value) => JSON.stringify(value)))
    fiber.addObserver((exit) => {
      if (entry.filling === (deferred as Deferred.Deferred<string, unknown>)) entry.filling = undefined
      // A list that changed while it was being read is handed to those who waited, not kept.
      if (Exit.isSuccess(exit) && entry.version === version) {
        entry.value = exit.value
        entry.filledAt = options.now
        if (options.kind === "tools") this.keepTools(JSON.parse(exit.value))
      }
      Deferred.doneUnsafe(deferred, exit)
    })
    return deferred
  }

  private keepTools(value: unknown): void {
    const tools = (value as { readonly tools?: unknown }).tools
    if (!Array.isArray(tools)) return
    this.tools = tools as ReadonlyArray<Tool>
    this.toolsVersion++
  }

  /** Forgets the lists of these kinds (all of them when none are given). */
  invalidate(kinds: ReadonlyArray<ListKind> = ["tools", "prompts", "resources", "resourceTemplates"]): void {
    for (const kind of kinds) {
      const entry = this.entry(kind)
      entry.version++
      entry.value = undefined
      entry.filling = undefined
    }
  }

  /**
   * Gives `client` the output schemas of the kept tools, as its own `listTools` would have, so
   * that it validates `callTool` results on a connection that never listed the tools itself.
   * Done once per client and list; a client of an SDK without that method is left alone.
   */
  prime(client: Client): void {
    const tools = this.tools
    if (tools === undefined || this.primed.get(client) === this.toolsVersion) return
    this.primed.set(client, this.toolsVersion)
    const cache: unknown = Reflect.get(client, "cacheToolMetadata")
    if (typeof cache === "function") Reflect.apply(cache, client, [tools])
  }
}
