/**
 * Row 6: JS heap the manager keeps per pool (100 pools with default settings but
 * `minConnections: 0`, so no process starts), and per open stdio connection against raw SDK clients.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { createMcpConnectionManager } from "@mcp-pool/core"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { alternate, settledHeap } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatBytes, formatRatio, mean, median, ratio, round } from "../stats.ts"
import { connectMany, garbageCollector } from "../subjects.ts"

const POOLS = 100
const CONNECTIONS = 20
const ROUNDS = 3
const CONNECTION_ROUNDS = 2
const TARGET_BYTES_PER_POOL = 100 * 1024

const managerWith = (
  pools: number,
  minConnections: number,
  maxConnections = 10
): Promise<MCPConnectionManagerPromise> => {
  const launch = fixtureStdioConfig()
  const servers = Object.fromEntries(
    Array.from({ length: pools }, (_, i) => [`fx${i}`, { command: launch.command, args: [...launch.args] }])
  )
  return createMcpConnectionManager({ servers, defaults: { minConnections, maxConnections } })
}

/** The heap a value built by `open` keeps alive while it is open, in bytes. */
const heapOf = async <A>(
  gc: () => void,
  open: () => Promise<A>,
  close: (value: A) => Promise<unknown>
): Promise<number> => {
  const before = await settledHeap(gc)
  const value = await open()
  try {
    return (await settledHeap(gc)) - before
  } finally {
    await close(value)
  }
}

const close = (manager: MCPConnectionManagerPromise) => manager.close()

const closeAll = (clients: ReadonlyArray<Client>) => Promise.allSettled(clients.map((client) => client.close()))

export const row: RowDefinition = {
  id: 6,
  name: "memory (JS heap)",
  target: `< ${formatBytes(TARGET_BYTES_PER_POOL)} of heap per pool (defaults, no connection)`,
  run: async () => {
    const gc = garbageCollector()
    // Load and initialise everything once, so that no round pays for first use.
    await heapOf(gc, () => managerWith(2, 0), close)
    const pools = await alternate(ROUNDS, {
      one: () => heapOf(gc, () => managerWith(1, 0), close),
      many: () => heapOf(gc, () => managerWith(POOLS + 1, 0), close)
    })
    const onePool = median(pools.one)
    const perPool = (median(pools.many) - onePool) / POOLS
    const poolPass = perPool < TARGET_BYTES_PER_POOL

    const connections = await alternate(CONNECTION_ROUNDS, {
      raw: () => heapOf(gc, () => connectMany(CONNECTIONS), closeAll),
      pooled: () => heapOf(gc, () => managerWith(1, CONNECTIONS, CONNECTIONS), close)
    })
    const rawHeap = mean(connections.raw)
    const pooledHeap = mean(connections.pooled)
    const rawPerConnection = rawHeap / CONNECTIONS
    const pooledPerConnection = (pooledHeap - onePool) / CONNECTIONS
    const connectionRatio = ratio(pooledPerConnection, rawPerConnection)
    return {
      baseline: {
        label: `manager with 1 pool; ${CONNECTIONS} raw SDK clients`,
        managerWithOnePoolBytes: Math.round(onePool),
        rawBytesPerConnection: Math.round(rawPerConnection)
      },
      subject: {
        label: `manager with ${POOLS + 1} pools (minConnections 0); a pool of ${CONNECTIONS} connections`,
        managerWithManyPoolsBytes: Math.round(median(pools.many)),
        bytesPerPool: Math.round(perPool),
        pooledBytesPerConnection: Math.round(pooledPerConnection)
      },
      ratio: connectionRatio === null ? null : round(connectionRatio, 3),
      ratioOf: "pooled heap per connection / raw client heap per connection",
      target: row.target,
      pass: poolPass,
      checks: [
        check(
          "heap per pool",
          `1 pool: ${formatBytes(onePool)}`,
          formatBytes(perPool),
          "",
          `< ${formatBytes(TARGET_BYTES_PER_POOL)}`,
          poolPass
        ),
        check(
          "heap per stdio connection",
          formatBytes(rawPerConnection),
          formatBytes(pooledPerConnection),
          formatRatio(connectionRatio)
        )
      ],
      notes: [
        `heap per pool: (manager with ${POOLS + 1} pools - manager with 1 pool) / ${POOLS}, median of ${ROUNDS} alternating rounds`,
        `heap per connection: raw = ${CONNECTIONS} raw clients / ${CONNECTIONS}; pooled = (pool of ${CONNECTIONS} - manager with 1 empty pool) / ${CONNECTIONS}; mean of ${CONNECTION_ROUNDS} alternating rounds`
      ]
    }
  }
}
