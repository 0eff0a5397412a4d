/** Row 11, part 3: a one-at-a-time server, short and long calls mixed, "auto" against a limit fixed at 1. */
import { type MCPConnectionManagerPromise, type MCPConnectionPool } from "@mcp-pool/core"
import type { PooledMCPToolsPromise } from "@mcp-pool/core/PooledMCPTools"
import { fixtureStdioConfig } from "@mcp-pool/test-servers"
import { spawnSync } from "node:child_process"
import { alternate } from "../../measure.ts"
import { check } from "../../row.ts"
import { formatMs, formatRatio, ratio, round, summarize } from "../../stats.ts"
import { fixtureManager, poolOf, SERVER } from "../../subjects.ts"
import { defaultManager, formatLimits, limitsJson, limitsOf, type Part } from "./common.ts"

/** 3. A server that runs one request at a time (`--serial`), called by a mix of short and long calls. */
export const SERIAL_FLAG = "--serial"
const SERIAL_CALLERS = 8
export const FAST_MS = 1
const SLOW_MS = 200
/** Each caller's every 10th call is a slow one (offset by the caller's index). */
const SLOW_EVERY = 10
/**
 * Each side is warmed with the load until its pool stops opening connections: in stretches of
 * 500 ms, at least 1.5 s, until it has opened none for 1 s, at most 6 s (on a loaded 2-core
 * machine a pool took 4 s to reach 8 connections, and the first rounds' p99 was theirs).
 */
const SERIAL_WARM_UP_STEP_MS = 500
const SERIAL_WARM_UP_MIN_MS = 1500
const SERIAL_WARM_UP_STEADY_MS = 1000
const SERIAL_WARM_UP_MAX_MS = 6000
const SERIAL_ROUNDS = 6
const SERIAL_ROUND_MS = 2000
export const MAX_P99_RATIO = 1.2
const fastParams = { name: "sleep", arguments: { ms: FAST_MS } }
const slowParams = { name: "sleep", arguments: { ms: SLOW_MS } }

/** What one round of the mixed load on the serial server measured. */
interface Mix {
  /** Latencies of the 1 ms calls, in ms. */
  readonly fast: ReadonlyArray<number>
  /** Latencies of the 200 ms calls, in ms. */
  readonly slow: ReadonlyArray<number>
  readonly failed: number
}

/** 8 callers, each calling one after another for `durationMs`: every 10th call a slow one. */
const mixedLoad = async (tools: PooledMCPToolsPromise, durationMs: number): Promise<Mix> => {
  const fast: Array<number> = []
  const slow: Array<number> = []
  let failed = 0
  const deadline = performance.now() + durationMs
  const caller = async (index: number): Promise<void> => {
    for (let n = 0; performance.now() < deadline; n++) {
      const isSlow = (n + index) % SLOW_EVERY === 0
      const started = performance.now()
      try {
        await tools.callTool(isSlow ? slowParams : fastParams)
        ;(isSlow ? slow : fast).push(performance.now() - started)
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: SERIAL_CALLERS }, (_, index) => caller(index)))
  return { fast, slow, failed }
}

/**
 * Runs the mixed load on `tools` until `pool` has neither opened nor been opening a connection
 * for 1 s (at least 1.5 s, at most 6 s) and answers how long it ran, in ms.
 */
const warmUntilSteady = async (
  tools: PooledMCPToolsPromise,
  pool: MCPConnectionPool.MCPConnectionPool
): Promise<number> => {
  const started = performance.now()
  const opening = { seen: false }
  const watch = setInterval(() => {
    if (pool.snapshot().openingConnections > 0) opening.seen = true
  }, 20)
  let count = pool.connections().length
  let steadySince = started
  try {
    for (;;) {
      opening.seen = pool.snapshot().openingConnections > 0
      await mixedLoad(tools, SERIAL_WARM_UP_STEP_MS)
      const now = performance.now()
      const current = pool.connections().length
      if (current !== count || opening.seen || pool.snapshot().openingConnections > 0) {
        count = current
        steadySince = now
      }
      const elapsed = now - started
      if (elapsed >= SERIAL_WARM_UP_MAX_MS) return elapsed
      if (elapsed >= SERIAL_WARM_UP_MIN_MS && now - steadySince >= SERIAL_WARM_UP_STEADY_MS) return elapsed
    }
  } finally {
    clearInterval(watch)
  }
}

/** Whether the fixture server takes `--serial`: an unknown argument makes it exit with code 2 before `--help`. */
const hasSerialFlag = (): boolean => {
  const launch = fixtureStdioConfig([SERIAL_FLAG, "--help"])
  return spawnSync(launch.command, [...launch.args], { stdio: "ignore", timeout: 15_000 }).status === 0
}

