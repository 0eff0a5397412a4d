/** Row 11, part 2: the CPU-bound tool, the pool with "auto" against one raw client (and two). */
import { type MCPConnectionManagerPromise } from "@mcp-pool/core"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { availableParallelism } from "node:os"
import { alternate, type Call, closedLoop } from "../../measure.ts"
import { check } from "../../row.ts"
import { formatMs, formatRate, formatRatio, median, ratio } from "../../stats.ts"
import { connectRaw, poolOf, SERVER } from "../../subjects.ts"
import { defaultManager, failedIn, formatLimits, limitsJson, limitsOf, type Part } from "./common.ts"
import { MAX_SETTLE_MS } from "./settle.ts"

/** 2. The CPU-bound `cpu` tool, as in row 4 (servers not pinned: the point is using every core). */
export const CPU_MS = 3
const CPU_IN_FLIGHT = 8
const CPU_ROUNDS = 6
const CPU_CALLS_PER_ROUND = 200
/** Calls per raw side before measuring: the servers warm. */
const CPU_WARM_UP_CALLS = { raw: 100, raw2: 200 } as const
/**
 * How long the pool is warmed with the load before measuring: its limits and connections may
 * take {@link MAX_SETTLE_MS} to settle on a change of load (the settle part holds it to that);
 * twice that, so that the rounds measure the settled pool.
 */
const CPU_POOL_WARM_UP_MS = 2 * MAX_SETTLE_MS
export const MIN_CPU_RATIO = 1.8
const cpuParams = { name: "cpu", arguments: { ms: CPU_MS } }

/** 2. The CPU-bound tool at 8 in flight: the pool with "auto" against one raw client (and two). */
export const cpuPart = async (): Promise<Part> => {
  let manager: MCPConnectionManagerPromise | undefined
  const clients: Array<Client> = []
  try {
    const launch = fixtureStdioConfig()
    manager = await defaultManager(launch)
    clients.push(await connectRaw(launch), await connectRaw(launch))
    const [raw, second] = clients
    if (raw === undefined || second === undefined) throw new Error("raw clients missing")
    const pool = await poolOf(manager)
    const tools = manager.tools(SERVER)
    let turn = 0
    const calls = {
      raw: () => raw.callTool(cpuParams),
      // What this machine gives two server processes: two raw clients taking turns (as in row 4).
      raw2: () => (turn++ % 2 === 0 ? raw : second).callTool(cpuParams),
      pooled: () => tools.callTool(cpuParams)
    }
    for (const key of ["raw", "raw2"] as const) await closedLoop(calls[key], CPU_IN_FLIGHT, CPU_WARM_UP_CALLS[key])
    const warmUntil = performance.now() + CPU_POOL_WARM_UP_MS
    while (performance.now() < warmUntil) await closedLoop(calls.pooled, CPU_IN_FLIGHT, CPU_CALLS_PER_ROUND)
    const run = (call: Call) => () => closedLoop(call, CPU_IN_FLIGHT, CPU_CALLS_PER_ROUND)
    const rounds = await alternate(CPU_ROUNDS, {
      raw: run(calls.raw),
      raw2: run(calls.raw2),
      pooled: run(calls.pooled)
    })
    const limits = limitsOf(pool)
    const rate = (key: keyof typeof rounds) => median(rounds[key].map((t) => t.callsPerSecond))
    const rates = { raw: rate("raw"), raw2: rate("raw2"), pooled: rate("pooled") }
    const failed = failedIn(rounds.raw) + failedIn(rounds.raw2) + failedIn(rounds.pooled)
    const scale = ratio(rates.pooled, rates.raw)
    const pass = scale !== null && scale >= MIN_CPU_RATIO && failed === 0
    return {
      baseline: {
        cpu: {
          label: `one raw SDK client, cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight`,
          callsPerSecond: Math.round(rates.raw),
          twoRawClientsCallsPerSecond: Math.round(rates.raw2)
        }
      },
      subject: {
        cpu: {
          label: `pool with "auto", cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight`,
          callsPerSecond: Math.round(rates.pooled),
          connectionLimits: limitsJson(limits),
          cores: availableParallelism()
        }
      },
      checks: [
        check(
          `cpu ${CPU_MS} ms, ${CPU_IN_FLIGHT} in flight: throughput`,
          formatRate(rates.raw),
          formatRate(rates.pooled),
          formatRatio(scale),
          `>= ${MIN_CPU_RATIO.toFixed(2)}x`,
          pass
        ),
        check(
          "cpu: 2 raw clients (machine)",
          formatRate(rates.raw),
          formatRate(rates.raw2),
          formatRatio(ratio(rates.raw2, rates.raw))
        ),
        check("cpu: pool's connections after", "1 client", formatLimits(limits))
      ],
      notes: [
        `cpu: servers not pinned; ${availableParallelism()} cores; the pool warmed with the load for ${formatMs(CPU_POOL_WARM_UP_MS)} (twice the time its limits may take to settle), the raw clients with ${CPU_WARM_UP_CALLS.raw} and ${CPU_WARM_UP_CALLS.raw2} calls; median of ${CPU_ROUNDS} alternating rounds of ${CPU_CALLS_PER_ROUND} calls per subject; "2 raw clients" shows what this machine gives two server processes`,
        ...(failed > 0 ? [`cpu: ${failed} calls failed`] : [])
      ]
    }
  } finally {
    await Promise.allSettled([manager?.close(), ...clients.map((client) => client.close())])
  }
}
