/**
 * Row 4: throughput of a CPU-bound tool (`cpu`, 5 ms per call) with pools of 1, 2 and 4
 * connections against one raw SDK client, all at 16 in flight; a pool spreads calls over processes.
 * The pools are on their defaults but for their size, so their connections' limits are
 * adaptive ("auto"); a pool of 2 with 1 request per connection (the default before) is shown
 * beside them.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { availableParallelism } from "node:os"
import { alternate, closedLoop } from "../measure.ts"
import { check, type RowDefinition } from "../row.ts"
import { formatMs, formatRate, formatRatio, median, ratio, round } from "../stats.ts"
import { connectRaw, fixtureManager, SERVER } from "../subjects.ts"
import { MAX_SETTLE_MS } from "./adaptive/settle.ts"

const CPU_MS = 5
const IN_FLIGHT = 16
const ROUNDS = 3
const CALLS_PER_ROUND = 150
const SIZES = [1, 2, 4] as const
const TARGET = 1.8
/**
 * How long each adaptive pool is warmed with the load before the rounds: twice the time its
 * limits may take to settle on a change of load (row 11's bound).
 */
const POOL_WARM_UP_MS = 2 * MAX_SETTLE_MS

const cpuParams = { name: "cpu", arguments: { ms: CPU_MS } }

export const row: RowDefinition = {
  id: 4,
  name: "scaling of a CPU-bound tool",
  target: `pool of 2 >= ${TARGET}x one raw client (2 cores)`,
  run: async () => {
    const managers: Array<MCPConnectionManagerPromise> = []
    const clients: Array<Client> = []
    try {
      for (const size of SIZES) managers.push(await fixtureManager({ minConnections: size, maxConnections: size }))
      managers.push(
        await fixtureManager({ minConnections: 2, maxConnections: 2, maxConcurrentRequestsPerConnection: 1 })
      )
      clients.push(await connectRaw(), await connectRaw())
      const [raw, second] = clients
      const pools = managers.map((manager) => manager.tools(SERVER))
      const [p1, p2, p4, p2one] = pools
      if (
        raw === undefined ||
        second === undefined ||
        p1 === undefined ||
        p2 === undefined ||
        p4 === undefined ||
        p2one === undefined
      ) {
        throw new Error("subjects missing")
      }
      let turn = 0
      const run = (call: () => Promise<unknown>) => () => closedLoop(call, IN_FLIGHT, CALLS_PER_ROUND)
      const subjects = {
        raw: run(() => raw.callTool(cpuParams)),
        // The best any pool of 2 can do on this machine: two raw clients, taking turns.
        raw2: run(() => (turn++ % 2 === 0 ? raw : second).callTool(cpuParams)),
        pool1: run(() => p1.callTool(cpuParams)),
        pool2: run(() => p2.callTool(cpuParams)),
        pool4: run(() => p4.callTool(cpuParams)),
        pool2one: run(() => p2one.callTool(cpuParams))
      }
      for (const subject of Object.values(subjects)) await subject()
      for (const key of ["pool1", "pool2", "pool4"] as const) {
        const until = performance.now() + POOL_WARM_UP_MS
        while (performance.now() < until) await subjects[key]()
      }
      const rounds = await alternate(ROUNDS, subjects)
      const rate = (key: keyof typeof rounds) => median(rounds[key].map((t) => t.callsPerSecond))
      const failed = Object.values(rounds)
        .flat()
        .reduce((sum, t) => sum + t.failed, 0)
      const rawRate = rate("raw")
      const rates = {
        raw2: rate("raw2"),
        pool1: rate("pool1"),
        pool2: rate("pool2"),
        pool4: rate("pool4"),
        pool2one: rate("pool2one")
      }
      const scale2 = ratio(rates.pool2, rawRate)
      const pass = scale2 !== null && scale2 >= TARGET && failed === 0
      const line = (metric: string, value: number) =>
        check(metric, formatRate(rawRate), formatRate(value), formatRatio(ratio(value, rawRate)))
      return {
        baseline: { label: `one raw SDK client, ${IN_FLIGHT} in flight`, callsPerSecond: Math.round(rawRate) },
        subject: {
          label: `pools of 1, 2, 4 connections (adaptive limits), ${IN_FLIGHT} in flight`,
          callsPerSecond: {
            pool1: Math.round(rates.pool1),
            pool2: Math.round(rates.pool2),
            pool4: Math.round(rates.pool4),
            pool2OneRequestEach: Math.round(rates.pool2one)
          },
          twoRawClientsCallsPerSecond: Math.round(rates.raw2),
          cores: availableParallelism()
        },
        ratio: scale2 === null ? null : round(scale2, 3),
        ratioOf: "pool of 2 throughput / raw client throughput",
        target: row.target,
        pass,
        checks: [
          line(`cpu ${CPU_MS} ms, pool of 1`, rates.pool1),
          check(
            `cpu ${CPU_MS} ms, pool of 2`,
            formatRate(rawRate),
            formatRate(rates.pool2),
            formatRatio(scale2),
            `>= ${TARGET.toFixed(2)}x`,
            pass
          ),
          line(`cpu ${CPU_MS} ms, pool of 4`, rates.pool4),
          line(`cpu ${CPU_MS} ms, pool of 2, 1 request each`, rates.pool2one),
          line(`cpu ${CPU_MS} ms, 2 raw clients (machine)`, rates.raw2),
          check(
            "pool of 2 vs 2 raw clients",
            formatRate(rates.raw2),
            formatRate(rates.pool2),
            formatRatio(ratio(rates.pool2, rates.raw2))
          )
        ],
        notes: [
          `pools on their defaults but for their size (adaptive limits per connection), each warmed with the load for ${formatMs(POOL_WARM_UP_MS)}; median of ${ROUNDS} alternating rounds of ${CALLS_PER_ROUND} calls per subject; "2 raw clients" shows what this machine gives two server processes`,
          ...(failed > 0 ? [`${failed} calls failed`] : [])
        ]
      }
    } finally {
      await Promise.allSettled([
        ...managers.map((manager) => manager.close()),
        ...clients.map((client) => client.close())
      ])
    }
  }
}
