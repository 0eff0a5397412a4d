/**
 * Row 7: warm-up and shutdown. Time until a manager whose pool has min 4 is ready against min 1
 * (the fixture server), and time to close 10 server-everything connections against 1.
 */
import type { McpConnectionManager } from "@mcp-pool/core"
import { serverEverythingStdioConfig } from "@mcp-pool/test-servers"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { alternate } from "../measure.ts"
import { allPassed, check, type RowDefinition } from "../row.ts"
import { formatMs, formatRatio, median, ratio, round } from "../stats.ts"
import { connectMany, fixtureManager, SERVER } from "../subjects.ts"

const WARM_ROUNDS = 3
const CLOSE_ROUNDS = 3
const WARM_TARGET = 2
const CLOSE_TARGET = 1.5

/** Milliseconds until a manager with `min` connections is ready; it is closed afterwards. */
const readyTime = async (min: number): Promise<number> => {
  const started = performance.now()
  const manager = await fixtureManager({ minConnections: min, maxConnections: Math.max(min, 4) })
  const elapsed = performance.now() - started
  await manager.close()
  return elapsed
}

/** Milliseconds `close()` takes on a manager with `count` open server-everything connections. */
const closeTime = async (count: number): Promise<number> => {
  let manager: McpConnectionManager | undefined
  try {
    manager = await fixtureManager({ minConnections: count, maxConnections: count }, serverEverythingStdioConfig())
    const ready = manager
    const details = await ready.pool(SERVER)
    if (details.total_connections !== count) {
      throw new Error(`expected ${count} server-everything connections, found ${details.total_connections}`)
    }
    const started = performance.now()
    manager = undefined
    await ready.close()
    return performance.now() - started
  } finally {
    await manager?.close()
  }
}

/** Milliseconds to connect `count` raw SDK clients in parallel (the machine's floor); they are closed afterwards. */
const rawReadyTime = async (count: number): Promise<number> => {
  const started = performance.now()
  const clients = await connectMany(count)
  const elapsed = performance.now() - started
  await Promise.allSettled(clients.map((client) => client.close()))
  return elapsed
}

/**
 * Milliseconds to end `count` server-everything processes (behind raw SDK clients) with SIGTERM
 * at once, until every client saw its transport close: what ending them costs this machine.
 */
const rawEndTime = async (count: number): Promise<number> => {
  const clients = await connectMany(count, serverEverythingStdioConfig())
  try {
    const started = performance.now()
    await Promise.all(
      clients.map((client) => {
        const transport = client.transport
        const pid = transport instanceof StdioClientTransport ? transport.pid : null
        if (pid === null) throw new Error("no server pid")
        const closed = new Promise<void>((resolve) => {
          client.onclose = resolve
        })
        process.kill(pid, "SIGTERM")
        return closed
      })
    )
    return performance.now() - started
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()))
  }
}

export const row: RowDefinition = {
  id: 7,
  name: "warm-up and shutdown",
  target: `ready(min 4) <= ${WARM_TARGET}x ready(min 1); close(10) <= ${CLOSE_TARGET}x close(1)`,
  run: async () => {
    const warm = await alternate(WARM_ROUNDS, {
      min1: () => readyTime(1),
      min4: () => readyTime(4),
      raw1: () => rawReadyTime(1),
      raw4: () => rawReadyTime(4)
    })
    const close = await alternate(CLOSE_ROUNDS, {
      one: () => closeTime(1),
      ten: () => closeTime(10),
      raw1: () => rawEndTime(1),
      raw10: () => rawEndTime(10)
    })
    const rawReady1 = median(warm.raw1)
    const rawReady4 = median(warm.raw4)
    const rawClose1 = median(close.raw1)
    const rawClose10 = median(close.raw10)
    const ready1 = median(warm.min1)
    const ready4 = median(warm.min4)
    const close1 = median(close.one)
    const close10 = median(close.ten)
    const warmRatio = ratio(ready4, ready1)
    const closeRatio = ratio(close10, close1)
    const warmPass = warmRatio !== null && warmRatio <= WARM_TARGET
    const closePass = closeRatio !== null && closeRatio <= CLOSE_TARGET
    return {
      baseline: {
        label: "fixture pool with min 1 until ready; manager with 1 server-everything connection closing",
        readyMs: round(ready1, 1),
        closeMs: round(close1, 1),
        readySamples: warm.min1.map((x) => round(x, 1)),
        closeSamples: close.one.map((x) => round(x, 1)),
        rawConnectOneMs: round(rawReady1, 1),
        rawCloseOneMs: round(rawClose1, 1)
      },
      subject: {
        label: "fixture pool with min 4 until ready; manager with 10 server-everything connections closing",
        readyMs: round(ready4, 1),
        closeMs: round(close10, 1),
        readySamples: warm.min4.map((x) => round(x, 1)),
        closeSamples: close.ten.map((x) => round(x, 1)),
        rawConnectFourMs: round(rawReady4, 1),
        rawCloseTenMs: round(rawClose10, 1)
      },
      ratio: warmRatio === null ? null : round(warmRatio, 3),
      ratioOf: "ready time, min 4 / min 1",
      target: row.target,
      pass: allPassed([warmPass, closePass]),
      checks: [
        check(
          "time to ready (median)",
          `min 1: ${formatMs(ready1)}`,
          `min 4: ${formatMs(ready4)}`,
          formatRatio(warmRatio),
          `<= ${WARM_TARGET.toFixed(2)}x`,
          warmPass
        ),
        check(
          "time to close (median)",
          `1 conn: ${formatMs(close1)}`,
          `10 conns: ${formatMs(close10)}`,
          formatRatio(closeRatio),
          `<= ${CLOSE_TARGET.toFixed(2)}x`,
          closePass
        ),
        check(
          "raw SDK: connect in parallel",
          `1: ${formatMs(rawReady1)}`,
          `4: ${formatMs(rawReady4)}`,
          formatRatio(ratio(rawReady4, rawReady1))
        ),
        check(
          "SIGTERM raw servers, until closed",
          `1: ${formatMs(rawClose1)}`,
          `10: ${formatMs(rawClose10)}`,
          formatRatio(ratio(rawClose10, rawClose1))
        )
      ],
      notes: [
        `ready: median of ${WARM_ROUNDS} alternating rounds; close: median of ${CLOSE_ROUNDS} alternating rounds; the raw SDK lines (same server, same rounds) show what this machine allows`
      ]
    }
  }
}