/** 3. A one-at-a-time server, short and long calls mixed: the defaults against a pool fixed at 1 per connection. */
export const serialPart = async (): Promise<Part> => {
  const metric = `serial server, ${FAST_MS} ms calls' p99`
  const target = `<= ${MAX_P99_RATIO.toFixed(2)}x`
  if (!hasSerialFlag()) {
    return {
      baseline: {},
      subject: {},
      checks: [check(metric, "n/a", "n/a", "", target, false)],
      notes: [`serial: not measured: the fixture server does not take ${SERIAL_FLAG} (yet)`]
    }
  }
  let automatic: MCPConnectionManagerPromise | undefined
  let fixed: MCPConnectionManagerPromise | undefined
  try {
    const launch = fixtureStdioConfig([SERIAL_FLAG])
    automatic = await defaultManager(launch)
    const pool = await poolOf(automatic)
    const maxConnections = pool.config.maxConnections
    fixed = await fixtureManager({ maxConnections, maxConcurrentRequestsPerConnection: 1 }, launch)
    const fixedPool = await poolOf(fixed)
    const tools = { auto: automatic.tools(SERVER), fixed: fixed.tools(SERVER) }
    // Each pool opens the connections the load needs, and its limits settle.
    const warmedFor = {
      auto: await warmUntilSteady(tools.auto, pool),
      fixed: await warmUntilSteady(tools.fixed, fixedPool)
    }
    const rounds = await alternate(SERIAL_ROUNDS, {
      fixed: () => mixedLoad(tools.fixed, SERIAL_ROUND_MS),
      auto: () => mixedLoad(tools.auto, SERIAL_ROUND_MS)
    })
    const limits = limitsOf(pool)
    const fixedConnections = fixedPool.connections().length
    const side = (mixes: ReadonlyArray<Mix>) => ({
      fast: summarize(mixes.flatMap((mix) => mix.fast)),
      fastP99MsPerRound: mixes.map((mix) => round(summarize(mix.fast).p99Ms, 2)),
      slow: summarize(mixes.flatMap((mix) => mix.slow)),
      failed: mixes.reduce((sum, mix) => sum + mix.failed, 0)
    })
    const fixedSide = side(rounds.fixed)
    const autoSide = side(rounds.auto)
    const p99Ratio = ratio(autoSide.fast.p99Ms, fixedSide.fast.p99Ms)
    const pass = p99Ratio !== null && p99Ratio <= MAX_P99_RATIO && fixedSide.failed + autoSide.failed === 0
    return {
      baseline: {
        serial: {
          label: `pool fixed at maxConcurrentRequestsPerConnection 1, maxConnections ${maxConnections}, ${SERVER} ${SERIAL_FLAG}`,
          ...fixedSide,
          connections: fixedConnections
        }
      },
      subject: {
        serial: {
          label: `pool with "auto" (maxConnections ${maxConnections}), ${SERVER} ${SERIAL_FLAG}`,
          ...autoSide,
          connectionLimits: limitsJson(limits)
        }
      },
      checks: [
        check(
          metric,
          formatMs(fixedSide.fast.p99Ms),
          formatMs(autoSide.fast.p99Ms),
          formatRatio(p99Ratio),
          target,
          pass
        ),
        check(
          `serial: ${FAST_MS} ms calls' p50`,
          formatMs(fixedSide.fast.p50Ms),
          formatMs(autoSide.fast.p50Ms),
          formatRatio(ratio(autoSide.fast.p50Ms, fixedSide.fast.p50Ms))
        ),
        check(
          `serial: ${SLOW_MS} ms calls' p99`,
          formatMs(fixedSide.slow.p99Ms),
          formatMs(autoSide.slow.p99Ms),
          formatRatio(ratio(autoSide.slow.p99Ms, fixedSide.slow.p99Ms))
        ),
        check(
          "serial: calls (fast + slow)",
          `${fixedSide.fast.samples} + ${fixedSide.slow.samples}`,
          `${autoSide.fast.samples} + ${autoSide.slow.samples}`,
          formatRatio(
            ratio(autoSide.fast.samples + autoSide.slow.samples, fixedSide.fast.samples + fixedSide.slow.samples)
          )
        ),
        check("serial: pool's connections after", `${fixedConnections} conn.: 1 each`, formatLimits(limits))
      ],
      notes: [
        `serial: ${SERIAL_CALLERS} callers, each calling sleep ${FAST_MS} ms with every ${SLOW_EVERY}th call sleep ${SLOW_MS} ms; servers not pinned; after ${formatMs(warmedFor.fixed)} (fixed) and ${formatMs(warmedFor.auto)} (auto) of warm-up with the load; ${SERIAL_ROUNDS} alternating rounds of ${SERIAL_ROUND_MS} ms per side`,
        ...(fixedSide.failed + autoSide.failed > 0
          ? [`serial: ${fixedSide.failed} (fixed) and ${autoSide.failed} (auto) calls failed`]
          : [])
      ]
    }
  } finally {
    await Promise.allSettled([automatic?.close(), fixed?.close()])
  }
}
