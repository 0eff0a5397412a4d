/**
 * Row 7: warm-up and shutdown. Time until a manager whose pool has min 4 is ready against min 1
 * (the fixture server), and time to close 10 server-everything connections against 1, started
 * directly and behind an npx-style wrapper; raw SDK clients on the same servers give the floor.
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import { serverEverythingStdioConfig, wrapperPath } from "@mcp-pool/test-servers"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import type { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { readdirSync, readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { alternate } from "../measure.ts"
import { allPassed, check, type RowDefinition } from "../row.ts"
import { formatMs, formatRatio, median, ratio, round } from "../stats.ts"
import { connectMany, fixtureManager, type Launch, SERVER } from "../subjects.ts"

const WARM_ROUNDS = 5
const CLOSE_ROUNDS = 5
const WARM_TARGET = 2
const CLOSE_TARGET = 1.5
/**
 * The targets say why they are there: connections open in parallel, and closes run in parallel.
 * Where the machine itself cannot reach a target (raw SDK clients doing the same at once, in the
 * same rounds, take longer than it allows), the row judges that reason instead: the pool within
 * this factor of the raw clients. Opening or closing one after another would be far outside it:
 * about 1.4x the floor for 4 starts (estimated) and 1.8x for 10 closes (measured) on 2 cores.
 */
const PARALLEL_TOLERANCE = 1.25
const WARM_COUNT = 4
const CLOSE_COUNT = 10

/** Milliseconds until a manager with `min` connections is ready; it is closed afterwards. */
const readyTime = async (min: number): Promise<number> => {
  const started = performance.now()
  const manager = await fixtureManager({ minConnections: min, maxConnections: Math.max(min, 4) })
  const elapsed = performance.now() - started
  await manager.close()
  return elapsed
}

/** server-everything as `npx` would run it: a wrapper process, and the server as its child. */
const wrappedServerEverything = (): Launch => {
  const server = serverEverythingStdioConfig()
  return { command: process.execPath, args: [wrapperPath, server.command, ...server.args] }
}

/** Milliseconds `close()` takes on a manager with `count` open server-everything connections. */
const closeTime = async (count: number, launch: Launch = serverEverythingStdioConfig()): Promise<number> => {
  let manager: MCPConnectionManagerPromise | undefined
  try {
    manager = await fixtureManager({ minConnections: count, maxConnections: count }, launch)
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

const serverPid = (client: Client): number => {
  const transport = client.transport
  const pid = transport instanceof StdioClientTransport ? transport.pid : null
  if (pid === null) throw new Error("no server pid")
  return pid
}

/**
 * The CPU time a process has used so far, all its threads (V8 compiles and collects garbage
 * on threads of its own), in ms; undefined where `/proc/<pid>/task/<tid>/schedstat` is missing.
 */
const processCpuMs = (pid: number): number | undefined => {
  try {
    let ns = 0
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0])
    }
    return Number.isFinite(ns) ? ns / 1e6 : undefined
  } catch {
    return undefined
  }
}

/** CPU used by each fixture server until its raw client was connected, alone on the machine. */
const startCpu: Array<number> = []

/** Milliseconds to connect `count` raw SDK clients in parallel (the machine's floor); they are closed afterwards. */
const rawReadyTime = async (count: number): Promise<number> => {
  const started = performance.now()
  const clients = await connectMany(count)
  const elapsed = performance.now() - started
  if (count === 1) {
    const cpu = clients[0] === undefined ? undefined : processCpuMs(serverPid(clients[0]))
    if (cpu !== undefined) startCpu.push(cpu)
  }
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
    const pids = clients.map(serverPid)
    const closed = clients.map(
      (client) =>
        new Promise<void>((resolve) => {
          client.onclose = resolve
        })
    )
    const started = performance.now()
    for (const pid of pids) process.kill(pid, "SIGTERM")
    await Promise.all(closed)
    return performance.now() - started
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()))
  }
}

/**
 * How one half of the row is judged: the pool's ratio against its target or, when raw clients
 * on this machine cannot reach the target either, the pool against those raw clients.
 */
