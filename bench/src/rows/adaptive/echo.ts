/** Row 11, part 1: `echo` at 100 in flight, the pool with "auto" against one raw SDK client. */
import { closedLoop, sequential } from "../../measure.ts"
import { check } from "../../row.ts"
import { formatRate, formatRatio, median, ratio, round } from "../../stats.ts"
import { echoParams, poolOf, SERVER } from "../../subjects.ts"
import {
  alternateWithin,
  failedIn,
  formatLimits,
  limitsJson,
  limitsOf,
  middleHalf,
  type Part,
  withPinnedPoolAndClient
} from "./common.ts"

/**
 * 1. `echo`, as in row 2: both sides warmed until V8 has optimised them, rounds of about 150 ms
 * at row 2's rates. Both are also bounded in time, so that a slow side cannot take the row past
 * its time: the warm-up goes in chunks until 30,000 calls or 3 s (or up to 6 s while the pool
 * is still opening connections), the rounds stop after 10 s of measuring once 3 of them are done.
 */
export const ECHO_IN_FLIGHT = 100
const ECHO_WARM_UP_CALLS = 30_000
const ECHO_WARM_UP_CHUNK = 3000
const ECHO_WARM_UP_MS = 3000
/** The warm-up goes on past 3 s, up to this, while the pool is still opening connections. */
const ECHO_WARM_UP_MAX_MS = 6000
const ECHO_ROUNDS = 12
const ECHO_MIN_ROUNDS = 3
const ECHO_ROUNDS_MS = 10_000
const ECHO_CALLS_PER_ROUND = 12_000
export const MIN_ECHO_RATIO = 0.9

/** 1. `echo` at 100 in flight: the pool with "auto" against one raw SDK client. */
export const echoPart = (): Promise<Part & { readonly ratio: number | null }> =>
  withPinnedPoolAndClient(async (manager, client, launch) => {
    const pool = await poolOf(manager)
    const tools = manager.tools(SERVER)
    const calls = {
      raw: () => client.callTool(echoParams),
      pooled: () => tools.callTool(echoParams)
    }
    const warmedWith = { raw: 0, pooled: 0 }
    for (const key of ["raw", "pooled"] as const) {
      await sequential(calls[key], 500)
      const started = performance.now()
      const warming = () => {
        const elapsed = performance.now() - started
        const opening = key === "pooled" && pool.snapshot().openingConnections > 0
        return (
          (warmedWith[key] < ECHO_WARM_UP_CALLS && elapsed < ECHO_WARM_UP_MS) ||
          (opening && elapsed < ECHO_WARM_UP_MAX_MS)
        )
      }
      while (warming()) {
        await closedLoop(calls[key], ECHO_IN_FLIGHT, ECHO_WARM_UP_CHUNK)
        warmedWith[key] += ECHO_WARM_UP_CHUNK
      }
    }
    const rounds = await alternateWithin(ECHO_ROUNDS, ECHO_MIN_ROUNDS, ECHO_ROUNDS_MS, {
      raw: () => closedLoop(calls.raw, ECHO_IN_FLIGHT, ECHO_CALLS_PER_ROUND),
      pooled: () => closedLoop(calls.pooled, ECHO_IN_FLIGHT, ECHO_CALLS_PER_ROUND)
    })
    const limits = limitsOf(pool)
    const rawRate = median(rounds.raw.map((t) => t.callsPerSecond))
    const pooledRate = median(rounds.pooled.map((t) => t.callsPerSecond))
    const rawCpu = median(rounds.raw.map((t) => t.cpuMicrosPerCall))
    const pooledCpu = median(rounds.pooled.map((t) => t.cpuMicrosPerCall))
    const failed = failedIn(rounds.raw) + failedIn(rounds.pooled)
    const rateRatio = ratio(pooledRate, rawRate)
    const pass = rateRatio !== null && rateRatio >= MIN_ECHO_RATIO && failed === 0
    return {
      ratio: rateRatio,
      baseline: {
        echo: {
          label: "one raw SDK Client (stdio)",
          callsPerSecond: Math.round(rawRate),
          cpuMicrosPerCall: round(rawCpu, 1)
        }
      },
      subject: {
        echo: {
          label: `pool with "auto" (Promise API)`,
          maxConcurrentRequestsPerConnection: pool.config.maxConcurrentRequestsPerConnection,
          callsPerSecond: Math.round(pooledRate),
          cpuMicrosPerCall: round(pooledCpu, 1),
          connectionLimits: limitsJson(limits)
        }
      },
      checks: [
        check(
          `echo, ${ECHO_IN_FLIGHT} in flight: throughput`,
          formatRate(rawRate),
          formatRate(pooledRate),
          formatRatio(rateRatio),
          `>= ${MIN_ECHO_RATIO.toFixed(2)}x`,
          pass
        ),
        check("echo: throughput, middle half of rounds", middleHalf(rounds.raw), middleHalf(rounds.pooled)),
        check(
          "echo: client CPU per call",
          `${rawCpu.toFixed(1)} µs`,
          `${pooledCpu.toFixed(1)} µs`,
          formatRatio(ratio(pooledCpu, rawCpu))
        ),
        check("echo: pool's connections after", "1 client", formatLimits(limits))
      ],
      notes: [
        `echo: ${launch.command === "taskset" ? `every server pinned to CPU ${launch.args[1]}` : "servers not pinned (no taskset)"}; after ${warmedWith.raw} (raw) and ${warmedWith.pooled} (pool) warm-up calls; median of ${rounds.raw.length} alternating rounds of ${ECHO_CALLS_PER_ROUND} calls${rounds.raw.length < ECHO_ROUNDS ? ` (of ${ECHO_ROUNDS}: cut at ${ECHO_ROUNDS_MS / 1000} s)` : ""}`,
        ...(failed > 0 ? [`echo: ${failed} calls failed`] : [])
      ]
    }
  })
