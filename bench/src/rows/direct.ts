/**
 * Row 1: a pooled `echo` against a direct call that spawns and connects a stdio server, calls
 * `echo` and closes it, as an application without a pool does; rounds alternate the two.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { alternate, sequential } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, formatRatio, ratio, round, summarize } from "../stats.ts"
import { directEcho, echoParams, fixtureManager, SERVER } from "../subjects.ts"

const ROUNDS = 20
const POOLED_PER_ROUND = 50
const TARGET = 1000

export const row: RowDefinition = {
  id: 1,
  name: "pooled call vs direct call",
  target: `pooled p50 >= ${TARGET}x faster than a new connection per call`,
  run: async () => {
    let manager: MCPConnectionManagerPromise | undefined
    try {
      manager = await fixtureManager({ minConnections: 1, maxConnections: 4 })
      const tools = manager.tools(SERVER)
      const pooledCall = () => tools.callTool(echoParams)
      await sequential(pooledCall, 200)
      await directEcho()
      const rounds = await alternate(ROUNDS, {
        direct: () => sequential(() => directEcho(), 1),
        pooled: () => sequential(pooledCall, POOLED_PER_ROUND)
      })
      const direct = summarize(rounds.direct.flat())
      const pooled = summarize(rounds.pooled.flat())
      const speedup = ratio(direct.p50Ms, pooled.p50Ms)
      const speedup99 = ratio(direct.p99Ms, pooled.p99Ms)
      const pass = speedup !== null && speedup >= TARGET
      return {
        baseline: { label: "direct: spawn + connect + echo + close per call (raw SDK)", ...direct },
        subject: { label: "pooled echo (warm pool, 1..4 connections)", ...pooled },
        ratioOf: "direct p50 / pooled p50",
        ratio: speedup === null ? null : round(speedup, 1),
        target: row.target,
        pass,
        checks: [
          check(
            "p50 latency",
            formatMs(direct.p50Ms),
            formatMs(pooled.p50Ms),
            formatRatio(speedup),
            `>= ${TARGET}x`,
            pass
          ),
          check("p99 latency", formatMs(direct.p99Ms), formatMs(pooled.p99Ms), formatRatio(speedup99))
        ],
        notes: [`${direct.samples} direct and ${pooled.samples} pooled samples in ${ROUNDS} alternating rounds`]
      }
    } finally {
      await manager?.close()
    }
  }
}