const judge = (
  poolRatio: number | null,
  target: number,
  floor: number | null,
  vsRaw: number | null
): {
  readonly pass: boolean
  readonly ratioCheck: readonly [string, boolean | null]
  readonly floorCheck: readonly [string, boolean | null]
} => {
  if (floor === null || floor <= target) {
    const pass = poolRatio !== null && poolRatio <= target
    return { pass, ratioCheck: [`<= ${target.toFixed(2)}x`, pass], floorCheck: ["", null] }
  }
  const pass = vsRaw !== null && vsRaw <= PARALLEL_TOLERANCE
  return {
    pass,
    ratioCheck: [`floor > ${target.toFixed(2)}x`, null],
    floorCheck: [`<= ${PARALLEL_TOLERANCE.toFixed(2)}x`, pass]
  }
}

export const row: RowDefinition = {
  id: 7,
  name: "warm-up and shutdown",
  target: `ready(min 4) <= ${WARM_TARGET}x ready(min 1); close(10) <= ${CLOSE_TARGET}x close(1); where the machine's floor is above a target, <= ${PARALLEL_TOLERANCE}x raw SDK clients doing the same`,
  run: async () => {
    // Not counted: the first start after a build fills Node's compile cache and the page cache.
    await readyTime(1)
    await closeTime(1)
    startCpu.length = 0
    const warm = await alternate(WARM_ROUNDS, {
      min1: () => readyTime(1),
      min4: () => readyTime(WARM_COUNT),
      raw1: () => rawReadyTime(1),
      raw4: () => rawReadyTime(WARM_COUNT)
    })
    const close = await alternate(CLOSE_ROUNDS, {
      one: () => closeTime(1),
      ten: () => closeTime(CLOSE_COUNT),
      raw1: () => rawEndTime(1),
      raw10: () => rawEndTime(CLOSE_COUNT),
      wrapped1: () => closeTime(1, wrappedServerEverything()),
      wrapped10: () => closeTime(CLOSE_COUNT, wrappedServerEverything())
    })
    const cores = availableParallelism()
    const rawReady1 = median(warm.raw1)
    const rawReady4 = median(warm.raw4)
    const rawClose1 = median(close.raw1)
    const rawClose10 = median(close.raw10)
    const ready1 = median(warm.min1)
    const ready4 = median(warm.min4)
    const close1 = median(close.one)
    const close10 = median(close.ten)
    const wrapped1 = median(close.wrapped1)
    const wrapped10 = median(close.wrapped10)
    const warmRatio = ratio(ready4, ready1)
    const closeRatio = ratio(close10, close1)
    const warmFloor = ratio(rawReady4, rawReady1)
    const closeFloor = ratio(rawClose10, rawClose1)
    // A start-up that needs C ms of CPU cannot take less than 4 C / cores for 4 at once, however
    // they are scheduled: against one start alone (wall W), 4 C / (cores W).
    const cpuPerStart = startCpu.length === 0 ? null : median(startCpu)
    const cpuBound = cpuPerStart === null ? null : ratio((WARM_COUNT * cpuPerStart) / cores, rawReady1)
    const warmVsRaw = ratio(ready4, rawReady4)
    const closeVsRaw = ratio(close10, rawClose10)
    const warmJudge = judge(warmRatio, WARM_TARGET, warmFloor, warmVsRaw)
    const closeJudge = judge(closeRatio, CLOSE_TARGET, closeFloor, closeVsRaw)
    const belowFloor = [
      warmFloor !== null && warmFloor > WARM_TARGET ? `ready: ${formatRatio(warmFloor)} > ${WARM_TARGET}x` : "",
      closeFloor !== null && closeFloor > CLOSE_TARGET ? `close: ${formatRatio(closeFloor)} > ${CLOSE_TARGET}x` : ""
    ].filter((text) => text !== "")
    return {
      baseline: {
        label: "fixture pool with min 1 until ready; manager with 1 server-everything connection closing",
        readyMs: round(ready1, 1),
        closeMs: round(close1, 1),
        readySamples: warm.min1.map((x) => round(x, 1)),
        closeSamples: close.one.map((x) => round(x, 1)),
        rawConnectOneMs: round(rawReady1, 1),
        rawConnectOneSamples: warm.raw1.map((x) => round(x, 1)),
        rawCloseOneMs: round(rawClose1, 1),
        rawCloseOneSamples: close.raw1.map((x) => round(x, 1)),
        wrappedCloseOneMs: round(wrapped1, 1),
        wrappedCloseOneSamples: close.wrapped1.map((x) => round(x, 1)),
        serverStartCpuMs: cpuPerStart === null ? null : round(cpuPerStart, 1)
      },
      subject: {
        label: "fixture pool with min 4 until ready; manager with 10 server-everything connections closing",
        readyMs: round(ready4, 1),
        closeMs: round(close10, 1),
        readySamples: warm.min4.map((x) => round(x, 1)),
        closeSamples: close.ten.map((x) => round(x, 1)),
        rawConnectFourMs: round(rawReady4, 1),
        rawConnectFourSamples: warm.raw4.map((x) => round(x, 1)),
        rawCloseTenMs: round(rawClose10, 1),
        rawCloseTenSamples: close.raw10.map((x) => round(x, 1)),
        wrappedCloseTenMs: round(wrapped10, 1),
        wrappedCloseTenSamples: close.wrapped10.map((x) => round(x, 1))
      },
      ratio: warmRatio === null ? null : round(warmRatio, 3),
      ratioOf: "ready time, min 4 / min 1",
      target: row.target,
      pass: allPassed([warmJudge.pass, closeJudge.pass]),
      checks: [
        check(
          "time to ready (median)",
          `min 1: ${formatMs(ready1)}`,
          `min 4: ${formatMs(ready4)}`,
          formatRatio(warmRatio),
          ...warmJudge.ratioCheck
        ),
        check(
          "machine floor: raw SDK clients connecting at once",
          `1: ${formatMs(rawReady1)}`,
          `4: ${formatMs(rawReady4)}`,
          formatRatio(warmFloor)
        ),
        check(
          `one server start alone, on ${cores} cores`,
          `wall: ${formatMs(rawReady1)}`,
          `CPU: ${cpuPerStart === null ? "n/a" : formatMs(cpuPerStart)}`,
          cpuBound === null ? "n/a" : `4 >= ${formatRatio(cpuBound)}`
        ),
        check(
          "mcp-pool vs raw SDK, 4 at once",
          `raw: ${formatMs(rawReady4)}`,
          `pool: ${formatMs(ready4)}`,
          formatRatio(warmVsRaw),
          ...warmJudge.floorCheck
        ),
        check(
          "time to close (median)",
          `1 conn: ${formatMs(close1)}`,
          `10 conns: ${formatMs(close10)}`,
          formatRatio(closeRatio),
          ...closeJudge.ratioCheck
        ),
        check(
          "machine floor: SIGTERM raw servers, until closed",
          `1: ${formatMs(rawClose1)}`,
          `10: ${formatMs(rawClose10)}`,
          formatRatio(closeFloor)
        ),
        check(
          "mcp-pool vs raw SDK, 10 at once",
          `raw: ${formatMs(rawClose10)}`,
          `pool: ${formatMs(close10)}`,
          formatRatio(closeVsRaw),
          ...closeJudge.floorCheck
        ),
        check(
          "time to close, behind an npx-style wrapper",
          `1 conn: ${formatMs(wrapped1)}`,
          `10 conns: ${formatMs(wrapped10)}`,
          formatRatio(ratio(wrapped10, wrapped1))
        )
      ],
      notes: [
        `medians of ${WARM_ROUNDS} (ready) and ${CLOSE_ROUNDS} (close) alternating rounds after one uncounted round; the machine-floor lines do the same with raw SDK clients on the same servers, in the same rounds`,
        `starting or ending N node processes at once is CPU work that ${cores} cores share: a server start needs more CPU than its own wall time (V8's helper threads), so 4 at once take at least the "4 >=" figure`,
        ...(belowFloor.length === 0
          ? []
          : [
              `target below what this machine allows (${belowFloor.join("; ")}): judged on the "mcp-pool vs raw SDK" line instead, <= ${PARALLEL_TOLERANCE}x`
            ])
      ]
    }
  }
}
