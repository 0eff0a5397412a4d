/**
 * Row 9: mcp-pool next to a peer, a generic-pool pool of raw SDK clients, both with 4
 * connections each lent to one call at a time: sequential echo latency and 100-in-flight throughput.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import type { Pool } from "generic-pool"
import { alternate, closedLoop, sequential } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, formatRate, formatRatio, median, ratio, round, summarize } from "../stats.ts"
import { closeGenericPool, echoParams, fixtureManager, genericPool, SERVER } from "../subjects.ts"

const SIZE = 4
const LATENCY_ROUNDS = 60
const CALLS_PER_LATENCY_ROUND = 50
/** As in rows 2 and 8: both sides warmed until V8 has optimised them, and rounds long enough to hold still. */
const WARM_UP_CALLS = 30_000
const THROUGHPUT_ROUNDS = 12
const CALLS_PER_THROUGHPUT_ROUND = 6000
const IN_FLIGHT = 100

export const row: RowDefinition = {
  id: 9,
  name: "peer: generic-pool of raw SDK clients",
  target: "informational (no target): compare with row 2",
  run: async () => {
    let manager: MCPConnectionManagerPromise | undefined
    let peer: Pool<Client> | undefined
    try {
      manager = await fixtureManager({
        minConnections: SIZE,
        maxConnections: SIZE,
        maxConcurrentRequestsPerConnection: 1
      })
      peer = await genericPool(SIZE)
      const tools = manager.tools(SERVER)
      const peerPool = peer
      const calls = {
        peer: () => peerPool.use((client) => client.callTool(echoParams)),
        pooled: () => tools.callTool(echoParams)
      }
      for (const call of Object.values(calls)) {
        await sequential(call, 500)
        await closedLoop(call, IN_FLIGHT, WARM_UP_CALLS)
      }
      const latency = await alternate(LATENCY_ROUNDS, {
        peer: () => sequential(calls.peer, CALLS_PER_LATENCY_ROUND),
        pooled: () => sequential(calls.pooled, CALLS_PER_LATENCY_ROUND)
      })
      const throughput = await alternate(THROUGHPUT_ROUNDS, {
        peer: () => closedLoop(calls.peer, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND),
        pooled: () => closedLoop(calls.pooled, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND)
      })
      const peerLatency = summarize(latency.peer.flat())
      const pooledLatency = summarize(latency.pooled.flat())
      const peerRate = median(throughput.peer.map((t) => t.callsPerSecond))
      const pooledRate = median(throughput.pooled.map((t) => t.callsPerSecond))
      const peerCpu = median(throughput.peer.map((t) => t.cpuMicrosPerCall))
      const pooledCpu = median(throughput.pooled.map((t) => t.cpuMicrosPerCall))
      const failed = [...throughput.peer, ...throughput.pooled].reduce((sum, t) => sum + t.failed, 0)
      const p50Ratio = ratio(pooledLatency.p50Ms, peerLatency.p50Ms)
      return {
        baseline: {
          label: `generic-pool 3 of ${SIZE} raw SDK clients (stdio), one call per client at a time`,
          latency: peerLatency,
          callsPerSecond: Math.round(peerRate),
          cpuMicrosPerCall: round(peerCpu, 1)
        },
        subject: {
          label: `mcp-pool of ${SIZE} connections, maxConcurrentRequestsPerConnection 1`,
          latency: pooledLatency,
          callsPerSecond: Math.round(pooledRate),
          cpuMicrosPerCall: round(pooledCpu, 1)
        },
        ratioOf: "mcp-pool p50 / generic-pool p50",
        ratio: p50Ratio === null ? null : round(p50Ratio, 3),
        target: row.target,
        pass: null,
        checks: [
          check("p50 latency", formatMs(peerLatency.p50Ms), formatMs(pooledLatency.p50Ms), formatRatio(p50Ratio)),
          check(
            "p99 latency",
            formatMs(peerLatency.p99Ms),
            formatMs(pooledLatency.p99Ms),
            formatRatio(ratio(pooledLatency.p99Ms, peerLatency.p99Ms))
          ),
          check(
            `throughput, ${IN_FLIGHT} in flight`,
            formatRate(peerRate),
            formatRate(pooledRate),
            formatRatio(ratio(pooledRate, peerRate))
          ),
          check(
            `client CPU per call, ${IN_FLIGHT} in flight`,
            `${peerCpu.toFixed(1)} µs`,
            `${pooledCpu.toFixed(1)} µs`,
            formatRatio(ratio(pooledCpu, peerCpu))
          )
        ],
        notes: failed > 0 ? [`${failed} calls failed during the throughput rounds`] : []
      }
    } finally {
      await Promise.allSettled([manager?.close(), peer === undefined ? undefined : closeGenericPool(peer)])
    }
  }
}
