/**
 * Row 11, part 5: one caller at a time, the pool on its defaults against one raw SDK client,
 * each measured after exactly 5,000 warm-up calls (a process that has not run for long).
 */
import { alternate, sequential } from "../../measure.ts"
import { check } from "../../row.ts"
import { formatMs, formatRatio, ratio, round, summarize } from "../../stats.ts"
import { echoParams, SERVER } from "../../subjects.ts"
import { type Part, withPinnedPoolAndClient } from "./common.ts"

export const SEQUENTIAL_WARM_UP_CALLS = 5000
const SEQUENTIAL_ROUNDS = 40
const CALLS_PER_SEQUENTIAL_ROUND = 50
export const MAX_SEQUENTIAL_RATIO = 1.1
/** What a sequential call may add to a raw client's p50, in µs. */
export const MAX_ADDED_US = 10

/** 5. Sequential `echo` after 5,000 warm-up calls: the pool on its defaults against one raw client. */
export const sequentialPart = (): Promise<Part> =>
  withPinnedPoolAndClient(async (manager, client, launch) => {
    const tools = manager.tools(SERVER)
    const calls = { raw: () => client.callTool(echoParams), pooled: () => tools.callTool(echoParams) }
    for (const call of Object.values(calls)) await sequential(call, SEQUENTIAL_WARM_UP_CALLS)
    const rounds = await alternate(SEQUENTIAL_ROUNDS, {
      raw: () => sequential(calls.raw, CALLS_PER_SEQUENTIAL_ROUND),
      pooled: () => sequential(calls.pooled, CALLS_PER_SEQUENTIAL_ROUND)
    })
    const rawLatency = summarize(rounds.raw.flat())
    const pooledLatency = summarize(rounds.pooled.flat())
    const p50Ratio = ratio(pooledLatency.p50Ms, rawLatency.p50Ms)
    const addedUs = (pooledLatency.p50Ms - rawLatency.p50Ms) * 1000
    const ratioPass = p50Ratio !== null && p50Ratio <= MAX_SEQUENTIAL_RATIO
    return {
      baseline: { sequential: { label: "one raw SDK client, one call at a time", latency: rawLatency } },
      subject: {
        sequential: {
          label: "pool with the defaults, one call at a time",
          latency: pooledLatency,
          addedMicrosecondsAtP50: round(addedUs, 1)
        }
      },
      checks: [
        check(
          `sequential p50, after ${SEQUENTIAL_WARM_UP_CALLS.toLocaleString("en-US")} calls`,
          formatMs(rawLatency.p50Ms),
          formatMs(pooledLatency.p50Ms),
          formatRatio(p50Ratio),
          `<= ${MAX_SEQUENTIAL_RATIO.toFixed(2)}x`,
          ratioPass
        ),
        check(
          "sequential: added at p50",
          "",
          `${addedUs >= 0 ? "+" : ""}${addedUs.toFixed(0)} µs`,
          "",
          `<= +${MAX_ADDED_US} µs`,
          addedUs <= MAX_ADDED_US
        ),
        check(
          "sequential p99",
          formatMs(rawLatency.p99Ms),
          formatMs(pooledLatency.p99Ms),
          formatRatio(ratio(pooledLatency.p99Ms, rawLatency.p99Ms))
        )
      ],
      notes: [
        `sequential: ${launch.command === "taskset" ? `servers pinned to CPU ${launch.args[1]}` : "servers not pinned"}; each side warmed with exactly ${SEQUENTIAL_WARM_UP_CALLS} sequential calls; ${SEQUENTIAL_ROUNDS} alternating rounds of ${CALLS_PER_SEQUENTIAL_ROUND} calls per side`
      ]
    }
  })
