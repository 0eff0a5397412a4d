/**
 * Row 10: an agent-shaped loop (each turn lists the tools, then calls `echo`) on a pool whose
 * catalog answers the list (`catalog: "shared"`) against one that sends it (`catalog: "off"`).
 */
import type { MCPConnectionManagerPromise } from "@mcp-pool/core"
import type { PooledMCPToolsPromise } from "@mcp-pool/core/PooledMCPTools"
import { alternate } from "../measure.ts"
import { allPassed, check, type RowDefinition } from "../row.ts"
import { formatMs, formatRatio, median, ratio, round, summarize } from "../stats.ts"
import { fixtureManager, pinnedLaunch, poolOf, SERVER } from "../subjects.ts"

/** 20 alternating rounds of 50 turns: 1,000 measured turns per side. */
const ROUNDS = 20
const TURNS_PER_ROUND = 50
/** Turns per side before measuring, so that V8 has optimised both sides' code (about 1 s). */
const WARM_UP_TURNS = 2000
/**
 * The catalog saves a whole round trip per turn (tools/list) out of two, and the larger one: the
 * fixture's list of 22 tools with their schemas, which the SDK client parses and whose output
 * schemas it compiles on every `listTools`. A turn without it should therefore take at least
 * twice the `echo` round trip; 1.5x leaves room for the machine's noise.
 */
const TARGET = 1.5
/** The fixture tool that reports what its server instance was asked (not in every version of it). */
const REQUESTS_SEEN = "requests_seen"

/** What a run of turns took. */
interface Turns {
  /** Each turn's time in ms. */
  readonly latencies: ReadonlyArray<number>
  readonly elapsedMs: number
  /** CPU time (user + system) of this process, in µs. */
  readonly cpuMicros: number
}

/**
 * One turn of an agent: list the tools, find the one to call, call it. A list without `echo`
 * throws, so that a wrong answer of the catalog cannot pass for a fast one.
 */
const turn = async (tools: PooledMCPToolsPromise, text: string): Promise<void> => {
  const listed = await tools.listTools()
  if (!listed.tools.some((tool) => tool.name === "echo")) throw new Error("tools/list answered without echo")
  await tools.callTool({ name: "echo", arguments: { text } })
}

/** Runs `count` turns one after another. */
const turns = async (tools: PooledMCPToolsPromise, count: number): Promise<Turns> => {
  const latencies: Array<number> = []
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let i = 0; i < count; i++) {
    const begun = performance.now()
    await turn(tools, `turn ${i}`)
    latencies.push(performance.now() - begun)
  }
  const elapsedMs = performance.now() - started
  const used = process.cpuUsage(cpu)
  return { latencies, elapsedMs, cpuMicros: used.user + used.system }
}

/** The requests a pool has sent since it started: each `echo` is one, and each tools/list that reached the server. */
const sent = async (manager: MCPConnectionManagerPromise) => {
  const { counters } = await poolOf(manager)
  return { requests: counters.requests, retries: counters.retries }
}

/**
 * How many tools/list requests the side's server received in its whole life (warm-up included),
 * from the fixture's `requests_seen`; undefined when the fixture has no such tool.
 */
const listsSeen = async (tools: PooledMCPToolsPromise): Promise<number | undefined> => {
  const listed = await tools.listTools()
  if (!listed.tools.some((tool) => tool.name === REQUESTS_SEEN)) return undefined
  const seen = await tools.callTool({ name: REQUESTS_SEEN, arguments: {} })
  const structured: unknown = seen.structuredContent
  const methods: unknown =
    typeof structured === "object" && structured !== null ? Reflect.get(structured, "methods") : undefined
  if (typeof methods !== "object" || methods === null) return undefined
  const lists: unknown = Reflect.get(methods, "tools/list")
  return typeof lists === "number" ? lists : 0
}

/** A side's figures over all its measured rounds. */
const summary = (rounds: ReadonlyArray<Turns>) => {
  const count = rounds.reduce((sum, r) => sum + r.latencies.length, 0)
  return {
    turns: count,
    latency: summarize(rounds.flatMap((r) => r.latencies)),
    msPerTurn: rounds.reduce((sum, r) => sum + r.elapsedMs, 0) / count,
    /** The median round's time per turn: steadier than the mean when one round met a busy machine. */
    medianRoundMsPerTurn: median(rounds.map((r) => r.elapsedMs / r.latencies.length)),
    cpuMicrosPerTurn: rounds.reduce((sum, r) => sum + r.cpuMicros, 0) / count
  }
}

