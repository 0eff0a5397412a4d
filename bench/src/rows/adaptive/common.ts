/** What the parts of row 11 share: the managers under test, their limits, and the shape of a part. */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { createMcpConnectionManager, type MCPConnectionManagerPromise, type MCPConnectionPool } from "@mcp-pool/core"
import { alternate, type Throughput } from "../../measure.ts"
import { type Check } from "../../row.ts"
import { formatRate, percentile } from "../../stats.ts"
import { connectRaw, type Launch, pinnedLaunch, SERVER } from "../../subjects.ts"

/** The managers under test: only the server and `maxConcurrentRequestsPerConnection: "auto"` are given. */
export const defaultManager = (launch: Launch): Promise<MCPConnectionManagerPromise> =>
  createMcpConnectionManager({
    servers: { [SERVER]: { command: launch.command, args: [...launch.args] } },
    defaults: { maxConcurrentRequestsPerConnection: "auto" }
  })

/**
 * Runs `body` with a manager on its defaults and one raw SDK client, every server pinned to the
 * same core (see pinnedLaunch) so that only the client side differs; both closed after.
 */
export const withPinnedPoolAndClient = async <A>(
  body: (manager: MCPConnectionManagerPromise, client: Client, launch: Launch) => Promise<A>
): Promise<A> => {
  let manager: MCPConnectionManagerPromise | undefined
  let client: Client | undefined
  try {
    const launch = pinnedLaunch()
    manager = await defaultManager(launch)
    client = await connectRaw(launch)
    return await body(manager, client, launch)
  } finally {
    await Promise.allSettled([manager?.close(), client?.close()])
  }
}

/** The `MCP_POOL_*` variables set in this environment: they would change the defaults measured. */
export const poolVariables = (): ReadonlyArray<string> =>
  Object.keys(process.env).filter((key) => key.startsWith("MCP_POOL_"))

/** A connection's `concurrencyLimit`. */
export const limitOf = (connection: { readonly concurrencyLimit: number }): number => connection.concurrencyLimit

/** Each open connection's limit by connection id, in id order. */
export const limitsOf = (
  pool: MCPConnectionPool.MCPConnectionPool
): ReadonlyArray<readonly [number, number | undefined]> =>
  pool
    .snapshot()
    .connections.filter((info) => info.alive)
    .map((info) => [info.id, limitOf(info)] as const)
    .toSorted(([a], [b]) => a - b)

export const reported = (limits: ReadonlyArray<readonly [number, number | undefined]>): boolean =>
  limits.every(([, limit]) => limit !== undefined)

/** `3 conn.: 12, 9, 1`, or `3 conn.: limit n/a` while the pool does not report limits. */
export const formatLimits = (limits: ReadonlyArray<readonly [number, number | undefined]>): string => {
  const values = limits.map(([, limit]) => limit)
  const shown =
    values.length === 0
      ? "-"
      : !reported(limits)
        ? "limit n/a"
        : values.every((limit) => limit === values[0])
          ? `${values[0]} each`
          : values.join(", ")
  return `${limits.length} conn.: ${shown}`
}

/** The limits as `results.json` records them. */
export const limitsJson = (limits: ReadonlyArray<readonly [number, number | undefined]>) =>
  limits.map(([id, limit]) => ({ id, limit: limit ?? null }))

/** The rates of the middle half of a side's rounds, as `71,000-84,000 calls/s` (as in row 2). */
export const middleHalf = (rounds: ReadonlyArray<Throughput>): string => {
  const rates = rounds.map((t) => t.callsPerSecond)
  return `${Math.round(percentile(rates, 25)).toLocaleString("en-US")}-${formatRate(percentile(rates, 75))}`
}

/**
 * `alternate`, round by round, for up to `rounds` rounds: it stops once `budgetMs` have passed
 * and at least `minRounds` are done. Each round rotates which subject goes first, as `alternate` does.
 */
export const alternateWithin = async <K extends string, T>(
  rounds: number,
  minRounds: number,
  budgetMs: number,
  subjects: Readonly<Record<K, () => Promise<T>>>
): Promise<Record<K, Array<T>>> => {
  const keys = Object.keys(subjects) as Array<K>
  const results = Object.fromEntries(keys.map((key) => [key, [] as Array<T>])) as Record<K, Array<T>>
  const started = performance.now()
  for (let index = 0; index < rounds; index++) {
    if (index >= minRounds && performance.now() - started >= budgetMs) break
    const order = keys.map((_, i) => keys[(i + index) % keys.length]).filter((key): key is K => key !== undefined)
    const once = await alternate(1, Object.fromEntries(order.map((key) => [key, subjects[key]])) as typeof subjects)
    for (const key of keys) results[key].push(...once[key])
  }
  return results
}

export const failedIn = (rounds: ReadonlyArray<Throughput>): number => rounds.reduce((sum, t) => sum + t.failed, 0)

/** What one measurement adds to the row. */
export interface Part {
  readonly baseline: Readonly<Record<string, unknown>>
  readonly subject: Readonly<Record<string, unknown>>
  readonly checks: ReadonlyArray<Check>
  readonly notes: ReadonlyArray<string>
}
