/**
 * Row 2: what the pool adds to a call. A pool of one connection against one raw SDK client
 * already connected to the same stdio server: sequential latency and throughput at 100 in flight.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { alternate, closedLoop, sequential } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, formatRate, formatRatio, median, percentile, ratio, round, summarize } from "../stats.ts"
import { connectRaw, echoParams, fixtureManager, pinnedLaunch, SERVER } from "../subjects.ts"

const LATENCY_ROUNDS = 60
const CALLS_PER_LATENCY_ROUND = 50
/**
 * On a shared 2-core machine one round's rate moves by a third either way (the scheduler, the
 * collectors of three processes): rounds of 4,000 calls (about 50 ms) made the median of 12 move
 * by 0.15x from run to run. Rounds of 150 ms, and more of them, hold it steadier.
 */
const THROUGHPUT_ROUNDS = 15
const CALLS_PER_THROUGHPUT_ROUND = 12_000
/**
 * Calls per side at 100 in flight before measuring. V8 needs tens of thousands of calls to
 * optimise either side fully (client CPU per call keeps falling until then): a production
 * pool runs hot, so the row compares both sides in that steady state.
 */
const WARM_UP_CALLS = 30_000
const IN_FLIGHT = 100
const MAX_P50_RATIO = 1.1
const MIN_THROUGHPUT_RATIO = 0.9

/** The rates of the middle half of a side's rounds, as `71,000-84,000 calls/s`. */
const middleHalf = (rounds: ReadonlyArray<{ readonly callsPerSecond: number }>): string => {
  const rates = rounds.map((t) => t.callsPerSecond)
  const low = Math.round(percentile(rates, 25)).toLocaleString("en-US")
  return `${low}-${formatRate(percentile(rates, 75))}`
}

export const row: RowDefinition = {
  id: 2,
  name: "pool overhead vs raw SDK client",
  target: `p50 <= ${MAX_P50_RATIO.toFixed(2)}x raw, throughput at ${IN_FLIGHT} in flight >= ${MIN_THROUGHPUT_RATIO.toFixed(2)}x raw`,
  run: async () => {
    let manager: MCPConnectionManagerPromise | undefined
    let client: Client | undefined
    try {
      // Both servers on the same core (see pinnedLaunch), so that only the client side differs.
      const launch = pinnedLaunch()
      manager = await fixtureManager(
        { minConnections: 1, maxConnections: 1, maxConcurrentRequestsPerConnection: 128 },
        launch
      )
      client = await connectRaw(launch)
      const tools = manager.tools(SERVER)
      const raw = client
      const calls = {
        raw: () => raw.callTool(echoParams),
        pooled: () => tools.callTool(echoParams)
      }
      // Warm up both sides (JIT, buffers, the server processes) the same way.
      for (const call of Object.values(calls)) {
        await sequential(call, 500)
        await closedLoop(call, IN_FLIGHT, WARM_UP_CALLS)
      }
      const latency = await alternate(LATENCY_ROUNDS, {
        raw: () => sequential(calls.raw, CALLS_PER_LATENCY_ROUND),
        pooled: () => sequential(calls.pooled, CALLS_PER_LATENCY_ROUND)
      })
      const throughput = await alternate(THROUGHPUT_ROUNDS, {
        raw: () => closedLoop(calls.raw, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND),
        pooled: () => closedLoop(calls.pooled, IN_FLIGHT, CALLS_PER_THROUGHPUT_ROUND)
      })
      const rawLatency = summarize(latency.raw.flat())
      const pooledLatency = summarize(latency.pooled.flat())
      const rawRate = median(throughput.raw.map((t) => t.callsPerSecond))
      const pooledRate = median(throughput.pooled.map((t) => t.callsPerSecond))
      const rawCpu = median(throughput.raw.map((t) => t.cpuMicrosPerCall))
      const pooledCpu = median(throughput.pooled.map((t) => t.cpuMicrosPerCall))
      const failed = [...throughput.raw, ...throughput.pooled].reduce((sum, t) => sum + t.failed, 0)
      const p50Ratio = ratio(pooledLatency.p50Ms, rawLatency.p50Ms)
      const p99Ratio = ratio(pooledLatency.p99Ms, rawLatency.p99Ms)
      const rateRatio = ratio(pooledRate, rawRate)
      const addedUs = (pooledLatency.p50Ms - rawLatency.p50Ms) * 1000
      const p50Pass = p50Ratio !== null && p50Ratio <= MAX_P50_RATIO
      const ratePass = rateRatio !== null && rateRatio >= MIN_THROUGHPUT_RATIO && failed === 0
      return {
        baseline: {
          label: "one raw SDK Client, connected (stdio)",
          latency: rawLatency,
          callsPerSecond: Math.round(rawRate),
          cpuMicrosPerCall: round(rawCpu, 1)
        },
        subject: {
          label: "pool of 1 connection, maxConcurrentRequestsPerConnection 128 (Promise API)",
          latency: pooledLatency,
          callsPerSecond: Math.round(pooledRate),
          cpuMicrosPerCall: round(pooledCpu, 1),
          addedMicrosecondsAtP50: round(addedUs, 1)
        },
        ratioOf: "pooled p50 / raw client p50",
        ratio: p50Ratio === null ? null : round(p50Ratio, 3),
        target: row.target,
        pass: p50Pass && ratePass,
        checks: [
          check(
            "p50 latency",
            formatMs(rawLatency.p50Ms),
            formatMs(pooledLatency.p50Ms),
            formatRatio(p50Ratio),
            `<= ${MAX_P50_RATIO.toFixed(2)}x`,
            p50Pass
          ),
          check("p99 latency", formatMs(rawLatency.p99Ms), formatMs(pooledLatency.p99Ms), formatRatio(p99Ratio)),
          check("added at p50", "", `${addedUs >= 0 ? "+" : ""}${addedUs.toFixed(0)} µs`),
          check(
            `throughput, ${IN_FLIGHT} in flight`,
            formatRate(rawRate),
            formatRate(pooledRate),
            formatRatio(rateRatio),
            `>= ${MIN_THROUGHPUT_RATIO.toFixed(2)}x`,
            ratePass
          ),
          check("throughput, middle half of rounds", middleHalf(throughput.raw), middleHalf(throughput.pooled)),
          check(
            `client CPU per call, ${IN_FLIGHT} in flight`,
            `${rawCpu.toFixed(1)} µs`,
            `${pooledCpu.toFixed(1)} µs`,
            formatRatio(ratio(pooledCpu, rawCpu))
          )
        ],
        notes: [
          `${launch.command === "taskset" ? `both servers pinned to CPU ${launch.args[1]}` : "servers not pinned (no taskset)"}; after ${WARM_UP_CALLS} warm-up calls per side; latency: ${rawLatency.samples} samples per side in ${LATENCY_ROUNDS} alternating rounds; throughput: median of ${THROUGHPUT_ROUNDS} alternating rounds of ${CALLS_PER_THROUGHPUT_ROUND} calls`,
          ...(failed > 0 ? [`${failed} calls failed during the throughput rounds`] : [])
        ]
      }
    } finally {
      await Promise.allSettled([manager?.close(), client?.close()])
    }
  }
}