export const row: RowDefinition = {
  id: 10,
  name: "agent turns with the catalog",
  target: `turn (list + call) >= ${TARGET.toFixed(1)}x faster with catalog "shared" than "off"; "shared" sends no tools/list`,
  run: async () => {
    let shared: MCPConnectionManagerPromise | undefined
    let off: MCPConnectionManagerPromise | undefined
    try {
      // Both servers on the same core (see pinnedLaunch), so that only the client side differs.
      const launch = pinnedLaunch()
      shared = await fixtureManager({ minConnections: 1, maxConnections: 1, catalog: "shared" }, launch)
      off = await fixtureManager({ minConnections: 1, maxConnections: 1, catalog: "off" }, launch)
      const tools = { off: off.tools(SERVER), shared: shared.tools(SERVER) }
      for (const side of Object.values(tools)) await turns(side, WARM_UP_TURNS)
      const before = { off: await sent(off), shared: await sent(shared) }
      const rounds = await alternate(ROUNDS, {
        off: () => turns(tools.off, TURNS_PER_ROUND),
        shared: () => turns(tools.shared, TURNS_PER_ROUND)
      })
      const after = { off: await sent(off), shared: await sent(shared) }
      const seen = { off: await listsSeen(tools.off), shared: await listsSeen(tools.shared) }
      const without = summary(rounds.off)
      const withCatalog = summary(rounds.shared)
      // Every turn sends one echo; whatever else the pool sent during the turns was a tools/list.
      const listsSent = {
        off: after.off.requests - before.off.requests - without.turns,
        shared: after.shared.requests - before.shared.requests - withCatalog.turns
      }
      const retries = after.off.retries - before.off.retries + after.shared.retries - before.shared.retries
      const turnRatio = ratio(without.msPerTurn, withCatalog.msPerTurn)
      const p50Ratio = ratio(without.latency.p50Ms, withCatalog.latency.p50Ms)
      const turnPass = turnRatio !== null && turnRatio >= TARGET
      const listsPass = listsSent.shared === 0 && listsSent.off === without.turns
      const seenLine =
        seen.off === undefined || seen.shared === undefined
          ? []
          : [check("tools/list seen by the server, whole run", String(seen.off), String(seen.shared))]
      return {
        baseline: {
          label: `catalog "off": pool of 1, each listTools sent to the server`,
          ...without,
          toolsListSent: listsSent.off,
          ...(seen.off === undefined ? {} : { toolsListSeenByServer: seen.off })
        },
        subject: {
          label: `catalog "shared": pool of 1, listTools answered from the server's catalog`,
          ...withCatalog,
          toolsListSent: listsSent.shared,
          ...(seen.shared === undefined ? {} : { toolsListSeenByServer: seen.shared })
        },
        ratioOf: `time per turn, catalog "off" / catalog "shared"`,
        ratio: turnRatio === null ? null : round(turnRatio, 2),
        target: row.target,
        pass: allPassed([turnPass, listsPass]),
        checks: [
          check(
            "time per turn (list + call)",
            formatMs(without.msPerTurn),
            formatMs(withCatalog.msPerTurn),
            formatRatio(turnRatio),
            `>= ${TARGET.toFixed(1)}x`,
            turnPass
          ),
          check(
            "p50 turn",
            formatMs(without.latency.p50Ms),
            formatMs(withCatalog.latency.p50Ms),
            formatRatio(p50Ratio)
          ),
          check(
            "p99 turn",
            formatMs(without.latency.p99Ms),
            formatMs(withCatalog.latency.p99Ms),
            formatRatio(ratio(without.latency.p99Ms, withCatalog.latency.p99Ms))
          ),
          check(
            "client CPU per turn",
            `${without.cpuMicrosPerTurn.toFixed(1)} µs`,
            `${withCatalog.cpuMicrosPerTurn.toFixed(1)} µs`,
            formatRatio(ratio(without.cpuMicrosPerTurn, withCatalog.cpuMicrosPerTurn))
          ),
          check(
            `tools/list sent in ${without.turns} turns`,
            String(listsSent.off),
            String(listsSent.shared),
            "",
            `${without.turns} / 0`,
            listsPass
          ),
          ...seenLine
        ],
        notes: [
          `${launch.command === "taskset" ? `both servers pinned to CPU ${launch.args[1]}` : "servers not pinned (no taskset)"}; after ${WARM_UP_TURNS} warm-up turns per side; ${ROUNDS} alternating rounds of ${TURNS_PER_ROUND} turns per side; tools/list sent counted from the pools' request counters`,
          ...(retries > 0 ? [`${retries} attempts were retried during the turns`] : [])
        ]
      }
    } finally {
      await Promise.allSettled([shared?.close(), off?.close()])
    }
  }
}
