/**
 * Row 5: the pool hit rate under steady load (16 in flight) on a warm pool of 4, next to a
 * cold pool (min 0, max 4) serving the same calls in alternating chunks; from `manager.pool()`.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { alternate, closedLoop } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, formatPercent, formatRatio, ratio, round, summarize } from "../stats.ts"
import { echoParams, fixtureManager, SERVER } from "../subjects.ts"

const CALLS = 5000
const CHUNKS = 10
const IN_FLIGHT = 16
const SIZE = 4
const TARGET = 0.995

interface Counts {
  readonly hits: number
  readonly misses: number
}

const counts = async (manager: MCPConnectionManagerPromise): Promise<Counts> => {
  const details = await manager.pool(SERVER)
  return { hits: details.pool_hits, misses: details.pool_misses }
}

const hitRate = (before: Counts, after: Counts) => {
  const hits = after.hits - before.hits
  const misses = after.misses - before.misses
  return { hits, misses, hitRate: hits + misses === 0 ? 0 : hits / (hits + misses) }
}

export const row: RowDefinition = {
  id: 5,
  name: "hit rate under steady load",
  target: `warm pool hit rate >= ${formatPercent(TARGET)}`,
  run: async () => {
    let warm: MCPConnectionManagerPromise | undefined
    let cold: MCPConnectionManagerPromise | undefined
    try {
      warm = await fixtureManager({ minConnections: SIZE, maxConnections: SIZE })
      cold = await fixtureManager({ minConnections: 0, maxConnections: SIZE })
      const warmTools = warm.tools(SERVER)
      const coldTools = cold.tools(SERVER)
      // Warm-up of the warm pool only: every connection has been lent before counting starts.
      await closedLoop(() => warmTools.callTool(echoParams), IN_FLIGHT, 500)
      const warmBefore = await counts(warm)
      const coldBefore = await counts(cold)
      const perChunk = CALLS / CHUNKS
      const rounds = await alternate(CHUNKS, {
        cold: () => closedLoop(() => coldTools.callTool(echoParams), IN_FLIGHT, perChunk),
        warm: () => closedLoop(() => warmTools.callTool(echoParams), IN_FLIGHT, perChunk)
      })
      const warmRate = hitRate(warmBefore, await counts(warm))
      const coldRate = hitRate(coldBefore, await counts(cold))
      const warmLatency = summarize(rounds.warm.flatMap((t) => t.latencies))
      const coldLatency = summarize(rounds.cold.flatMap((t) => t.latencies))
      const failed = [...rounds.warm, ...rounds.cold].reduce((sum, t) => sum + t.failed, 0)
      const pass = warmRate.hitRate >= TARGET && failed === 0
      const rateRatio = ratio(warmRate.hitRate, coldRate.hitRate)
      return {
        baseline: {
          label: `cold pool (min 0, max ${SIZE}): its first ${CALLS} calls`,
          ...coldRate,
          latency: coldLatency
        },
        subject: {
          label: `warm pool (min ${SIZE}, max ${SIZE}) after 500 warm-up calls: ${CALLS} calls`,
          ...warmRate,
          latency: warmLatency
        },
        ratioOf: "warm hit rate / cold hit rate",
        ratio: rateRatio === null ? null : round(rateRatio, 4),
        target: row.target,
        pass,
        checks: [
          check(
            "hit rate",
            formatPercent(coldRate.hitRate),
            formatPercent(warmRate.hitRate),
            formatRatio(rateRatio),
            `>= ${formatPercent(TARGET)}`,
            pass
          ),
          check("hits / misses", `${coldRate.hits} / ${coldRate.misses}`, `${warmRate.hits} / ${warmRate.misses}`),
          check("p50 latency", formatMs(coldLatency.p50Ms), formatMs(warmLatency.p50Ms)),
          check("p99 latency", formatMs(coldLatency.p99Ms), formatMs(warmLatency.p99Ms))
        ],
        notes: [
          `${IN_FLIGHT} in flight, ${CHUNKS} alternating chunks of ${perChunk} calls per pool`,
          ...(failed > 0 ? [`${failed} calls failed`] : [])
        ]
      }
    } finally {
      await Promise.allSettled([warm?.close(), cold?.close()])
    }
  }
}
