/**
 * Row 3: 10,000 calls started at once on one pool of at most 4 connections, against the same
 * calls kept at 4 in flight: every call succeeds, the pool never grows past its max, nothing is printed.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { capturing } from "../capture.ts"
import { allAtOnce, alternate, closedLoop, type Throughput } from "../measure.ts"
import { allPassed, check, type RowDefinition } from "../row.ts"
import { formatMs, formatRate, formatRatio, median, ratio, round, summarize } from "../stats.ts"
import { echoParams, fixtureManager, poolOf, SERVER } from "../subjects.ts"

const CALLS = 10_000
const MAX = 4
const ROUNDS = 2

const describe = (runs: ReadonlyArray<Throughput>) => {
  const elapsed = median(runs.map((t) => t.elapsedMs))
  return {
    calls: runs.reduce((sum, t) => sum + t.calls, 0),
    failed: runs.reduce((sum, t) => sum + t.failed, 0),
    medianTotalMs: round(elapsed, 1),
    callsPerSecond: Math.round((CALLS / elapsed) * 1000),
    latency: summarize(runs.flatMap((t) => t.latencies))
  }
}

export const row: RowDefinition = {
  id: 3,
  name: `${CALLS.toLocaleString("en-US")} calls in flight at once`,
  target: `all succeed, peak connections <= ${MAX}, no process warning`,
  run: async () => {
    let manager: MCPConnectionManagerPromise | undefined
    try {
      manager = await fixtureManager({ minConnections: MAX, maxConnections: MAX })
      const pool = await poolOf(manager)
      const tools = manager.tools(SERVER)
      let peak = 0
      const sample = () => {
        const snapshot = pool.snapshot()
        peak = Math.max(peak, snapshot.totalConnections, pool.connections().length)
      }
      const call = async () => {
        try {
          return await tools.callTool(echoParams)
        } finally {
          sample()
        }
      }
      const sampler = setInterval(sample, 1)
      const { value: runs, captured } = await capturing(async () => {
        try {
          await closedLoop(call, MAX, 1000)
          return await alternate(ROUNDS, {
            paced: () => closedLoop(call, MAX, CALLS),
            burst: () => allAtOnce(call, CALLS)
          })
        } finally {
          clearInterval(sampler)
        }
      })
      sample()
      const paced = describe(runs.paced)
      const burst = describe(runs.burst)
      const succeeded = burst.failed === 0 && paced.failed === 0
      const bounded = peak <= MAX
      const quiet = captured.warnings.length === 0
      const timeRatio = ratio(burst.medianTotalMs, paced.medianTotalMs)
      return {
        baseline: { label: `the same ${CALLS} calls kept at ${MAX} in flight (one per connection)`, ...paced },
        subject: {
          label: `${CALLS} calls started at once, pool max ${MAX}, 1 request per connection`,
          ...burst,
          peakConnections: peak,
          warnings: captured.warnings,
          printed: captured.output.slice(0, 5)
        },
        ratioOf: "total time, all at once / kept at 4 in flight",
        ratio: timeRatio === null ? null : round(timeRatio, 3),
        target: row.target,
        pass: allPassed([succeeded, bounded, quiet]),
        checks: [
          check(
            "failed calls",
            `${paced.failed} of ${paced.calls}`,
            `${burst.failed} of ${burst.calls}`,
            "",
            "0",
            succeeded
          ),
          check(
            "total time (median)",
            formatMs(paced.medianTotalMs),
            formatMs(burst.medianTotalMs),
            formatRatio(timeRatio)
          ),
          check("throughput", formatRate(paced.callsPerSecond), formatRate(burst.callsPerSecond)),
          check("p99 latency", formatMs(paced.latency.p99Ms), formatMs(burst.latency.p99Ms)),
          check("peak connections", "", String(peak), "", `<= ${MAX}`, bounded),
          check("process warnings", "", String(captured.warnings.length), "", "0", quiet),
          check("lines logged (both sides)", "", String(captured.output.length))
        ],
        notes: [
          `${ROUNDS} alternating rounds per side; burst latency runs from the common start (queueing included)`,
          ...captured.warnings.slice(0, 3),
          ...captured.output.slice(0, 3).map((line) => `logged: ${line.trim()}`)
        ]
      }
    } finally {
      await manager?.close()
    }
  }
}
